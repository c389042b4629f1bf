//! Encryption in transit and at rest — TSC CC6.1 (protecting information
//! assets), CC6.7 (protecting data in transmission) and C1.1 (confidential
//! information is protected).
//!
//! In transit: every Ingress in scope (`networking.k8s.io/v1`) has `spec.tls`
//! entries covering every host of its rules (a `*.example.com` TLS host covers
//! one label); when the Gateway API CRDs are installed, every Gateway listener in
//! scope uses `HTTPS` or `TLS` (or, with `allowHttpRedirect`, `HTTP` whose
//! attached HTTPRoutes only redirect to https). Absent Gateway CRDs are skipped
//! and said so in a note.
//!
//! At rest: every PVC in scope uses a StorageClass with the required
//! parameters or an allowed provisioner (no `storageClassName` means the default
//! class, annotation `storageclass.kubernetes.io/is-default-class`); Secrets are
//! encrypted by the API server ("Encrypting Confidential Data at Rest"), proven
//! by a kube-apiserver mirror pod's `--encryption-provider-config`, or by the
//! `apiserver_storage_transformation_operations_total` metric with a non-empty
//! `transformer_prefix` for `to_storage`, or attested in the spec.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::storage::v1::StorageClass;

use super::apiserver;
use crate::api::{
    EncryptionCheck, Evidence, InTransitCheck, SecretEncryption, StorageClassEncryption,
    Verification,
};
use crate::resources::gateway::{Gateway, HTTPRoute, Listener};
use crate::snapshot::{
    BETA_CLASS_ANNOTATION, Kind, KindSet, StorageTransformation, labels_of, name_of, namespace_of,
};
use crate::vocabulary::{
    Context, Family, InvalidSpec, Locality, Outcome, list_some, member, violation,
};

/// Annotation marking the default StorageClass (and its beta predecessor).
pub const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// The kube-apiserver flag that enables encryption at rest.
pub const ENCRYPTION_FLAG: &str = "--encryption-provider-config";

/// The `encryption` check family.
pub struct Encryption;

impl Family for Encryption {
    member!(encryption: EncryptionCheck = "encryption");

    fn evidence(spec: &EncryptionCheck) -> &'static str {
        match (&spec.in_transit, &spec.at_rest) {
            (Some(_), None) => "Ingress TLS hosts; Gateway listeners and HTTPRoutes",
            (None, Some(r)) if r.secrets.is_some() && r.storage_classes.is_some() => {
                "kube-apiserver --encryption-provider-config or storage-transformation metrics (or attestation); PVC StorageClasses"
            }
            (None, Some(r)) if r.secrets.is_some() => {
                "kube-apiserver --encryption-provider-config or storage-transformation metrics (or attestation)"
            }
            (None, Some(_)) => "StorageClass parameters and provisioners of each PVC",
            _ => "Ingress and Gateway TLS; StorageClasses; kube-apiserver encryption evidence",
        }
    }

    /// Kinds read: Ingress, Gateway, HTTPRoute (in transit); PVC,
    /// StorageClass, Pod (at rest).
    fn kinds(spec: &EncryptionCheck) -> KindSet {
        let mut k = KindSet::new();
        if spec.in_transit.is_some() {
            k.extend([Kind::Ingress, Kind::Gateway, Kind::HttpRoute]);
        }
        if let Some(at_rest) = &spec.at_rest {
            if at_rest.storage_classes.is_some() {
                k.extend([Kind::PersistentVolumeClaim, Kind::StorageClass]);
            }
            if at_rest.secrets.is_some() {
                k.insert(Kind::Pod);
            }
        }
        k
    }

    /// How far a change reaches: an Ingress, Gateway or PersistentVolumeClaim
    /// only its own namespace's findings; HTTPRoutes (attached to Gateways
    /// anywhere), StorageClasses (used by PVCs everywhere) and the
    /// kube-apiserver pods reach everything. So does a Namespace when
    /// `inTransit` is checked: a Gateway listener's `allowedRoutes` can select
    /// routes by their namespace's labels, wherever the Gateway is.
    fn locality(spec: &EncryptionCheck, kind: Kind) -> Locality {
        match kind {
            Kind::Namespace if spec.in_transit.is_some() => Locality::Global,
            Kind::Namespace | Kind::Ingress | Kind::Gateway | Kind::PersistentVolumeClaim => {
                Locality::Namespace
            }
            _ => Locality::Global,
        }
    }

    fn evaluate(spec: &EncryptionCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        evaluate(spec, cx)
    }

    /// The Secrets check reads the API server's storage-transformation metrics.
    fn reads_apiserver_metrics(spec: &EncryptionCheck) -> bool {
        spec.at_rest.as_ref().is_some_and(|a| a.secrets.is_some())
    }
}

