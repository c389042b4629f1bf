//! Filling a [`Snapshot`] from manifests (JSON values of YAML documents), as
//! `check --manifests` and the engine tests do.
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use serde_json::{Value, json};

use super::{Kind, KindVisitor, Snapshot, SnapshotError, Stored};

impl Snapshot {
    /// Adds one object from a manifest (JSON value of one YAML document).
    /// Namespaced objects without `metadata.namespace` go to `default_namespace`.
    /// A CustomResourceDefinition that provides an optional kind marks it
    /// installed. Returns the kind, or `None` for kinds no check reads.
    ///
    /// # Errors
    /// [`SnapshotError::NotAnObject`] without `apiVersion`/`kind`;
    /// [`SnapshotError::Invalid`] when a known kind does not deserialize.
    pub fn insert_manifest(
        &mut self,
        mut value: Value,
        default_namespace: &str,
    ) -> Result<Option<Kind>, SnapshotError> {
        let (api_version, kind_name) = type_meta(&value)?;
        if kind_name == "CustomResourceDefinition" {
            self.insert_crd(&value);
            return Ok(None);
        }
        let Some(kind) = Kind::from_type_meta(&api_version, &kind_name) else {
            return Ok(None);
        };
        normalize(&mut value, kind, default_namespace)?;
        let name = display_name(&value);
        kind.visit(Insert {
            snapshot: self,
            value,
            name,
        })?;
        if kind.crd_name().is_some() {
            // An object of the kind proves its CRD exists.
            self.mark_installed(kind);
        }
        Ok(Some(kind))
    }

    /// Marks the optional kinds a CustomResourceDefinition manifest provides.
    fn insert_crd(&mut self, crd: &Value) {
        if let Some(name) = crd.pointer("/metadata/name").and_then(Value::as_str) {
            for k in Kind::ALL {
                if k.crd_name() == Some(name) {
                    self.mark_installed(k);
                }
            }
        }
    }

    /// Adds every document of a multi-document YAML string (see
    /// [`Snapshot::insert_manifest`]); empty documents are skipped. Returns how
    /// many objects of known kinds were added.
    ///
    /// # Errors
    /// The first document that is not valid YAML or not a valid object.
    pub fn insert_yaml(
        &mut self,
        yaml: &str,
        default_namespace: &str,
    ) -> Result<usize, SnapshotError> {
        use serde::Deserialize;
        let mut n = 0;
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let value =
                Value::deserialize(doc).map_err(|e| SnapshotError::NotAnObject(e.to_string()))?;
            if value.is_null() {
                continue;
            }
            n += self.insert_document(value, default_namespace)?;
        }
        Ok(n)
    }

    /// Adds one document: an object, or a `List` / `…List` kind whose `items`
    /// are added one by one. Returns how many objects of known kinds were added.
    ///
    /// # Errors
    /// As [`Snapshot::insert_manifest`], for the first failing item.
    pub fn insert_document(
        &mut self,
        value: Value,
        default_namespace: &str,
    ) -> Result<usize, SnapshotError> {
        let is_list = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && value.get("items").is_some_and(Value::is_array);
        if is_list {
            let mut n = 0;
            if let Some(Value::Array(items)) = value.get("items").cloned() {
                for item in items {
                    n += self.insert_document(item, default_namespace)?;
                }
            }
            return Ok(n);
        }
        Ok(usize::from(
            self.insert_manifest(value, default_namespace)?.is_some(),
        ))
    }

    /// Adds a Namespace object for every namespace that holds objects but has
    /// none of its own (offline manifests rarely include their Namespace).
    pub fn add_implicit_namespaces(&mut self) {
        for ns in self.occupied_namespaces() {
            if self.objects::<Namespace>().get("", &ns).is_none() {
                let obj: Namespace = serde_json::from_value(json!({
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}
                }))
                .expect("static Namespace");
                self.objects_mut::<Namespace>().insert(Arc::new(obj));
            }
        }
    }
}

/// `apiVersion` and `kind` of a manifest.
fn type_meta(value: &Value) -> Result<(String, String), SnapshotError> {
    match (
        value.get("apiVersion").and_then(Value::as_str),
        value.get("kind").and_then(Value::as_str),
    ) {
        (Some(a), Some(k)) => Ok((a.to_owned(), k.to_owned())),
        _ => Err(SnapshotError::NotAnObject(
            "missing apiVersion or kind".into(),
        )),
    }
}

/// What the API server would have done to the manifest: an empty `spec` for
/// custom resources that omit it, no namespace on cluster-scoped objects
/// (`helm template` often sets one), the default namespace on namespaced ones.
fn normalize(value: &mut Value, kind: Kind, default_namespace: &str) -> Result<(), SnapshotError> {
    if kind.crd_name().is_some() {
        // The typed custom resources require `spec`; an object without one
        // is read as having an empty spec rather than rejected.
        if let Some(o) = value.as_object_mut() {
            o.entry("spec").or_insert_with(|| json!({}));
        }
    }
    if !kind.namespaced() {
        if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
        return Ok(());
    }
    let meta = value
        .as_object_mut()
        .and_then(|o| {
            o.entry("metadata")
                .or_insert_with(|| json!({}))
                .as_object_mut()
        })
        .ok_or_else(|| SnapshotError::NotAnObject("metadata is not an object".into()))?;
    if !meta.contains_key("namespace") {
        meta.insert("namespace".into(), default_namespace.into());
    }
    Ok(())
}

/// `namespace/name`, `name` or `<unnamed>`, for error messages.
fn display_name(value: &Value) -> String {
    let m = &value["metadata"];
    match (m["namespace"].as_str(), m["name"].as_str()) {
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        (None, Some(n)) => n.to_owned(),
        _ => "<unnamed>".to_owned(),
    }
}

/// Validates (against the complete API type, see [`Stored::validate`]),
/// deserializes, trims and stores one object of the visited kind.
struct Insert<'a> {
    snapshot: &'a mut Snapshot,
    value: Value,
    name: String,
}

impl KindVisitor for Insert<'_> {
    type Output = Result<(), SnapshotError>;
    fn visit<K: Stored>(self) -> Self::Output {
        let invalid = |name: String| {
            move |source| SnapshotError::Invalid {
                kind: K::KIND.to_string(),
                name,
                source,
            }
        };
        K::validate(&self.value).map_err(invalid(self.name.clone()))?;
        let mut obj: K = serde_json::from_value(self.value).map_err(invalid(self.name))?;
        if obj.cached() {
            obj.trim();
            K::objects_mut(self.snapshot).insert(Arc::new(obj));
        }
        Ok(())
    }
}
