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

/// The kinds a check reads, always including `Namespace` (for the scope).
pub fn kinds_for(check: &Check) -> BTreeSet<Kind> {
    let mut kinds = BTreeSet::from([Kind::Namespace]);
    if let Some(c) = &check.network_policy {
        kinds.extend(network_policy::kinds(c));
    }
    if let Some(c) = &check.encryption {
        kinds.extend(encryption::kinds(c));
    }
    if let Some(c) = &check.rbac {
        kinds.extend(rbac::kinds(c));
    }
    if let Some(c) = &check.backup {
        kinds.extend(backup::kinds(c));
    }
    if let Some(c) = &check.availability {
        kinds.extend(availability::kinds(c));
    }
    if let Some(c) = &check.workload_security {
        kinds.extend(workload_security::kinds(c));
    }
    if let Some(c) = &check.audit_logging {
        kinds.extend(audit_logging::kinds(c));
    }
    if let Some(c) = &check.image_provenance {
        kinds.extend(image_provenance::kinds(c));
    }
    kinds
}

/// How far a change of one object of `kind` reaches for `check` (see
/// [`crate::incremental`]). Families that do not declare locality (backup,
/// audit logging), kinds they do not read and a `check` with no member set are
/// [`Locality::Global`].
pub fn locality(check: &Check, kind: Kind) -> Locality {
    if !crate::engine::check_is_set(check) {
        return Locality::Global;
    }
    if let Some(c) = &check.network_policy {
        network_policy::locality(c, kind)
    } else if let Some(c) = &check.encryption {
        encryption::locality(c, kind)
    } else if let Some(c) = &check.rbac {
        rbac::locality(c, kind)
    } else if let Some(c) = &check.availability {
        availability::locality(c, kind)
    } else if let Some(c) = &check.workload_security {
        workload_security::locality(c, kind)
    } else if let Some(c) = &check.image_provenance {
        image_provenance::locality(c, kind)
    } else {
        Locality::Global
    }
}

/// Runs the one check set in `check`.
///
/// # Errors
/// [`InvalidSpec`] on `spec.check` when no member or more than one is set (the
/// CRD's CEL rule rejects this at admission, but a `null` member or an offline
/// manifest can still get here), or the family's own spec errors.
pub fn evaluate(check: &Check, cx: &Context) -> Result<Outcome, InvalidSpec> {
    let set = [
        check.network_policy.is_some(),
        check.encryption.is_some(),
        check.rbac.is_some(),
        check.backup.is_some(),
        check.availability.is_some(),
        check.workload_security.is_some(),
        check.audit_logging.is_some(),
        check.image_provenance.is_some(),
    ]
    .into_iter()
    .filter(|x| *x)
    .count();
    if set != 1 {
        return Err(InvalidSpec::new(
            "spec.check",
            format!(
                "exactly one of networkPolicy, encryption, rbac, backup, availability, workloadSecurity, auditLogging, imageProvenance must be set, found {set}"
            ),
        ));
    }
    if let Some(c) = &check.network_policy {
        network_policy::evaluate(c, cx)
    } else if let Some(c) = &check.encryption {
        encryption::evaluate(c, cx)
    } else if let Some(c) = &check.rbac {
        rbac::evaluate(c, cx)
    } else if let Some(c) = &check.backup {
        backup::evaluate(c, cx)
    } else if let Some(c) = &check.availability {
        availability::evaluate(c, cx)
    } else if let Some(c) = &check.workload_security {
        workload_security::evaluate(c, cx)
    } else if let Some(c) = &check.audit_logging {
        audit_logging::evaluate(c, cx)
    } else if let Some(c) = &check.image_provenance {
        image_provenance::evaluate(c, cx)
    } else {
        unreachable!("exactly one member is set")
    }
}