/// Evaluates the configured parts of the encryption check.
///
/// # Errors
/// [`InvalidSpec`] when neither `inTransit` nor `atRest` (or neither of its
/// members) is set.
fn evaluate(spec: &EncryptionCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    let mut out = Outcome::default();
    if spec.in_transit.is_none() && spec.at_rest.is_none() {
        return Err(InvalidSpec::new(
            "spec.check.encryption",
            "set inTransit, atRest, or both",
        ));
    }
    if let Some(t) = &spec.in_transit {
        in_transit(t, cx, &mut out);
    }
    if let Some(r) = &spec.at_rest {
        if r.storage_classes.is_none() && r.secrets.is_none() {
            return Err(InvalidSpec::new(
                "spec.check.encryption.atRest",
                "set storageClasses, secrets, or both",
            ));
        }
        if let Some(sc) = &r.storage_classes {
            storage_classes(sc, cx, &mut out)?;
        }
        if let Some(s) = &r.secrets {
            secrets(s, cx, &mut out);
        }
    }
    Ok(out)
}

/// Whether TLS host `tls` covers rule host `host` (exact, or a `*.` wildcard
/// matching exactly one leading label), case-insensitively.
pub fn tls_covers(tls: &str, host: &str) -> bool {
    let (tls, host) = (tls.to_ascii_lowercase(), host.to_ascii_lowercase());
    if tls == host {
        return true;
    }
    match (tls.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((label, rest))) => !label.is_empty() && rest == suffix,
        _ => false,
    }
}

fn in_transit(spec: &InTransitCheck, cx: &Context, out: &mut Outcome) {
    cx.each_namespace(out, |ns, out| {
        for ing in cx.objects::<Ingress>().in_namespace(ns) {
            out.resources_checked += 1;
            check_ingress(ing, out);
        }
    });
    if !cx.is_installed(Kind::Gateway) {
        out.notes.push(
            "Gateway API CRDs (gateway.networking.k8s.io/v1 Gateway) are not installed: Gateways were not checked".into(),
        );
        return;
    }
    // HTTPRoutes indexed once by the Gateway they reference.
    let mut routes: HashMap<(&str, &str), Vec<AttachedRoute>> = HashMap::new();
    if spec.allow_http_redirect {
        for r in cx.objects::<HTTPRoute>().iter() {
            for p in &r.spec.parent_refs {
                if p.kind.as_deref().unwrap_or("Gateway") == "Gateway" {
                    let ns = p.namespace.as_deref().unwrap_or(namespace_of(r.as_ref()));
                    routes
                        .entry((ns, p.name.as_str()))
                        .or_default()
                        .push((r.as_ref(), p.section_name.as_deref()));
                }
            }
        }
    }
    cx.each_namespace(out, |ns, out| {
        for gw in cx.objects::<Gateway>().in_namespace(ns) {
            out.resources_checked += 1;
            let attached = routes
                .get(&(namespace_of(gw.as_ref()), name_of(gw.as_ref())))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            check_gateway(gw, spec, cx, attached, out);
        }
    });
}

/// An HTTPRoute and the listener (`sectionName`) it names, if any.
type AttachedRoute<'a> = (&'a HTTPRoute, Option<&'a str>);

