//! Evidence strength, walked over every family: each kind of evidence a family
//! declares is reviewed here (what it reads, and why that is Verified,
//! Configured or Attested), every evidence item a Control produces is one its
//! family declares, and across the catalog every declared kind is produced at
//! least once. "No evidence item says Verified unless it proves the property
//! itself" (issue 12) is this test.
use std::collections::BTreeSet;

use soc2_operator::api::{Control, Verification};
use soc2_operator::checks::{FAMILIES, evidence_kinds_of};
use soc2_operator::commands::check::{BUILTIN_CONTROLS, controls_from, read_inputs, snapshot_from};
use soc2_operator::snapshot::Snapshot;

use crate::util::*;

/// Every kind of evidence there is, reviewed: (claim's source, strength, why).
/// Verified only where what is read is the property itself; a setting that
/// should produce it is Configured; a person's word is Attested.
const REVIEWED: &[(&str, Verification, &str)] = &[
    (
        "APIServerMetrics",
        Verification::Verified,
        "the API server's own count of Secret writes through an encrypting provider, or of audit events written: what happened, not what was asked for",
    ),
    (
        "APIServerMetricsOneReplica",
        Verification::Configured,
        "one replica's count of its own writes: the other replicas may be configured otherwise",
    ),
    (
        "RBAC",
        Verification::Verified,
        "RBAC objects are what the RBAC authorizer grants",
    ),
    (
        "VeleroBackup",
        Verification::Verified,
        "Velero's own report that a backup finished and wrote items without failures",
    ),
    (
        "VeleroRestore",
        Verification::Verified,
        "Velero's own report that a restore finished and restored items",
    ),
    (
        "VolumeSnapshot",
        Verification::Verified,
        "the snapshot controller's report that a snapshot is ready to use",
    ),
    (
        "PodTemplate",
        Verification::Verified,
        "what the pod-creating objects request is the property (mutating webhooks are said not to be proven)",
    ),
    (
        "PodResources",
        Verification::Configured,
        "declared requests and limits, or a LimitRange's defaults, which apply at admission: pods running now may have been admitted before either",
    ),
    (
        "ContainerImage",
        Verification::Verified,
        "the image references the workloads run are the property",
    ),
    (
        "EncryptionProviderConfigFlag",
        Verification::Configured,
        "a flag names a file; the file's first provider decides",
    ),
    (
        "EncryptionConfiguration",
        Verification::Configured,
        "a file the API server may or may not run with",
    ),
    (
        "AuditPolicyFlag",
        Verification::Configured,
        "a policy of level None records nothing",
    ),
    (
        "PodSecurityAdmissionLabel",
        Verification::Configured,
        "a label the PodSecurity admission plugin should enforce; its exemptions are not visible",
    ),
    (
        "StorageClass",
        Verification::Configured,
        "parameters the provisioner should honour",
    ),
    (
        "IngressTLS",
        Verification::Configured,
        "the controller serves the certificate, or does not",
    ),
    (
        "GatewayListener",
        Verification::Configured,
        "the implementation programs the listener, or does not",
    ),
    (
        "NetworkPolicy",
        Verification::Configured,
        "enforced only by a network plugin that supports it",
    ),
    (
        "WorkloadSpec",
        Verification::Configured,
        "replicas and budgets declared, not pods running and ready",
    ),
    (
        "Attestation",
        Verification::Attested,
        "a named person's statement on a date",
    ),
];

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The catalog, and the attestation variants it does not use.
fn controls() -> Vec<Control> {
    let (mut controls, errors) = controls_from(
        &BUILTIN_CONTROLS
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect::<Vec<_>>(),
    );
    assert!(errors.is_empty(), "{errors:?}");
    let attestation = "{statement: managed by the provider, attestedBy: sre@example.com, attestedAt: \"2026-05-01\"}";
    for check in [
        format!("encryption: {{atRest: {{secrets: {{attestation: {attestation}}}}}}}"),
        format!("auditLogging: {{attestation: {attestation}}}"),
    ] {
        controls.push(control_with(&check, "minimumEvidence: Attested"));
    }
    controls
}

