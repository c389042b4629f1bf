//! A Control's scope: which namespaces its check covers (`spec.scope`).
use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

use crate::api::Control;
use crate::snapshot::{Snapshot, labels_of, name_of};
use crate::vocabulary::{InvalidSpec, parse_selector};

/// Namespaces out of scope unless a Control's selector names them explicitly.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// The well-known label holding a namespace's name (set by the API server).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The namespaces in the Control's scope, from the snapshot's Namespace objects.
///
/// # Errors
/// [`InvalidSpec`] for a selector with an invalid operator or values.
pub fn scope_namespaces(
    control: &Control,
    snapshot: &Snapshot,
) -> Result<BTreeSet<String>, InvalidSpec> {
    let scope = Scope::of(control)?;
    Ok(snapshot
        .objects::<Namespace>()
        .iter()
        .filter(|ns| scope.contains(ns))
        .map(|ns| name_of(ns.as_ref()).to_owned())
        .collect())
}

/// Whether namespace `name` exists in the snapshot and is in the Control's
/// scope (one namespace of [`scope_namespaces`]).
///
/// # Errors
/// [`InvalidSpec`] for a selector with an invalid operator or values.
pub fn namespace_in_scope(
    control: &Control,
    snapshot: &Snapshot,
    name: &str,
) -> Result<bool, InvalidSpec> {
    let scope = Scope::of(control)?;
    Ok(snapshot
        .objects::<Namespace>()
        .get("", name)
        .is_some_and(|ns| scope.contains(ns)))
}

/// A Control's `spec.scope`, parsed.
struct Scope {
    selector: Option<Selector>,
    explicit: BTreeSet<String>,
    excluded: BTreeSet<String>,
}

impl Scope {
    fn of(control: &Control) -> Result<Scope, InvalidSpec> {
        let scope = control.spec.scope.clone().unwrap_or_default();
        let selector = match &scope.namespace_selector {
            None => None,
            Some(ls) => Some(parse_selector("spec.scope.namespaceSelector", ls)?),
        };
        let explicit = scope
            .namespace_selector
            .as_ref()
            .map(explicitly_named)
            .unwrap_or_default();
        Ok(Scope {
            selector,
            explicit,
            excluded: scope.excluded_namespaces.into_iter().collect(),
        })
    }

    fn contains(&self, ns: &Namespace) -> bool {
        let name = name_of(ns);
        if self.excluded.contains(name) {
            return false;
        }
        if SYSTEM_NAMESPACES.contains(&name) && !self.explicit.contains(name) {
            return false;
        }
        // The API server always sets kubernetes.io/metadata.name; offline
        // manifests may not, so match as if it were set.
        match &self.selector {
            None => true,
            Some(s) => {
                let labels = labels_of(ns);
                if labels.contains_key(NAMESPACE_NAME_LABEL) {
                    s.matches(labels)
                } else {
                    let mut with_name = labels.clone();
                    with_name.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
                    s.matches(&with_name)
                }
            }
        }
    }
}

/// Namespace names a selector names explicitly through
/// `kubernetes.io/metadata.name` (matchLabels, or matchExpressions `In`).
fn explicitly_named(selector: &LabelSelector) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(v) = selector
        .match_labels
        .as_ref()
        .and_then(|m| m.get(NAMESPACE_NAME_LABEL))
    {
        out.insert(v.clone());
    }
    for e in selector.match_expressions.iter().flatten() {
        if e.key == NAMESPACE_NAME_LABEL && e.operator == "In" {
            out.extend(e.values.iter().flatten().cloned());
        }
    }
    out
}