fn check_ingress(ing: &Ingress, out: &mut Outcome) {
    let spec = ing.spec.as_ref();
    let tls = spec.and_then(|s| s.tls.as_deref()).unwrap_or(&[]);
    let rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or(&[]);
    if tls.is_empty() {
        out.violations.push(violation(
            ing,
            "IngressWithoutTLS",
            "has no spec.tls entry: traffic is served in plain HTTP".into(),
        ));
        return;
    }
    let tls_hosts: Vec<&str> = tls
        .iter()
        .flat_map(|t| t.hosts.iter().flatten())
        .map(String::as_str)
        .collect();
    let uncovered: BTreeSet<&str> = rules
        .iter()
        .filter_map(|r| r.host.as_deref())
        .filter(|h| !h.is_empty())
        .filter(|h| !tls_hosts.iter().any(|t| tls_covers(t, h)))
        .collect();
    if !uncovered.is_empty() {
        let list: Vec<String> = uncovered.into_iter().map(str::to_owned).collect();
        out.violations.push(violation(
            ing,
            "HostsWithoutTLS",
            format!("host(s) not covered by spec.tls: {}", list_some(&list, 10)),
        ));
    }
}

/// Whether a route in `route_ns` may attach to `listener` of `gw`
/// (`allowedRoutes.namespaces.from`: `Same` by default, `All`, or `Selector`).
fn route_allowed(cx: &Context, gw: &Gateway, listener: &Listener, route_ns: &str) -> bool {
    let from = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match from.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        "Selector" => {
            let Some(sel) = from
                .and_then(|n| n.selector.as_ref())
                .and_then(|s| kube::core::Selector::try_from(s.clone()).ok())
            else {
                return false;
            };
            cx.objects::<Namespace>()
                .get("", route_ns)
                .is_some_and(|ns| kube::core::SelectorExt::matches(&sel, labels_of(ns.as_ref())))
        }
        _ => route_ns == namespace_of(gw),
    }
}

fn check_gateway(
    gw: &Gateway,
    spec: &InTransitCheck,
    cx: &Context,
    routes: &[AttachedRoute],
    out: &mut Outcome,
) {
    for l in &gw.spec.listeners {
        let proto = l.protocol.as_str();
        if proto == "HTTPS" || proto == "TLS" {
            continue;
        }
        let mut why = String::new();
        if proto == "HTTP" && spec.allow_http_redirect {
            let attached: Vec<&HTTPRoute> = routes
                .iter()
                .filter(|(_, section)| section.is_none_or(|s| s == l.name))
                .filter(|(r, _)| route_allowed(cx, gw, l, namespace_of(*r)))
                .map(|(r, _)| *r)
                .collect();
            if !attached.is_empty() && attached.iter().all(|r| only_redirects(r)) {
                continue;
            }
            why = if attached.is_empty() {
                " (no HTTPRoute attached to it redirects to https)".into()
            } else {
                " (an attached HTTPRoute does more than redirect to https)".into()
            };
        }
        out.violations.push(violation(
            gw,
            "PlaintextListener",
            format!(
                "listener {:?} (port {}) uses protocol {proto}, not HTTPS or TLS{why}",
                l.name,
                l.port.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            ),
        ));
    }
}

/// True when every rule of the route redirects to `https`.
fn only_redirects(r: &HTTPRoute) -> bool {
    !r.spec.rules.is_empty()
        && r.spec.rules.iter().all(|rule| {
            rule.filters.iter().any(|f| {
                f.type_ == "RequestRedirect"
                    && f.request_redirect
                        .as_ref()
                        .and_then(|rr| rr.scheme.as_deref())
                        == Some("https")
            })
        })
}

fn is_default_class(sc: &StorageClass) -> bool {
    sc.metadata.annotations.as_ref().is_some_and(|a| {
        DEFAULT_CLASS_ANNOTATIONS
            .iter()
            .any(|k| a.get(*k).map(String::as_str) == Some("true"))
    })
}

