//! What check families speak: the [`Family`] shape every family implements,
//! the [`Context`] it evaluates in (a view of the snapshot that holds only the
//! kinds it declared), the [`Outcome`] it returns, [`InvalidSpec`],
//! [`Locality`], and the parsing and message helpers.
//!
//! This floor sits between the ground (`snapshot`, `api`, `resources`) and the
//! families (`checks::*`): a family imports only this module and the ground,
//! and the engine above reads what families return through the same types
//! (`tests/layers.rs` keeps it so).
use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;

use crate::api::{Attestation, Check, Evidence, Verification, Violation};
use crate::snapshot::{ApiServerMetrics, Kind, KindSet, Objects, Snapshot, Stored, name_of};

mod parse;
mod text;

pub use parse::{human, parse_duration, parse_selector, parse_time, selects_everything};
pub use text::{MAX_CONDITION_MESSAGE, MAX_VIOLATION_MESSAGE, list_some, truncate};

/// One check family: a member of `spec.check` and how it is evaluated.
///
/// Every family is a unit type in its own module under `src/checks/`,
/// registered by one line in `checks::FAMILIES` (see CONTRIBUTING.md). The
/// engine, the operator's incremental re-evaluation, `check` and the catalog
/// documentation all go through this trait, never through a family by name.
pub trait Family: Sync + 'static {
    /// The member's name in `spec.check` (camelCase, as in the CRD), e.g.
    /// `networkPolicy`; must be listed in `api::Check::MEMBERS`.
    const MEMBER: &'static str;

    /// The member's spec type (in `api`).
    type Spec: 'static;

    /// The member of `check` this family evaluates, when set.
    fn spec(check: &Check) -> Option<&Self::Spec>;

    /// The kinds `spec` reads (besides `Namespace`, which every check may
    /// read for its scope). The operator watches exactly these, and
    /// [`Context::objects`] refuses every other kind.
    fn kinds(spec: &Self::Spec) -> KindSet;

    /// How far a change of one object of `kind` reaches (see [`Locality`]);
    /// called for `Namespace` and every kind of [`Family::kinds`].
    fn locality(spec: &Self::Spec, kind: Kind) -> Locality;

    /// Evaluates `spec` in `cx`. Pure: no I/O, time is `cx.now`.
    ///
    /// # Errors
    /// [`InvalidSpec`] naming the field, for what the CRD's schema cannot
    /// reject (an unparsable duration, an empty option set, …).
    fn evaluate(spec: &Self::Spec, cx: &Context) -> Result<Outcome, InvalidSpec>;

    /// Every kind of evidence `spec` can produce: the claim it supports, its
    /// source and strength, what it proves and what it does not. Every
    /// [`Evidence`] the family emits is made from one of these
    /// ([`EvidenceKind::evidence`]); the catalog documentation
    /// (`docs/controls.md`) lists them, and a test checks that no emitted
    /// item differs from its kind.
    fn evidence_kinds(spec: &Self::Spec) -> Vec<&'static EvidenceKind>;

    /// Whether `spec` reads the API server's storage-transformation metrics
    /// ([`Context::apiserver_metrics`]); the operator reads `/metrics`
    /// only for such checks. Default: no.
    fn reads_apiserver_metrics(_spec: &Self::Spec) -> bool {
        false
    }
}

/// The items of [`Family`] that tie a family to its member of `spec.check`:
/// `member!(rbac: RbacCheck = "rbac")` inside `impl Family for …` declares
/// `MEMBER = "rbac"`, `Spec = RbacCheck` and `spec()` returning
/// `check.rbac.as_ref()`.
macro_rules! member {
    ($field:ident: $spec:ty = $name:literal) => {
        const MEMBER: &'static str = $name;
        type Spec = $spec;
        fn spec(check: &$crate::api::Check) -> Option<&$spec> {
            check.$field.as_ref()
        }
    };
}
pub(crate) use member;

