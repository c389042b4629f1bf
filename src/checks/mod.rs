//! The check families and their registry.
//!
//! Each family is a module of its own implementing
//! [`Family`] for one member of `spec.check`; it
//! speaks only the vocabulary ([`crate::vocabulary`]) and reads only the
//! ground (`snapshot`, `api`, `resources`) plus the helper modules here
//! (`apiserver`, `workloads`). [`FAMILIES`] registers them: everything above
//! (the engine, incremental re-evaluation, the operator's watches, `check`,
//! the catalog docs) reaches a family only through [`family_of`] and the
//! functions below. Adding a family: CONTRIBUTING.md.
use std::marker::PhantomData;

use crate::api::Check;
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{Context, Declared, EvidenceKind, Family, InvalidSpec, Locality, Outcome};

pub mod apiserver;
pub mod audit_logging;
pub mod availability;
pub mod backup;
pub mod capacity;
pub mod encryption;
pub mod image_provenance;
pub mod network_policy;
pub mod pod_security;
pub mod rbac;
pub mod service_account_tokens;
pub mod workload_security;
pub mod workloads;

/// Every check family, one line each, in the order of `api::Check::MEMBERS`
/// (a test fails when a member of `spec.check` has no family here, or the
/// order differs).
pub static FAMILIES: &[&dyn Registered] = &[
    &Entry::<network_policy::NetworkPolicies>::NEW,
    &Entry::<encryption::Encryption>::NEW,
    &Entry::<rbac::Rbac>::NEW,
    &Entry::<backup::Backups>::NEW,
    &Entry::<availability::Availability>::NEW,
    &Entry::<workload_security::WorkloadSecurity>::NEW,
    &Entry::<audit_logging::AuditLogging>::NEW,
    &Entry::<image_provenance::ImageProvenance>::NEW,
    &Entry::<pod_security::PodSecurity>::NEW,
    &Entry::<capacity::Capacity>::NEW,
    &Entry::<service_account_tokens::ServiceAccountTokens>::NEW,
];

/// A registered family, callable with the whole `spec.check` (the
/// object-safe face of [`Family`]); each method is the family's, applied to
/// its member of `check`, which must be set ([`Registered::is_set`]).
pub trait Registered: Sync {
    /// The member's name in `spec.check`.
    fn member(&self) -> &'static str;
    /// Whether this family's member is set in `check`.
    fn is_set(&self, check: &Check) -> bool;
    /// [`Family::kinds`].
    fn kinds(&self, check: &Check) -> KindSet;
    /// [`Family::locality`].
    fn locality(&self, check: &Check, kind: Kind) -> Locality;
    /// [`Family::evaluate`].
    ///
    /// # Errors
    /// The family's [`InvalidSpec`].
    fn evaluate(&self, check: &Check, cx: &Context) -> Result<Outcome, InvalidSpec>;
    /// [`Family::evidence_kinds`].
    fn evidence_kinds(&self, check: &Check) -> Vec<&'static EvidenceKind>;
    /// [`Family::reads_apiserver_metrics`].
    fn reads_apiserver_metrics(&self, check: &Check) -> bool;
}

/// The registry entry of family `F`.
pub struct Entry<F>(PhantomData<F>);

impl<F> Entry<F> {
    /// The entry (a constant, for [`FAMILIES`]).
    pub const NEW: Self = Entry(PhantomData);
}

impl<F: Family> Registered for Entry<F> {
    fn member(&self) -> &'static str {
        F::MEMBER
    }
    fn is_set(&self, check: &Check) -> bool {
        F::spec(check).is_some()
    }
    fn kinds(&self, check: &Check) -> KindSet {
        F::spec(check).map(F::kinds).unwrap_or_default()
    }
    fn locality(&self, check: &Check, kind: Kind) -> Locality {
        F::spec(check).map_or(Locality::Global, |s| F::locality(s, kind))
    }
    fn evaluate(&self, check: &Check, cx: &Context) -> Result<Outcome, InvalidSpec> {
        match F::spec(check) {
            Some(s) => F::evaluate(s, cx),
            None => Err(InvalidSpec::new(
                format!("spec.check.{}", F::MEMBER),
                "not set",
            )),
        }
    }
    fn evidence_kinds(&self, check: &Check) -> Vec<&'static EvidenceKind> {
        F::spec(check).map(F::evidence_kinds).unwrap_or_default()
    }
    fn reads_apiserver_metrics(&self, check: &Check) -> bool {
        F::spec(check).is_some_and(F::reads_apiserver_metrics)
    }
}