fn class_encrypts(spec: &StorageClassEncryption, sc: &StorageClass) -> bool {
    let params_ok = !spec.required_parameters.is_empty()
        && spec.required_parameters.iter().all(|(k, v)| {
            sc.parameters
                .as_ref()
                .and_then(|p| p.get(k))
                .is_some_and(|have| have == v)
        });
    params_ok || spec.allowed_provisioners.contains(&sc.provisioner)
}

fn storage_classes(
    spec: &StorageClassEncryption,
    cx: &Context,
    out: &mut Outcome,
) -> Result<(), InvalidSpec> {
    if spec.required_parameters.is_empty() && spec.allowed_provisioners.is_empty() {
        return Err(InvalidSpec::new(
            "spec.check.encryption.atRest.storageClasses",
            "set requiredParameters or allowedProvisioners",
        ));
    }
    let classes = cx.objects::<StorageClass>().in_namespace("");
    out.resources_checked += classes.len() as u64;
    // Several defaults: Kubernetes uses the most recently created one.
    let default = classes
        .iter()
        .filter(|c| is_default_class(c))
        .max_by_key(|c| {
            (
                c.metadata.creation_timestamp.clone().map(|t| t.0),
                name_of(c.as_ref()).to_owned(),
            )
        });
    let encrypting: Vec<&str> = classes
        .iter()
        .filter(|c| class_encrypts(spec, c))
        .map(|c| name_of(c.as_ref()))
        .collect();
    if !encrypting.is_empty() {
        out.evidence.push(Evidence {
            source: "StorageClass".into(),
            verification: Verification::Verified,
            message: format!("encrypting StorageClasses: {}", encrypting.join(", ")),
        });
    }
    cx.each_namespace(out, |ns, out| {
        for pvc in cx.objects::<PersistentVolumeClaim>().in_namespace(ns) {
            out.resources_checked += 1;
            if let Some((reason, message)) = check_pvc(spec, classes, default, pvc) {
                out.violations
                    .push(violation(pvc.as_ref(), reason, message));
            }
        }
    });
    Ok(())
}

/// Why `pvc` is not on an encrypting StorageClass, if it is not.
fn check_pvc(
    spec: &StorageClassEncryption,
    classes: &[Arc<StorageClass>],
    default: Option<&Arc<StorageClass>>,
    pvc: &PersistentVolumeClaim,
) -> Option<(&'static str, String)> {
    // The beta annotation still wins over spec.storageClassName.
    let requested = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
        .map(String::as_str)
        .or_else(|| {
            pvc.spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref())
        });
    let class = match requested {
        Some("") => {
            return Some((
                "NoStorageClass",
                "storageClassName is \"\" (a statically bound volume): its encryption cannot be verified".into(),
            ));
        }
        Some(name) => classes.iter().find(|c| name_of(c.as_ref()) == name),
        None => default,
    };
    match class {
        None => Some((
            "UnknownStorageClass",
            match requested {
                Some(name) => format!("StorageClass {name:?} does not exist"),
                None => "no storageClassName and no default StorageClass".into(),
            },
        )),
        Some(c) if !class_encrypts(spec, c) => Some((
            "UnencryptedStorageClass",
            format!(
                "StorageClass {} (provisioner {}) neither has the required parameters nor an allowed provisioner",
                name_of(c.as_ref()),
                c.provisioner
            ),
        )),
        Some(_) => None,
    }
}

fn has_encryption_flag(pod: &Pod) -> bool {
    apiserver::flag_value(pod, ENCRYPTION_FLAG).is_some()
}

