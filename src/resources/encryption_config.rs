//! The API server's `apiserver.config.k8s.io/v1` `EncryptionConfiguration`
//! (the file `--encryption-provider-config` names), as offline input for the
//! Secrets-at-rest check. Only which providers are configured, in order, per
//! resource is read: key material (`keys[].secret`) and every other provider
//! setting are skipped while parsing and never held, logged or reported.
//!
//! Semantics (Kubernetes "Encrypting Confidential Data at Rest", and
//! `k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go`): each
//! `resources[]` entry names resources (`secrets`, `<resource>.<group>`,
//! `*.<group>` for a whole group, `*.` for the core group, `*.*` for all) and
//! providers; the first provider of the first entry that names a resource
//! encrypts its writes (`identity` means plain text); a resource no entry names
//! is written in plain text.
use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The providers that do not encrypt.
pub const PLAINTEXT_PROVIDERS: [&str; 1] = ["identity"];

/// An `EncryptionConfiguration` (no metadata in the file; a name may be set
/// to tell several apart).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EncryptionConfiguration {
    /// Metadata (usually empty).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The per-resource configurations, in order.
    #[serde(default)]
    pub resources: Vec<ResourceConfiguration>,
}

/// One `resources[]` entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ResourceConfiguration {
    /// Resource names: `secrets`, `<resource>.<group>`, `*.<group>`, `*.`, `*.*`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The providers, in order; the first one encrypts writes.
    #[serde(default)]
    pub providers: Vec<Provider>,
}

/// One provider: its type (`identity`, `aescbc`, `aesgcm`, `secretbox`,
/// `kms`) and, for `kms`, the plugin's name. Nothing else is read.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct Provider {
    /// The provider type, e.g. `aescbc`.
    pub kind: String,
    /// The `kms` plugin's `name` (not a secret), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Provider {
    /// Whether writes through this provider are encrypted.
    pub fn encrypts(&self) -> bool {
        !PLAINTEXT_PROVIDERS.contains(&self.kind.as_str())
    }
}

impl<'de> Deserialize<'de> for Provider {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Provider;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a provider such as {aescbc: {...}} or {identity: {}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Provider, A::Error> {
                let mut provider = Provider::default();
                while let Some(kind) = map.next_key::<String>()? {
                    if kind == "kms" {
                        let kms: KmsName = map.next_value()?;
                        provider.name = kms.name;
                    } else {
                        // Key material and settings: skipped unread.
                        map.next_value::<IgnoredAny>()?;
                    }
                    if provider.kind.is_empty() {
                        provider.kind = kind;
                    }
                }
                Ok(provider)
            }
        }
        d.deserialize_map(V)
    }
}

/// The one field of a `kms` provider that is read.
#[derive(Deserialize)]
struct KmsName {
    #[serde(default)]
    name: Option<String>,
}

impl EncryptionConfiguration {
    /// The providers that apply to `resource` of `group` (`""` for the core
    /// group), in order, as the API server picks them: the entries naming the
    /// resource exactly, else `*.<group>`, else `*.*`; empty when none does
    /// (plain text).
    pub fn providers_for(&self, group: &str, resource: &str) -> Vec<&Provider> {
        let exact = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let group_wide = format!("*.{group}");
        for wanted in [exact.as_str(), group_wide.as_str(), "*.*"] {
            let providers: Vec<&Provider> = self
                .resources
                .iter()
                .filter(|r| r.resources.iter().any(|n| n == wanted))
                .flat_map(|r| r.providers.iter())
                .collect();
            if !providers.is_empty() {
                return providers;
            }
        }
        Vec::new()
    }
}

impl kube::Resource for EncryptionConfiguration {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "EncryptionConfiguration".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "apiserver.config.k8s.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "encryptionconfigurations".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> EncryptionConfiguration {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_first_provider_of_the_first_matching_entry_writes_and_keys_are_not_kept() {
        let c = config(
            "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n  - aescbc: {keys: [{name: k1, secret: c2VjcmV0}]}\n",
        );
        let p = c.providers_for("", "secrets");
        assert_eq!(p[0].kind, "identity");
        assert!(!p[0].encrypts() && p[1].encrypts());
        let dump = format!("{c:?}");
        assert!(!dump.contains("c2VjcmV0") && !dump.contains("k1"), "{dump}");
    }

    #[test]
    fn wildcards_apply_as_the_api_server_looks_them_up() {
        let c = config(
            "resources:\n- resources: ['*.apps']\n  providers: [{aesgcm: {}}]\n- resources: ['*.']\n  providers: [{kms: {name: vault, apiVersion: v2}}]\n- resources: ['*.*']\n  providers: [{identity: {}}]\n",
        );
        assert_eq!(c.providers_for("", "secrets")[0].kind, "kms");
        assert_eq!(
            c.providers_for("", "secrets")[0].name.as_deref(),
            Some("vault")
        );
        assert_eq!(c.providers_for("apps", "deployments")[0].kind, "aesgcm");
        assert_eq!(c.providers_for("batch", "jobs")[0].kind, "identity");
        let none = config("resources:\n- resources: [configmaps]\n  providers: [{aescbc: {}}]\n");
        assert!(none.providers_for("", "secrets").is_empty());
    }
}
