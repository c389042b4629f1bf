//! Secrets encrypted at rest by the API server (Kubernetes "Encrypting
//! Confidential Data at Rest"). The first provider of the configuration that
//! applies to Secrets encrypts every write; `identity` first means plain text.
//!
//! Evidence, strongest first: the API server's own count of Secret writes per
//! provider (`apiserver_storage_transformation_operations_total{resource=
//! "secrets", transformation_type="to_storage"}`, Verified); the
//! same count read while more than one kube-apiserver replica is visible
//! (Configured: the reading is one replica's); the
//! `--encryption-provider-config` flag on every kube-apiserver replica, or an
//! `EncryptionConfiguration` given as offline input and judged by its first
//! provider for Secrets (Configured); an attestation (Attested). A replica
//! without the flag, an identity provider first, Secret writes through
//! identity, Secrets created (`apiserver_request_total`) with no
//! transformation of a Secret counted (no provider applies to them), and
//! reads of Secrets stored in plain text, are violations — an
//! attestation does not outweigh what the API server itself reports; no
//! evidence at all is Unknown.

use super::super::apiserver;
use super::{
    ENCRYPTION_CONFIGURATION, ENCRYPTION_FLAG, SECRETS_ATTESTED, SECRETS_FLAG, SECRETS_WRITTEN,
    SECRETS_WRITTEN_ONE_REPLICA,
};
use crate::api::SecretEncryption;
use crate::resources::compact::Pod;
use crate::resources::encryption_config::EncryptionConfiguration;
use crate::snapshot::{ApiServerMetrics, name_of};
use crate::vocabulary::{Context, Outcome, list_some, violation};

/// What the API server's metrics say of Secrets since it started.
#[derive(Default)]
struct SecretCounts {
    /// The prefixes of encrypting writes.
    encrypted: Vec<String>,
    /// Writes through identity (plain text).
    plain_writes: f64,
    /// Reads of Secrets stored in plain text (through the identity provider).
    plain_reads: f64,
}

/// Secret writes and plain-text reads in the API server's metrics; `None`
/// when none were counted (no Secret written since the API server started, an
/// API server older than the `resource` label, or no encryption
/// configuration at all, under which nothing is counted).
fn secret_counts(m: &ApiServerMetrics) -> Option<SecretCounts> {
    let mut c = SecretCounts::default();
    for s in m.storage_transformations.iter().filter(|s| {
        s.resource == "secrets" && s.count > 0.0 && (s.status == "OK" || s.status.is_empty())
    }) {
        match (
            s.transformation_type.as_str(),
            s.transformer_prefix.as_str(),
        ) {
            ("to_storage", "") => c.plain_writes += s.count,
            ("to_storage", p) => c.encrypted.push(p.to_owned()),
            ("from_storage", "identity") => c.plain_reads += s.count,
            _ => {}
        }
    }
    c.encrypted.sort();
    c.encrypted.dedup();
    let seen = !c.encrypted.is_empty() || c.plain_writes > 0.0 || c.plain_reads > 0.0;
    seen.then_some(c)
}

/// Judges Secret encryption at rest into `out`.
pub(super) fn secrets(spec: &SecretEncryption, cx: &Context, out: &mut Outcome) {
    let before = (out.evidence.len(), out.violations.len());
    let replicas = flags(cx, out);
    configurations(cx, out);
    if let Some(m) = cx.apiserver_metrics() {
        match secret_counts(m) {
            Some(c) => counts(cx, &c, replicas, out),
            None => created_without_transformation(cx, m, out),
        }
    }
    if let Some(a) = &spec.attestation {
        out.evidence.push(SECRETS_ATTESTED.attested(a, ""));
    }
    if (out.evidence.len(), out.violations.len()) == before {
        out.undetermined.push(cx.control_violation(
            "NoEncryptionEvidence",
            "no kube-apiserver pod in kube-system, no EncryptionConfiguration, no Secret writes in the API server's metrics and no attestation in spec.check.encryption.atRest.secrets: whether Secrets are encrypted cannot be told".into(),
        ));
    }
}

