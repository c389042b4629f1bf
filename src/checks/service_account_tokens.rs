//! ServiceAccount tokens — TSC CC6.1 (logical access is restricted to what
//! is needed): a pod that never calls the Kubernetes API gets no credential
//! for it, so a compromised container cannot use its ServiceAccount's
//! permissions.
//!
//! Rule (Kubernetes "Configure Service Accounts for Pods", opt out of API
//! credential automounting): for the pods of every pod-creating object in
//! scope (see [`workloads`]), the pod spec's `automountServiceAccountToken`
//! decides when set; when absent, the ServiceAccount's
//! (`spec.serviceAccountName`, else the deprecated `spec.serviceAccount`,
//! else `default`) decides; absent on
//! both means the token is mounted. Pods of a ServiceAccount listed in
//! `allowedServiceAccounts` pass, and so do mirror pods of static pods (the
//! API server's ServiceAccount admission gives them no token).
use k8s_openapi::api::core::v1::ServiceAccount;

use super::apiserver::MIRROR_ANNOTATION;
use super::workloads::{self, Workload};
use crate::api::{ServiceAccountTokenCheck, Verification};
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, member};

/// The pod specs and their ServiceAccounts.
pub static TOKEN_MOUNTS: EvidenceKind = EvidenceKind {
    claim: "Pods get no API credential they do not need",
    source: "PodTemplate",
    verification: Verification::Verified,
    proves: "whether the pod specs of every pod-creating object in scope, with their ServiceAccounts' automountServiceAccountToken, have a ServiceAccount token mounted",
    does_not_prove: "tokens mounted another way (a projected serviceAccountToken volume, a Secret of type kubernetes.io/service-account-token), what the allowed ServiceAccounts may do (the RBAC Controls judge that), or pods changed by a mutating webhook after admission",
};

/// The `serviceAccountTokens` check family.
pub struct ServiceAccountTokens;

impl Family for ServiceAccountTokens {
    member!(service_account_tokens: ServiceAccountTokenCheck = "serviceAccountTokens");

    fn evidence_kinds(_spec: &ServiceAccountTokenCheck) -> Vec<&'static EvidenceKind> {
        vec![&TOKEN_MOUNTS]
    }

    /// Kinds read: every pod-creating kind and ServiceAccounts.
    fn kinds(_spec: &ServiceAccountTokenCheck) -> KindSet {
        let mut k = workloads::kinds();
        k.insert(Kind::ServiceAccount);
        k
    }

    /// How far a change reaches: a workload or ServiceAccount (or a
    /// Namespace) only its own namespace's findings.
    fn locality(_spec: &ServiceAccountTokenCheck, kind: Kind) -> Locality {
        match kind {
            Kind::ServiceAccount => Locality::Namespace,
            k => workloads::locality(k),
        }
    }

    fn evaluate(spec: &ServiceAccountTokenCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        Ok(evaluate(spec, cx))
    }
}

fn evaluate(spec: &ServiceAccountTokenCheck, cx: &Context) -> Outcome {
    let mut out = Outcome::default();
    out.evidence.push(TOKEN_MOUNTS.evidence(
        "automountServiceAccountToken of the pod specs of every pod-creating object of each namespace in scope, and of their ServiceAccounts".into(),
    ));
    cx.each_namespace(&mut out, |ns, out| {
        for w in workloads::in_namespace(cx, ns) {
            out.resources_checked += 1;
            judge(spec, cx, ns, w, out);
        }
    });
    out
}

/// Whether `w`'s pods get a token, and why.
fn judge(spec: &ServiceAccountTokenCheck, cx: &Context, ns: &str, w: Workload, out: &mut Outcome) {
    let Some(pod) = w.pod_spec() else {
        return;
    };
    if w.pod_annotations().any(|(k, _)| k == MIRROR_ANNOTATION) {
        // A static pod's mirror: the kubelet runs it without a token.
        return;
    }
    let sa_name = [&pod.service_account_name, &pod.service_account]
        .into_iter()
        .filter_map(|n| n.as_deref())
        .find(|n| !n.is_empty())
        .unwrap_or("default");
    if spec
        .allowed_service_accounts
        .iter()
        .any(|a| a.split_once('/') == Some((ns, sa_name)))
    {
        return;
    }
    let why = match pod.automount_service_account_token {
        Some(false) => return,
        Some(true) => "the pod spec sets automountServiceAccountToken: true".to_owned(),
        None => match cx.objects::<ServiceAccount>().get(ns, sa_name) {
            Some(sa) if sa.automount_service_account_token == Some(false) => return,
            Some(sa) => format!(
                "the pod spec does not set automountServiceAccountToken and ServiceAccount {sa_name} {}",
                if sa.automount_service_account_token == Some(true) {
                    "sets it true"
                } else {
                    "does not set it false"
                }
            ),
            None if cx.is_partial() => {
                out.undetermined.push(w.violation(
                    "ServiceAccountNotInInput",
                    format!(
                        "the pod spec does not set automountServiceAccountToken and ServiceAccount {sa_name} is not in the input: whether its token is mounted depends on it"
                    ),
                ));
                return;
            }
            None => format!(
                "the pod spec does not set automountServiceAccountToken and ServiceAccount {sa_name} does not exist (absent means mounted)"
            ),
        },
    };
    out.violations.push(w.violation(
        "ServiceAccountTokenMounted",
        format!("its pods get an API token of ServiceAccount {sa_name}: {why}"),
    ));
}
