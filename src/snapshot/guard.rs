//! [`Guarded`]: how a watched object is decoded — straight from the API
//! server's JSON into the kind's cached type, so that one object that does
//! not decode does not fail its whole list page or watch.
//!
//! kube-runtime's `DeserializeGuard` does the same by first building the
//! whole object as a generic `serde_value::Value` tree and cloning it; at
//! 10,000 namespaces that tree-building was most of the operator's start-up
//! CPU (a profile of the scale benchmark: `serde_value` visitors, `BTreeMap`
//! inserts, `malloc`/`free`). Here the object's JSON text is captured as it
//! is (`serde_json::value::RawValue`, one copy of the bytes), decoded into
//! `K` (a compact view decodes only what it keeps), and only when that fails
//! is it decoded a second time for its metadata, to name it in the error.
use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::error_boundary::InvalidObject;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A decoded object of kind `K`, or why it does not decode (with its
/// metadata, as far as that decodes).
///
/// Decoding needs a `serde_json` deserializer (the API server's list and
/// watch responses are JSON); any other deserializer is an error.
#[derive(Debug, Clone)]
pub struct Guarded<K>(pub Result<K, InvalidObject>);

/// The metadata of an object that did not decode as its kind.
#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: ObjectMeta,
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Guarded<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(d)?;
        Ok(Guarded(serde_json::from_str::<K>(raw.get()).map_err(|e| {
            InvalidObject {
                error: e.to_string(),
                metadata: serde_json::from_str::<MetadataOnly>(raw.get())
                    .map(|m| m.metadata)
                    .unwrap_or_default(),
            }
        })))
    }
}

impl<K: kube::Resource> kube::Resource for Guarded<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match &self.0 {
            Ok(k) => k.meta(),
            Err(e) => &e.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match &mut self.0 {
            Ok(k) => k.meta_mut(),
            Err(e) => &mut e.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::compact::Pod;

    #[test]
    fn an_object_decodes_or_says_why_with_its_name() {
        let list: Vec<Guarded<Pod>> = serde_json::from_str(
            r#"[{"metadata":{"name":"ok","namespace":"a"},"spec":{"containers":[{"name":"c"}]}},
                {"metadata":{"name":"bad","namespace":"a"},"spec":{"containers":"not-a-list"}}]"#,
        )
        .unwrap();
        assert_eq!(
            list[0]
                .0
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .name,
            "c"
        );
        let bad = list[1].0.as_ref().unwrap_err();
        assert_eq!(bad.metadata.name.as_deref(), Some("bad"));
        assert!(bad.error.contains("invalid type"), "{}", bad.error);
    }
}