/// What the counts prove (Verified either way): plain-text writes or reads
/// are violations, encrypting writes and nothing plain is evidence. An
/// attestation does not outweigh them: the API server itself wrote or read
/// Secrets in plain text, which a copy of etcd or its backups discloses
/// whatever encrypts the disks below. With more than one kube-apiserver
/// replica visible (`replicas`) the counts are one replica's: Configured.
fn counts(cx: &Context, c: &SecretCounts, replicas: usize, out: &mut Outcome) {
    if c.plain_writes > 0.0 {
        out.violations.push(cx.control_violation(
            "SecretsWrittenUnencrypted",
            format!(
                "the API server wrote Secrets {} times through the identity provider since it started (apiserver_storage_transformation_operations_total, to_storage, empty transformer_prefix): they are stored in plain text",
                c.plain_writes
            ),
        ));
    }
    if c.plain_reads > 0.0 {
        out.violations.push(cx.control_violation(
            "SecretsStoredUnencrypted",
            format!(
                "the API server read Secrets stored in plain text {} times since it started (from_storage through identity): rewrite every Secret to encrypt it",
                c.plain_reads
            ),
        ));
    }
    if c.plain_writes == 0.0 && c.plain_reads == 0.0 && !c.encrypted.is_empty() {
        let what = format!(
            "the API server wrote Secrets only through {} and read none stored in plain text since it started (apiserver_storage_transformation_operations_total)",
            c.encrypted.join(", ")
        );
        // Each replica counts its own writes; a reading reaches one of them.
        out.evidence.push(if replicas > 1 {
            SECRETS_WRITTEN_ONE_REPLICA.evidence(format!(
                "{what}; the reading comes from one of {replicas} kube-apiserver replicas"
            ))
        } else {
            SECRETS_WRITTEN.evidence(what)
        });
    }
}

/// Secrets created (`apiserver_request_total`) while no transformation of a
/// Secret was counted: no encryption configuration applies to Secrets (the
/// API server counts transformations only through one, identity included),
/// so they were written in plain text. Not concluded from an API server older
/// than the `resource` label (transformations it counts name no resource).
fn created_without_transformation(cx: &Context, m: &ApiServerMetrics, out: &mut Outcome) {
    let unlabelled = m
        .storage_transformations
        .iter()
        .any(|s| s.resource.is_empty() && s.count > 0.0);
    if m.secrets_created > 0.0 && !unlabelled {
        out.violations.push(cx.control_violation(
            "SecretsWrittenUnencrypted",
            format!(
                "the API server created {} Secrets since it started (apiserver_request_total) and counted no storage transformation of a Secret (apiserver_storage_transformation_operations_total): no encryption provider applies to Secrets, they are stored in plain text",
                m.secrets_created
            ),
        ));
    }
}

/// The `--encryption-provider-config` flag on every kube-apiserver replica
/// (Configured); a replica without it writes Secrets in plain text. Returns
/// how many replicas are visible.
fn flags(cx: &Context, out: &mut Outcome) -> usize {
    let pods: Vec<&Pod> = apiserver::pods(cx).collect();
    out.resources_checked += pods.len() as u64;
    let (with, without): (Vec<&Pod>, Vec<&Pod>) = pods
        .iter()
        .partition(|p| apiserver::flag_value(p, ENCRYPTION_FLAG).is_some());
    for p in &without {
        out.violations.push(violation(
            *p,
            "SecretsNotEncrypted",
            format!(
                "kube-apiserver runs without {ENCRYPTION_FLAG}: it writes Secrets in plain text"
            ),
        ));
    }
    if !with.is_empty() && without.is_empty() {
        let names: Vec<String> = with
            .iter()
            .map(|p| format!("kube-system/{}", name_of(*p)))
            .collect();
        out.evidence.push(SECRETS_FLAG.evidence(format!(
            "{} run kube-apiserver with {ENCRYPTION_FLAG}",
            list_some(&names, 5)
        )));
    }
    pods.len()
}

/// Offline `EncryptionConfiguration`s, judged by the first provider that
/// applies to Secrets (Configured); identity first, or none, is plain text.
fn configurations(cx: &Context, out: &mut Outcome) {
    for c in cx.objects::<EncryptionConfiguration>().iter() {
        out.resources_checked += 1;
        match c.providers_for("", "secrets").first() {
            Some(p) if p.encrypts() => {
                let name = p.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
                out.evidence.push(ENCRYPTION_CONFIGURATION.evidence(format!(
                    "the EncryptionConfiguration writes Secrets through its first provider for them, {}{name}",
                    p.kind
                )));
            }
            Some(_) => out.violations.push(violation(
                c.as_ref(),
                "SecretsNotEncrypted",
                "the first provider for Secrets is identity: they are written in plain text (the providers after it only decrypt)".into(),
            )),
            None => out.violations.push(violation(
                c.as_ref(),
                "SecretsNotEncrypted",
                "no resources entry names secrets, *. or *.*: Secrets are written in plain text".into(),
            )),
        }
    }
}