/// A kind of evidence a family can produce: the claim it supports, where it
/// comes from, how strong it is, and in plain words what it proves and what
/// it does not (for the catalog documentation and for auditors).
#[derive(Debug, PartialEq, Eq)]
pub struct EvidenceKind {
    /// The claim it supports, e.g. "Secrets are encrypted at rest".
    pub claim: &'static str,
    /// Its source, in CamelCase, e.g. `APIServerMetrics`.
    pub source: &'static str,
    /// Its strength.
    pub verification: Verification,
    /// What it proves.
    pub proves: &'static str,
    /// What it does not prove.
    pub does_not_prove: &'static str,
}

impl EvidenceKind {
    /// An evidence item of this kind saying `message`.
    pub fn evidence(&'static self, message: String) -> Evidence {
        Evidence {
            claim: self.claim.to_owned(),
            source: self.source.to_owned(),
            verification: self.verification,
            message,
            attested_by: None,
            attested_at: None,
        }
    }

    /// An `Attested` evidence item of this kind from `attestation`, naming
    /// who attested and when.
    pub fn attested(&'static self, attestation: &Attestation, note: &str) -> Evidence {
        Evidence {
            attested_by: Some(attestation.attested_by.clone()),
            attested_at: Some(attestation.attested_at.clone()),
            ..self.evidence(format!(
                "{} (attested by {} on {}){note}",
                attestation.statement, attestation.attested_by, attestation.attested_at
            ))
        }
    }
}

/// A spec error only the engine can see, naming the field (JSON path from the
/// object root, e.g. `spec.check.backup.maxAge`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// The offending field, e.g. `spec.scope.namespaceSelector`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidSpec {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        InvalidSpec {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// How far a change of one object of a kind reaches, for one check family
/// (what lets the operator re-evaluate only part of a Control).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locality {
    /// Only findings about objects in the object's own namespace (for the
    /// `Namespace` kind: in that namespace). The family must find them while
    /// looking at that namespace ([`Context::each_namespace`]).
    Namespace,
    /// Only findings about cluster-scoped objects.
    Cluster,
    /// Anything: re-evaluate the whole Control.
    Global,
}

/// The result of a check family: what it looked at and what it found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Objects (and namespaces) looked at.
    pub resources_checked: u64,
    /// Every violation (unsorted; the engine sorts them).
    pub violations: Vec<Violation>,
    /// Objects (or requirements, as Control findings) whose compliance cannot
    /// be told from what can be seen: each makes the verdict Unknown unless
    /// there are violations.
    pub undetermined: Vec<Violation>,
    /// Evidence behind the verdict.
    pub evidence: Vec<Evidence>,
    /// Informational notes, e.g. "Gateway API not installed: Gateways not checked".
    pub notes: Vec<String>,
    /// A reason that makes the control non-compliant on its own, with its
    /// message, e.g. (`BackupProviderNotInstalled`, "…").
    pub blocking: Option<(String, String)>,
    /// What [`Context::each_namespace`] attributed to each in-scope namespace:
    /// the resources checked and the violations found while looking at it.
    /// Everything else is the cluster-wide part. Incremental evaluation
    /// replaces one namespace's parts when only that namespace changed.
    pub namespace_parts: Vec<NamespacePart>,
}

/// What one call of [`Context::each_namespace`]'s closure added for one
/// namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespacePart {
    /// The namespace.
    pub namespace: String,
    /// Added to [`Outcome::resources_checked`].
    pub checked: u64,
    /// Indices of the violations it added to [`Outcome::violations`] (before
    /// the engine sorts them).
    pub violations: std::ops::Range<usize>,
    /// Indices of the findings it added to [`Outcome::undetermined`].
    pub undetermined: std::ops::Range<usize>,
}

/// What a family may read: the kinds it declared (plus `Namespace`), and the
/// API server's metrics when it declared it reads them.
#[derive(Clone, Copy, Debug)]
pub struct Declared {
    /// The family's `spec.check` member, for error messages.
    pub member: &'static str,
    /// The kinds it may read.
    pub kinds: KindSet,
    /// Whether it may read the storage-transformation metrics.
    pub apiserver_metrics: bool,
}

