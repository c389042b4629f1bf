//! [`Objects`]: the objects of one kind, indexed by namespace and name.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Stored, name_of};

/// Objects of one kind, indexed by namespace (`""` for cluster-scoped objects),
/// each namespace's objects sorted by name (so lookups by name are binary
/// searches and iteration order is deterministic).
#[derive(Debug, Clone)]
pub struct Objects<K> {
    by_namespace: BTreeMap<String, Vec<Arc<K>>>,
    len: usize,
}

impl<K> Default for Objects<K> {
    fn default() -> Self {
        Objects {
            by_namespace: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<K: kube::Resource> Objects<K> {
    /// Adds an object under its namespace (`""` when it has none), replacing an
    /// object of the same namespace and name.
    pub fn insert(&mut self, obj: Arc<K>) {
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        let list = self.by_namespace.entry(ns).or_default();
        match list.binary_search_by(|o| name_of(o.as_ref()).cmp(name_of(obj.as_ref()))) {
            Ok(i) => list[i] = obj,
            Err(i) => {
                list.insert(i, obj);
                self.len += 1;
            }
        }
    }

    /// Applies [`Stored::trim`] to every object and drops those not
    /// [`Stored::cached`], as the caches do.
    pub fn trim_all(&mut self)
    where
        K: Stored,
    {
        for list in self.by_namespace.values_mut() {
            list.retain(|o| o.cached());
            for o in list.iter_mut() {
                Arc::make_mut(o).trim();
            }
        }
        self.by_namespace.retain(|_, l| !l.is_empty());
        self.len = self.by_namespace.values().map(Vec::len).sum();
    }

    /// Removes the object `namespace`/`name`; returns whether it was there.
    pub fn remove(&mut self, namespace: &str, name: &str) -> bool {
        let Some(list) = self.by_namespace.get_mut(namespace) else {
            return false;
        };
        let Ok(i) = list.binary_search_by(|o| name_of(o.as_ref()).cmp(name)) else {
            return false;
        };
        list.remove(i);
        self.len -= 1;
        if list.is_empty() {
            self.by_namespace.remove(namespace);
        }
        true
    }

    /// The objects in `namespace` (use `""` for cluster-scoped kinds), by name.
    pub fn in_namespace(&self, namespace: &str) -> &[Arc<K>] {
        self.by_namespace
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every object, by namespace then name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<K>> {
        self.by_namespace.values().flatten()
    }

    /// The namespaces that hold at least one object.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.by_namespace.keys().map(String::as_str)
    }

    /// The object named `name` in `namespace`, if any (binary search).
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Arc<K>> {
        let list = self.in_namespace(namespace);
        list.binary_search_by(|o| name_of(o.as_ref()).cmp(name))
            .ok()
            .map(|i| &list[i])
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no objects.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