/// Secrets encrypted at rest, from the first evidence found in order: the
/// kube-apiserver flag on every replica, the API server's storage
/// transformation metrics, an attestation; else a violation.
fn secrets(spec: &SecretEncryption, cx: &Context, out: &mut Outcome) {
    let pods: Vec<&Pod> = apiserver::pods(cx).collect();
    out.resources_checked += pods.len() as u64;
    let without: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| !has_encryption_flag(p))
        .collect();
    if let Some(e) = flag_evidence(&pods, &without) {
        out.evidence.push(e);
        return;
    }
    let metrics = cx.storage_transformations().map(metrics_evidence);
    if let Some(Ok(e)) = metrics {
        out.evidence.push(e);
        return;
    }
    let identity_only = metrics == Some(Err(true));
    if let Some(text) = &spec.attestation {
        out.evidence.push(attestation(text, identity_only));
        return;
    }
    no_evidence(cx, &without, identity_only, out);
}

/// (a) The flag on the kube-apiserver mirror pods: every replica, since a
/// Secret written through one without it is stored in plain text.
fn flag_evidence(pods: &[&Pod], without: &[&Pod]) -> Option<Evidence> {
    if pods.is_empty() || !without.is_empty() {
        return None;
    }
    let names: Vec<String> = pods
        .iter()
        .map(|p| format!("kube-system/{}", name_of(*p)))
        .collect();
    Some(Evidence {
        source: "EncryptionProviderConfigFlag".into(),
        verification: Verification::Verified,
        message: format!(
            "{} run kube-apiserver with {ENCRYPTION_FLAG}",
            list_some(&names, 5)
        ),
    })
}

/// (b) The API server's own storage transformation metrics: evidence when
/// writes used an envelope prefix; else whether writes used only the identity
/// transformer (`Err(true)`) or none were seen (`Err(false)`).
fn metrics_evidence(samples: &[StorageTransformation]) -> Result<Evidence, bool> {
    let to_storage: Vec<_> = samples
        .iter()
        .filter(|s| {
            s.transformation_type == "to_storage"
                && s.count > 0.0
                && (s.status == "OK" || s.status.is_empty())
        })
        .collect();
    let prefixes: BTreeSet<&str> = to_storage
        .iter()
        .filter(|s| !s.transformer_prefix.is_empty())
        .map(|s| s.transformer_prefix.as_str())
        .collect();
    if prefixes.is_empty() {
        return Err(!to_storage.is_empty());
    }
    Ok(Evidence {
        source: "APIServerMetrics".into(),
        verification: Verification::Verified,
        message: format!(
            "apiserver_storage_transformation_operations_total{{transformation_type=\"to_storage\"}} shows transformer prefix {}",
            prefixes.into_iter().collect::<Vec<_>>().join(", ")
        ),
    })
}

/// (c) An attestation for managed control planes. A storage-layer encryption
/// of etcd (common on managed clusters) is invisible to the API server, so an
/// attestation stands even when the API server uses the identity transformer;
/// the evidence says so.
fn attestation(text: &str, identity_only: bool) -> Evidence {
    let message = if identity_only {
        format!(
            "{text} (note: the API server's own writes use the identity transformer, so Secrets are not envelope-encrypted by the API server)"
        )
    } else {
        text.to_owned()
    };
    Evidence {
        source: "Attestation".into(),
        verification: Verification::Attested,
        message,
    }
}

/// The violation when no evidence was found.
fn no_evidence(cx: &Context, without: &[&Pod], identity_only: bool, out: &mut Outcome) {
    let (reason, message) = if identity_only {
        (
            "SecretsNotEncrypted",
            "the API server writes to storage with the identity transformer (empty transformer_prefix): Secrets are stored unencrypted".to_owned(),
        )
    } else if !without.is_empty() {
        (
            "SecretsNotEncrypted",
            format!("kube-apiserver runs without {ENCRYPTION_FLAG}"),
        )
    } else {
        (
            "NoEncryptionEvidence",
            "no kube-apiserver pod with --encryption-provider-config, no encrypted writes in apiserver_storage_transformation_operations_total, and no attestation in spec.check.encryption.atRest.secrets".to_owned(),
        )
    };
    if identity_only || without.is_empty() {
        out.violations.push(cx.control_violation(reason, message));
    } else {
        for p in without {
            out.violations.push(violation(*p, reason, message.clone()));
        }
    }
}
