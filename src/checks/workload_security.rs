//! Workload hardening — TSC CC6.8 (prevent or detect unauthorized or malicious
//! software): no container can take over its node.
//!
//! Rule (Kubernetes Pod Security Standards, Baseline profile): every
//! pod-creating object in scope (see [`workloads`]) runs no `privileged`
//! container (init containers included) and do not share the node's network, PID or IPC namespaces;
//! optionally no `hostPath` volumes and no added capabilities beyond
//! `NET_BIND_SERVICE`.
use super::workloads::{self, Workload};
use crate::api::{Verification, WorkloadSecurityCheck};
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, member};

/// The pod templates, as admitted.
pub static POD_TEMPLATES: EvidenceKind = EvidenceKind {
    claim: "Workloads cannot take over their node",
    source: "PodTemplate",
    verification: Verification::Verified,
    proves: "what the pod specs of every pod-creating object in scope request (Deployments, StatefulSets, DaemonSets, ReplicaSets and Jobs without an owner read here, ReplicationControllers, CronJobs, bare Pods): privileged containers, host namespaces, hostPath volumes, added capabilities",
    does_not_prove: "pods changed by a mutating webhook after their template was admitted, pods of controllers the operator does not read (a custom resource's pods are judged as bare pods), or ephemeral containers added to running pods",
};

/// The `workloadSecurity` check family.
pub struct WorkloadSecurity;

impl Family for WorkloadSecurity {
    member!(workload_security: WorkloadSecurityCheck = "workloadSecurity");

    fn evidence_kinds(_spec: &WorkloadSecurityCheck) -> Vec<&'static EvidenceKind> {
        vec![&POD_TEMPLATES]
    }

    /// Kinds read: Deployment, StatefulSet, DaemonSet, ReplicaSet,
    /// ReplicationController, CronJob, Job, Pod.
    fn kinds(_spec: &WorkloadSecurityCheck) -> KindSet {
        workloads::kinds()
    }

    /// How far a change reaches: a workload (or a Namespace) only its own
    /// namespace's findings.
    fn locality(_spec: &WorkloadSecurityCheck, kind: Kind) -> Locality {
        workloads::locality(kind)
    }

    fn evaluate(spec: &WorkloadSecurityCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        evaluate(spec, cx)
    }
}

fn check(spec: &WorkloadSecurityCheck, w: Workload, out: &mut Outcome) {
    out.resources_checked += 1;
    let pod = w.pod_spec();
    let privileged: Vec<&str> = w
        .all_containers()
        .filter(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
        .map(|c| c.name.as_str())
        .collect();
    if !privileged.is_empty() {
        out.violations.push(w.violation(
            "PrivilegedContainer",
            format!("privileged container(s): {}", privileged.join(", ")),
        ));
    }
    let host: Vec<&str> = [
        ("hostNetwork", pod.and_then(|p| p.host_network)),
        ("hostPID", pod.and_then(|p| p.host_pid)),
        ("hostIPC", pod.and_then(|p| p.host_ipc)),
    ]
    .into_iter()
    .filter(|(_, v)| *v == Some(true))
    .map(|(n, _)| n)
    .collect();
    if !host.is_empty() {
        out.violations.push(w.violation(
            "HostNamespaces",
            format!("shares the node's namespaces: {}", host.join(", ")),
        ));
    }
    if spec.forbid_host_path {
        let paths: Vec<&str> = pod
            .into_iter()
            .flat_map(|p| p.volumes.iter().flatten())
            .filter(|v| v.host_path.is_some())
            .map(|v| v.name.as_str())
            .collect();
        if !paths.is_empty() {
            out.violations.push(w.violation(
                "HostPathVolume",
                format!("hostPath volume(s): {}", paths.join(", ")),
            ));
        }
    }
    if spec.forbid_added_capabilities {
        let added: Vec<String> = w
            .all_containers()
            .flat_map(|c| {
                c.security_context
                    .iter()
                    .flat_map(|s| s.capabilities.iter())
                    .flat_map(|cap| cap.add.iter().flatten())
                    .filter(|a| a.as_str() != "NET_BIND_SERVICE")
                    .map(move |a| format!("{}:{a}", c.name))
            })
            .collect();
        if !added.is_empty() {
            out.violations.push(w.violation(
                "AddedCapabilities",
                format!("added capabilities: {}", added.join(", ")),
            ));
        }
    }
}

/// Evaluates every pod-creating object in scope.
///
/// # Errors
/// None: every spec this family accepts is valid.
fn evaluate(spec: &WorkloadSecurityCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    let mut out = Outcome::default();
    out.evidence.push(
        POD_TEMPLATES.evidence(
            "Pod specs of the workloads, Jobs, CronJobs and bare Pods of each namespace in scope"
                .into(),
        ),
    );
    cx.each_namespace(&mut out, |ns, out| {
        for w in workloads::in_namespace(cx, ns) {
            check(spec, w, out);
        }
    });
    Ok(out)
}
