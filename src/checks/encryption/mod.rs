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
//! class, annotation `storageclass.kubernetes.io/is-default-class`; a PVC for a
//! statically provisioned volume, `storageClassName: ""`, is undetermined);
//! Secrets are encrypted by the API server (see the `secrets` module for the evidence
//! and its strength).
mod in_transit;
mod secrets;
mod volumes;

use crate::api::{EncryptionCheck, Verification};
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, member};

pub use in_transit::tls_covers;

/// Annotation marking the default StorageClass (and its beta predecessor).
pub const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// The kube-apiserver flag that enables encryption at rest.
pub const ENCRYPTION_FLAG: &str = "--encryption-provider-config";

/// The claim of the in-transit check.
const IN_TRANSIT: &str = "Ingress and Gateway traffic is encrypted in transit";
/// The claim of the volumes check.
const VOLUMES: &str = "Persistent volumes are encrypted at rest";
/// The claim of the Secrets check.
const SECRETS: &str = "Secrets are encrypted at rest";

/// Ingress `spec.tls`: what the Ingress controller is told to serve.
pub static INGRESS_TLS: EvidenceKind = EvidenceKind {
    claim: IN_TRANSIT,
    source: "IngressTLS",
    verification: Verification::Configured,
    proves: "every host each Ingress in scope serves, including rules without host and default backends, is covered by a spec.tls entry",
    does_not_prove: "that the Ingress controller serves the certificate, that the certificate is valid, or that plain HTTP is redirected (only the ingress-nginx and GCE annotations that turn plain HTTP on are read, and are violations)",
};

/// Gateway listener protocols.
pub static GATEWAY_LISTENERS: EvidenceKind = EvidenceKind {
    claim: IN_TRANSIT,
    source: "GatewayListener",
    verification: Verification::Configured,
    proves: "every listener of each Gateway in scope uses HTTPS or TLS, or (with allowHttpRedirect) plain HTTP only redirects to https",
    does_not_prove: "that the Gateway implementation has programmed the listeners, or the certificates they use",
};

/// The StorageClass of each PVC.
pub static STORAGE_CLASSES: EvidenceKind = EvidenceKind {
    claim: VOLUMES,
    source: "StorageClass",
    verification: Verification::Configured,
    proves: "each PVC in scope uses a StorageClass with the required parameters or an allowed provisioner",
    does_not_prove: "that the provisioner honours the parameters, or anything about statically provisioned volumes (undetermined)",
};

/// The API server's count of Secret writes per provider.
pub static SECRETS_WRITTEN: EvidenceKind = EvidenceKind {
    claim: SECRETS,
    source: "APIServerMetrics",
    verification: Verification::Verified,
    proves: "the API server answering /metrics wrote Secrets only through an encrypting provider, and read none stored in plain text, since it started (apiserver_storage_transformation_operations_total with resource=\"secrets\": to_storage with a non-empty transformer_prefix, no to_storage with an empty one, no from_storage through identity)",
    does_not_prove: "anything about Secrets not written since that API server started (rewrite them to encrypt them), or about other API server replicas, which count their own writes",
};

/// The API server's count of Secret writes, read while more than one
/// kube-apiserver replica is visible: the reading comes from the one replica
/// that answered `/metrics`, so for the cluster it is a setting, not proof.
pub static SECRETS_WRITTEN_ONE_REPLICA: EvidenceKind = EvidenceKind {
    claim: SECRETS,
    source: "APIServerMetricsOneReplica",
    verification: Verification::Configured,
    proves: "the one API server replica that answered /metrics wrote Secrets only through an encrypting provider, and read none stored in plain text, since it started; every visible replica carries --encryption-provider-config",
    does_not_prove: "that the other replicas' configurations put an encrypting provider first (each counts only its own writes, and /metrics through the API service reaches one of them)",
};

/// `--encryption-provider-config` on every kube-apiserver replica.
pub static SECRETS_FLAG: EvidenceKind = EvidenceKind {
    claim: SECRETS,
    source: "EncryptionProviderConfigFlag",
    verification: Verification::Configured,
    proves: "every kube-apiserver replica visible in kube-system runs with an encryption configuration file",
    does_not_prove: "which provider the file puts first for Secrets (identity first means plain text), or that Secrets written before were rewritten",
};

/// An `EncryptionConfiguration` given as offline input.
pub static ENCRYPTION_CONFIGURATION: EvidenceKind = EvidenceKind {
    claim: SECRETS,
    source: "EncryptionConfiguration",
    verification: Verification::Configured,
    proves: "the EncryptionConfiguration given puts an encrypting provider first for Secrets",
    does_not_prove: "that the API server runs with this file, or that Secrets written before were rewritten",
};

/// An attestation of Secret encryption.
pub static SECRETS_ATTESTED: EvidenceKind = EvidenceKind {
    claim: SECRETS,
    source: "Attestation",
    verification: Verification::Attested,
    proves: "a named person stated on a given date that Secrets are encrypted (e.g. by the managed control plane)",
    does_not_prove: "anything the operator can see",
};

/// The `encryption` check family.
pub struct Encryption;

impl Family for Encryption {
    member!(encryption: EncryptionCheck = "encryption");

    fn evidence_kinds(spec: &EncryptionCheck) -> Vec<&'static EvidenceKind> {
        let mut kinds = Vec::new();
        if spec.in_transit.is_some() {
            kinds.extend([&INGRESS_TLS, &GATEWAY_LISTENERS]);
        }
        if let Some(r) = &spec.at_rest {
            if r.storage_classes.is_some() {
                kinds.push(&STORAGE_CLASSES);
            }
            if r.secrets.is_some() {
                kinds.extend([
                    &SECRETS_WRITTEN,
                    &SECRETS_WRITTEN_ONE_REPLICA,
                    &SECRETS_FLAG,
                    &ENCRYPTION_CONFIGURATION,
                    &SECRETS_ATTESTED,
                ]);
            }
        }
        kinds
    }

    /// Kinds read: Ingress, Gateway, HTTPRoute, GRPCRoute (in transit); PVC,
    /// StorageClass, Pod (at rest).
    fn kinds(spec: &EncryptionCheck) -> KindSet {
        let mut k = KindSet::new();
        if spec.in_transit.is_some() {
            k.extend([
                Kind::Ingress,
                Kind::Gateway,
                Kind::HttpRoute,
                Kind::GrpcRoute,
            ]);
        }
        if let Some(at_rest) = &spec.at_rest {
            if at_rest.storage_classes.is_some() {
                k.extend([
                    Kind::PersistentVolumeClaim,
                    Kind::StorageClass,
                    Kind::PersistentVolume,
                ]);
            }
            if at_rest.secrets.is_some() {
                k.extend([Kind::Pod, Kind::EncryptionConfiguration]);
            }
        }
        k
    }

    /// How far a change reaches: an Ingress, Gateway or PersistentVolumeClaim
    /// only its own namespace's findings; HTTPRoutes and GRPCRoutes (attached to Gateways
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
        in_transit::in_transit(t, cx, &mut out);
    }
    if let Some(r) = &spec.at_rest {
        if r.storage_classes.is_none() && r.secrets.is_none() {
            return Err(InvalidSpec::new(
                "spec.check.encryption.atRest",
                "set storageClasses, secrets, or both",
            ));
        }
        if let Some(sc) = &r.storage_classes {
            volumes::storage_classes(sc, cx, &mut out)?;
        }
        if let Some(s) = &r.secrets {
            secrets::secrets(s, cx, &mut out);
        }
    }
    Ok(out)
}