/// The families whose member of `check` is set (exactly one in a valid spec).
fn set_in(check: &Check) -> impl Iterator<Item = &'static dyn Registered> + '_ {
    FAMILIES.iter().copied().filter(|f| f.is_set(check))
}

/// The one family set in `check`.
///
/// # Errors
/// [`InvalidSpec`] on `spec.check` when no member or more than one is set (the
/// CRD's CEL rule rejects this at admission, but a `null` member or an offline
/// manifest can still get here).
pub fn family_of(check: &Check) -> Result<&'static dyn Registered, InvalidSpec> {
    let mut set = set_in(check);
    if let (Some(f), None) = (set.next(), set.next()) {
        return Ok(f);
    }
    Err(InvalidSpec::new(
        "spec.check",
        format!(
            "exactly one of {} must be set, found {}",
            Check::MEMBERS.join(", "),
            members_set(check)
        ),
    ))
}

/// How many members of `check` are set (exactly one in a valid spec).
pub fn members_set(check: &Check) -> usize {
    set_in(check).count()
}

/// The kinds a check reads, always including `Namespace` (for the scope).
pub fn kinds_for(check: &Check) -> KindSet {
    let mut kinds = KindSet::from([Kind::Namespace]);
    for f in set_in(check) {
        kinds.extend(f.kinds(check));
    }
    kinds
}

/// What the family of `check` may read during an evaluation (its kinds,
/// `Namespace`, and the API server's metrics when it reads them).
pub fn declared(family: &dyn Registered, check: &Check) -> Declared {
    let mut kinds = family.kinds(check);
    kinds.insert(Kind::Namespace);
    Declared {
        member: family.member(),
        kinds,
        apiserver_metrics: family.reads_apiserver_metrics(check),
    }
}

/// How far a change of one object of `kind` reaches for `check` (see
/// [`Locality`]). A `check` without exactly one member set is
/// [`Locality::Global`].
pub fn locality(check: &Check, kind: Kind) -> Locality {
    family_of(check).map_or(Locality::Global, |f| f.locality(check, kind))
}

/// The kinds of evidence `check` can produce (empty without exactly one
/// member set).
pub fn evidence_kinds_of(check: &Check) -> Vec<&'static EvidenceKind> {
    family_of(check).map_or_else(|_| Vec::new(), |f| f.evidence_kinds(check))
}

/// What a check reads as evidence, in one line for the catalog table: each
/// source with its strength.
pub fn evidence_of(check: &Check) -> String {
    evidence_kinds_of(check)
        .iter()
        .map(|k| format!("{} ({:?})", k.source, k.verification))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `check` reads the API server's storage-transformation metrics.
pub fn reads_apiserver_metrics(check: &Check) -> bool {
    family_of(check).is_ok_and(|f| f.reads_apiserver_metrics(check))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_of_spec_check_has_one_family_in_order() {
        let members: Vec<&str> = FAMILIES.iter().map(|f| f.member()).collect();
        assert_eq!(members, Check::MEMBERS);
    }

    /// The smallest valid spec of `member` (`{}` unless it has required fields).
    fn minimal(member: &str) -> serde_json::Value {
        match member {
            "backup" => serde_json::json!({"maxAge": "26h"}),
            _ => serde_json::json!({}),
        }
    }

    #[test]
    fn each_member_name_reaches_the_family_of_that_member() {
        for member in Check::MEMBERS {
            let check: Check =
                serde_json::from_value(serde_json::json!({ *member: minimal(member) }))
                    .unwrap_or_else(|e| panic!("{member}: {e} (give it a minimal spec here)"));
            let family = family_of(&check).unwrap_or_else(|e| panic!("{member}: {e}"));
            assert_eq!(family.member(), *member);
        }
    }

    #[test]
    fn the_members_are_the_check_schema_properties() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(crate::api::Control::crd()).unwrap();
        let check = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["check"];
        let properties: std::collections::BTreeSet<&str> = check["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let members: std::collections::BTreeSet<&str> = Check::MEMBERS.iter().copied().collect();
        assert_eq!(properties, members);
        let rule = check["x-kubernetes-validations"][0]["rule"]
            .as_str()
            .unwrap();
        assert!(
            Check::MEMBERS
                .iter()
                .all(|m| rule.contains(&format!("has(self.{m})"))),
            "{rule}"
        );
    }
}