/// Evaluation context handed to every check family: the snapshot as far as
/// the family declared it, the time, and the Control's scope.
pub struct Context<'a> {
    snapshot: &'a Snapshot,
    declared: Declared,
    /// An undeclared read seen (release builds; debug builds panic).
    undeclared: Cell<Option<Kind>>,
    /// The evaluation time.
    pub now: Timestamp,
    /// The namespaces in the Control's scope, sorted.
    pub namespaces: &'a BTreeSet<String>,
    /// The Control's name (for control-level violations).
    pub control_name: &'a str,
}

impl<'a> Context<'a> {
    /// A context over `snapshot` that lets the family read only `declared`.
    pub fn new(
        snapshot: &'a Snapshot,
        declared: Declared,
        now: Timestamp,
        namespaces: &'a BTreeSet<String>,
        control_name: &'a str,
    ) -> Self {
        Context {
            snapshot,
            declared,
            undeclared: Cell::new(None),
            now,
            namespaces,
            control_name,
        }
    }

    /// The objects of kind `K`.
    ///
    /// # Panics
    /// In debug builds (the tests), when the family did not declare `K` in
    /// [`Family::kinds`]: the operator would never watch `K`, and the family
    /// would silently see nothing. Release builds log the error, remember it
    /// ([`Context::undeclared_read`]) and return no objects.
    pub fn objects<K: Stored>(&self) -> View<'a, K> {
        View(self.allow(K::KIND).then(|| K::objects(self.snapshot)))
    }

    /// Whether objects of `kind` can exist (built-in, or its CRD installed).
    ///
    /// # Panics
    /// As [`Context::objects`], for an undeclared `kind`.
    pub fn is_installed(&self, kind: Kind) -> bool {
        self.allow(kind) && self.snapshot.is_installed(kind)
    }

    /// What the API server's `/metrics` said (storage transformations, audit
    /// events), `None` when it was not read.
    ///
    /// # Panics
    /// In debug builds, when the family did not declare
    /// [`Family::reads_apiserver_metrics`].
    pub fn apiserver_metrics(&self) -> Option<&'a ApiServerMetrics> {
        if !self.declared.apiserver_metrics {
            self.refuse("the API server's metrics");
            return None;
        }
        self.snapshot.apiserver_metrics()
    }

    /// Whether the snapshot is offline input, in which objects a check refers
    /// to may simply be missing (see [`Snapshot::is_partial`]).
    pub fn is_partial(&self) -> bool {
        self.snapshot.is_partial()
    }

    /// The kind an undeclared read asked for, if any happened.
    pub fn undeclared_read(&self) -> Option<Kind> {
        self.undeclared.get()
    }

    fn allow(&self, kind: Kind) -> bool {
        if kind == Kind::Namespace || self.declared.kinds.contains(&kind) {
            return true;
        }
        // Said once per evaluation, not once per namespace.
        if self.undeclared.replace(Some(kind)).is_none() {
            self.refuse(&kind.to_string());
        }
        false
    }

    #[cold]
    fn refuse(&self, what: &str) {
        let message = format!(
            "check family {} read {what}, which it did not declare: the operator would not watch it",
            self.declared.member
        );
        if cfg!(debug_assertions) {
            panic!("{message}");
        }
        tracing::error!("{message}");
    }

    /// Whether `namespace` is in scope.
    pub fn in_scope(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    /// Calls `f` for every in-scope namespace in order, and attributes what
    /// `f` adds to `out.resources_checked` and `out.violations` to that
    /// namespace ([`Outcome::namespace_parts`]). Families whose findings in a
    /// namespace depend only on that namespace's objects (and cluster-scoped
    /// ones) iterate namespaces through this, so that a change confined to one
    /// namespace can be re-evaluated for that namespace alone; what they find
    /// outside it is the cluster-wide part, whatever namespace it names.
    pub fn each_namespace(&self, out: &mut Outcome, mut f: impl FnMut(&'a str, &mut Outcome)) {
        for ns in self.namespaces {
            let (checked, found, unknown) = (
                out.resources_checked,
                out.violations.len(),
                out.undetermined.len(),
            );
            f(ns.as_str(), out);
            out.namespace_parts.push(NamespacePart {
                namespace: ns.clone(),
                checked: out.resources_checked.saturating_sub(checked),
                violations: found..out.violations.len(),
                undetermined: unknown..out.undetermined.len(),
            });
        }
    }

    /// A finding about the Control itself (for requirements that no single
    /// object carries, e.g. "no restore tested in 30 days"), as a violation
    /// or an undetermined finding.
    pub fn control_violation(&self, reason: &str, message: String) -> Violation {
        Violation {
            namespace: None,
            kind: "Control".into(),
            name: self.control_name.to_owned(),
            api_version: "soc2-operator.dev/v1alpha1".into(),
            reason: reason.into(),
            message,
        }
    }
}

/// The objects of one kind as a family sees them (empty after a refused
/// read); the read-only part of [`Objects`].
pub struct View<'a, K>(Option<&'a Objects<K>>);