/// The snapshots walked: each directory of real manifests as offline input,
/// and a small cluster built to produce every kind of evidence.
fn snapshots() -> Vec<(String, Snapshot)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("tests/fixtures/real")).unwrap() {
        let dir = entry.unwrap().path();
        let inputs = read_inputs(dir.to_str().unwrap()).unwrap();
        let (s, _) = snapshot_from(&inputs, "default");
        out.push((dir.display().to_string(), s));
    }
    out.push(("tests/fixtures/evidence".into(), evidence_cluster(&[])));
    out.push((
        "tests/fixtures/evidence with a second kube-apiserver replica".into(),
        evidence_cluster(&[&fixture("evidence/second-apiserver.yaml")]),
    ));
    out
}

/// The cluster built to produce every kind of evidence, plus `extra` documents.
fn evidence_cluster(extra: &[&str]) -> Snapshot {
    let mut cluster = Snapshot::default();
    for crds in ["real/velero/crds", "real/external-snapshotter/crds"] {
        for f in std::fs::read_dir(root().join("tests/fixtures").join(crds)).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            cluster.insert_yaml(&text, "default").unwrap();
        }
    }
    for doc in
        std::iter::once(fixture("evidence/cluster.yaml").as_str()).chain(extra.iter().copied())
    {
        cluster.insert_yaml(doc, "default").unwrap();
    }
    cluster
        .set_apiserver_metrics_text(&fixture("evidence/metrics.txt"))
        .unwrap();
    cluster.add_implicit_namespaces();
    cluster
}

#[test]
fn every_kind_of_evidence_is_reviewed() {
    let mut declared = BTreeSet::new();
    for c in controls() {
        for k in evidence_kinds_of(&c.spec.check) {
            declared.insert((k.source, k.verification.rank()));
            let reviewed = REVIEWED.iter().find(|(s, ..)| *s == k.source);
            let Some((_, strength, _)) = reviewed else {
                panic!("evidence source {} is not reviewed in REVIEWED", k.source);
            };
            assert_eq!(k.verification, *strength, "{} ({})", k.source, k.claim);
            assert_eq!(
                k.source == "Attestation",
                k.verification == Verification::Attested,
                "only an attestation is Attested: {}",
                k.source
            );
            assert!(
                !k.proves.is_empty() && !k.does_not_prove.is_empty(),
                "{} must say what it proves and what it does not",
                k.source
            );
        }
    }
    let reviewed: BTreeSet<_> = REVIEWED.iter().map(|(s, v, _)| (*s, v.rank())).collect();
    assert_eq!(declared, reviewed, "a reviewed kind no family declares");
    assert!(FAMILIES.len() >= 8);
}

#[test]
fn every_evidence_item_is_a_declared_kind_and_every_kind_is_produced() {
    let controls = controls();
    let mut produced = BTreeSet::new();
    for (name, s) in snapshots() {
        for c in &controls {
            let kinds = evidence_kinds_of(&c.spec.check);
            let e = eval(c, &s);
            for ev in &e.evidence {
                let declared = kinds.iter().any(|k| {
                    k.source == ev.source
                        && k.claim == ev.claim
                        && k.verification == ev.verification
                });
                assert!(
                    declared,
                    "{name}: Control {:?} produced evidence its family does not declare: {ev:?}",
                    c.metadata.name
                );
                assert_eq!(
                    ev.verification == Verification::Attested,
                    ev.attested_by.is_some() && ev.attested_at.is_some(),
                    "Attested evidence, and only it, names who and when: {ev:?}"
                );
                produced.insert(ev.source.clone());
            }
        }
    }
    let all: BTreeSet<String> = REVIEWED.iter().map(|(s, ..)| (*s).to_owned()).collect();
    let missing: Vec<_> = all.difference(&produced).collect();
    assert!(missing.is_empty(), "never produced: {missing:?}");
}
