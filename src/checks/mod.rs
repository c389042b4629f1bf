//! Check families, one module each, all of the same shape:
//!
//! - `kinds(spec) -> Vec<Kind>`: the kinds the check reads (the operator
//!   watches exactly these);
//! - `evaluate(spec, &Context) -> Result<Outcome, InvalidSpec>`: pure.
//!
//! [`evaluate`] and [`kinds_for`] dispatch on the one member of `spec.check`.
use std::collections::BTreeSet;

use crate::api::Check;
use crate::engine::{Context, InvalidSpec, Outcome};
use crate::incremental::Locality;
use crate::snapshot::Kind;

pub mod apiserver;
pub mod audit_logging;
pub mod availability;
pub mod backup;
pub mod encryption;
pub mod image_provenance;
pub mod network_policy;
pub mod rbac;
pub mod workload_security;
pub mod workloads;

/// The member of `spec.check` that is set, to dispatch on: the one place
/// that knows which field belongs to which family.
enum Family<'a> {
    NetworkPolicy(&'a crate::api::NetworkPolicyCheck),
    Encryption(&'a crate::api::EncryptionCheck),
    Rbac(&'a crate::api::RbacCheck),
    Backup(&'a crate::api::BackupCheck),
    Availability(&'a crate::api::AvailabilityCheck),
    WorkloadSecurity(&'a crate::api::WorkloadSecurityCheck),
    AuditLogging(&'a crate::api::AuditLoggingCheck),
    ImageProvenance(&'a crate::api::ImageProvenanceCheck),
}

/// Every member of `check` that is set (exactly one in a valid spec).
fn families(check: &Check) -> Vec<Family<'_>> {
    [
        check.network_policy.as_ref().map(Family::NetworkPolicy),
        check.encryption.as_ref().map(Family::Encryption),
        check.rbac.as_ref().map(Family::Rbac),
        check.backup.as_ref().map(Family::Backup),
        check.availability.as_ref().map(Family::Availability),
        check
            .workload_security
            .as_ref()
            .map(Family::WorkloadSecurity),
        check.audit_logging.as_ref().map(Family::AuditLogging),
        check.image_provenance.as_ref().map(Family::ImageProvenance),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl Family<'_> {
    fn kinds(&self) -> Vec<Kind> {
        match self {
            Family::NetworkPolicy(c) => network_policy::kinds(c),
            Family::Encryption(c) => encryption::kinds(c),
            Family::Rbac(c) => rbac::kinds(c),
            Family::Backup(c) => backup::kinds(c),
            Family::Availability(c) => availability::kinds(c),
            Family::WorkloadSecurity(c) => workload_security::kinds(c),
            Family::AuditLogging(c) => audit_logging::kinds(c),
            Family::ImageProvenance(c) => image_provenance::kinds(c),
        }
    }

    fn locality(&self, kind: Kind) -> Locality {
        match self {
            Family::NetworkPolicy(c) => network_policy::locality(c, kind),
            Family::Encryption(c) => encryption::locality(c, kind),
            Family::Rbac(c) => rbac::locality(c, kind),
            Family::Availability(c) => availability::locality(c, kind),
            Family::WorkloadSecurity(c) => workload_security::locality(c, kind),
            Family::ImageProvenance(c) => image_provenance::locality(c, kind),
            Family::Backup(_) | Family::AuditLogging(_) => Locality::Global,
        }
    }

    fn evaluate(&self, cx: &Context) -> Result<Outcome, InvalidSpec> {
        match self {
            Family::NetworkPolicy(c) => network_policy::evaluate(c, cx),
            Family::Encryption(c) => encryption::evaluate(c, cx),
            Family::Rbac(c) => rbac::evaluate(c, cx),
            Family::Backup(c) => backup::evaluate(c, cx),
            Family::Availability(c) => availability::evaluate(c, cx),
            Family::WorkloadSecurity(c) => workload_security::evaluate(c, cx),
            Family::AuditLogging(c) => audit_logging::evaluate(c, cx),
            Family::ImageProvenance(c) => image_provenance::evaluate(c, cx),
        }
    }
}

/// How many members of `check` are set (exactly one in a valid spec).
pub fn members_set(check: &Check) -> usize {
    families(check).len()
}

/// The kinds a check reads, always including `Namespace` (for the scope).
pub fn kinds_for(check: &Check) -> BTreeSet<Kind> {
    let mut kinds = BTreeSet::from([Kind::Namespace]);
    for f in families(check) {
        kinds.extend(f.kinds());
    }
    kinds
}

/// How far a change of one object of `kind` reaches for `check` (see
/// [`crate::incremental`]). Families that do not declare locality (backup,
/// audit logging), kinds they do not read and a `check` without exactly one
/// member set are [`Locality::Global`].
pub fn locality(check: &Check, kind: Kind) -> Locality {
    match families(check).as_slice() {
        [f] => f.locality(kind),
        _ => Locality::Global,
    }
}

/// Runs the one check set in `check`.
///
/// # Errors
/// [`InvalidSpec`] on `spec.check` when no member or more than one is set (the
/// CRD's CEL rule rejects this at admission, but a `null` member or an offline
/// manifest can still get here), or the family's own spec errors.
pub fn evaluate(check: &Check, cx: &Context) -> Result<Outcome, InvalidSpec> {
    match families(check).as_slice() {
        [f] => f.evaluate(cx),
        set => Err(InvalidSpec::new(
            "spec.check",
            format!(
                "exactly one of networkPolicy, encryption, rbac, backup, availability, workloadSecurity, auditLogging, imageProvenance must be set, found {}",
                set.len()
            ),
        )),
    }
}