impl<'a, K: kube::Resource> View<'a, K> {
    /// The objects in `namespace` (`""` for cluster-scoped kinds), by name.
    pub fn in_namespace(&self, namespace: &str) -> &'a [Arc<K>] {
        self.0.map_or(&[], |o| o.in_namespace(namespace))
    }

    /// Every object, by namespace then name.
    pub fn iter(&self) -> impl Iterator<Item = &'a Arc<K>> + use<'a, K> {
        self.0.into_iter().flat_map(|o| o.iter())
    }

    /// The object `namespace`/`name`, if any.
    pub fn get(&self, namespace: &str, name: &str) -> Option<&'a Arc<K>> {
        self.0.and_then(|o| o.get(namespace, name))
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.0.map_or(0, Objects::len)
    }

    /// True when there are no objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A violation of `obj` with `reason` (CamelCase) and `message`.
pub fn violation<K>(obj: &K, reason: &str, message: String) -> Violation
where
    K: kube::Resource<DynamicType = ()>,
{
    Violation {
        namespace: obj.meta().namespace.clone(),
        kind: K::kind(&()).into_owned(),
        name: name_of(obj).to_owned(),
        api_version: K::api_version(&()).into_owned(),
        reason: reason.into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::compact::Deployment;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::api::networking::v1::NetworkPolicy;

    /// Runs `f` in a context over an empty snapshot that declares
    /// NetworkPolicies only.
    fn with_context(f: impl FnOnce(&Context)) {
        let s = Snapshot::default();
        let scope = BTreeSet::new();
        let declared = Declared {
            member: "test",
            kinds: KindSet::from([Kind::NetworkPolicy]),
            apiserver_metrics: false,
        };
        f(&Context::new(
            &s,
            declared,
            Timestamp::UNIX_EPOCH,
            &scope,
            "c",
        ));
    }

    #[test]
    fn a_family_reads_what_it_declared_and_namespaces() {
        with_context(|cx| {
            assert!(cx.objects::<NetworkPolicy>().is_empty());
            assert!(cx.objects::<Namespace>().is_empty());
            assert_eq!(cx.undeclared_read(), None);
        });
    }

    #[test]
    #[should_panic(expected = "read Deployment.apps/v1, which it did not declare")]
    fn an_undeclared_read_fails_in_test_builds() {
        with_context(|cx| {
            let _ = cx.objects::<Deployment>();
        });
    }

    #[test]
    #[should_panic(expected = "read the API server's metrics")]
    fn undeclared_apiserver_metrics_fail_in_test_builds() {
        with_context(|cx| {
            let _ = cx.apiserver_metrics();
        });
    }
}
