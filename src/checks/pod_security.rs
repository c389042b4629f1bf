//! The Kubernetes Pod Security Standards — TSC CC6.8 (prevent or detect
//! unauthorized or malicious software): what the pods of every pod-creating
//! object in scope may do, judged field by field as the Pod Security
//! Admission controller of Kubernetes v1.36 judges a pod
//! (`k8s.io/pod-security-admission` `policy/check_*.go`, "latest" version),
//! and, with `namespaceEnforcement`, whether each namespace in scope has the
//! API server enforce a level (`pod-security.kubernetes.io/enforce`).
//!
//! Baseline: no Windows HostProcess; no host network, PID or IPC namespace;
//! no privileged container; capabilities added only from the runtime's default
//! set; no hostPath volume; no host port; no `host` in probes or lifecycle
//! handlers; AppArmor only `RuntimeDefault`/`Localhost` (annotations
//! `runtime/default`, `localhost/*`); SELinux type only `container_t`,
//! `container_init_t`, `container_kvm_t`, `container_engine_t`, no user or
//! role; `procMount` only `Default` (any, in a user namespace:
//! `hostUsers: false`); seccomp not `Unconfined`; only the safe sysctls.
//! Restricted adds: volumes only of the inline kinds configMap, csi,
//! downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim,
//! projected, secret; `allowPrivilegeEscalation: false`; `runAsNonRoot: true`
//! and no `runAsUser: 0` (both waived in a user namespace); seccomp
//! `RuntimeDefault` or `Localhost` set; capabilities drop `ALL` and add at
//! most `NET_BIND_SERVICE`; `procMount` `Default` even in a user namespace.
//! Windows pods (`spec.os.name: windows`) are exempt from the restricted
//! privilege-escalation, seccomp and capabilities rules, as the standard
//! exempts them. Init and ephemeral containers are judged like containers.
use k8s_openapi::api::core::v1::{Capabilities, Namespace};

use super::workloads::{self, Workload};
use crate::api::{PodSecurityCheck, PodSecurityLevel, Verification};
use crate::resources::compact::{
    Container, ContainerPort, Lifecycle, PodSpec, Probe, SecurityContext, Volume,
};
use crate::snapshot::trim::{APPARMOR_ANNOTATION_PREFIX, lifecycle_names_host, probe_names_host};
use crate::snapshot::{Kind, KindSet, labels_of};
use crate::vocabulary::{
    Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, list_some, member, violation,
};

/// The pod specs, as admitted, judged against the standard.
pub static POD_SPECS: EvidenceKind = EvidenceKind {
    claim: "Pods meet the Pod Security Standards level the Control names",
    source: "PodTemplate",
    verification: Verification::Verified,
    proves: "every field the Pod Security Standards (v1.36) restrict, in the pod specs of every pod-creating object in scope (workloads, ReplicaSets and Jobs without an owner read here, ReplicationControllers, CronJobs, bare Pods)",
    does_not_prove: "pods changed by a mutating webhook after admission; pods that still run an older template (an old ReplicaSet of a Deployment, OnDelete StatefulSets and DaemonSets), since owned pods are judged through their owner's current template; ephemeral containers added to pods of a controller (kubectl debug); pods of controllers the operator does not read are judged as bare pods",
};

/// The namespaces' Pod Security Admission labels.
pub static NAMESPACE_LABELS: EvidenceKind = EvidenceKind {
    claim: "The API server refuses pods below the Pod Security Standards level in every namespace",
    source: "PodSecurityAdmissionLabel",
    verification: Verification::Configured,
    proves: "each namespace in scope carries pod-security.kubernetes.io/enforce with at least the required level",
    does_not_prove: "exemptions in the API server's PodSecurity admission configuration (users, runtime classes, namespaces), that the PodSecurity admission plugin is enabled, anything about pods admitted before the label was set, or which version of the standard is enforced (pod-security.kubernetes.io/enforce-version pins an older one; an unknown level value is taken as no enforcement here, as Restricted by the API server)",
};

/// The namespace label Pod Security Admission enforces.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The `podSecurity` check family.
pub struct PodSecurity;

impl Family for PodSecurity {
    member!(pod_security: PodSecurityCheck = "podSecurity");

    fn evidence_kinds(spec: &PodSecurityCheck) -> Vec<&'static EvidenceKind> {
        let mut k = Vec::new();
        if spec.level.is_some() {
            k.push(&POD_SPECS);
        }
        if spec.namespace_enforcement.is_some() {
            k.push(&NAMESPACE_LABELS);
        }
        k
    }

    /// Kinds read: every pod-creating kind (see [`workloads`]) with
    /// `level`, and Namespaces (always read).
    fn kinds(spec: &PodSecurityCheck) -> KindSet {
        if spec.level.is_some() {
            workloads::kinds()
        } else {
            KindSet::default()
        }
    }

    /// How far a change reaches: a workload (or a Namespace) only its own
    /// namespace's findings.
    fn locality(_spec: &PodSecurityCheck, kind: Kind) -> Locality {
        workloads::locality(kind)
    }

    /// [`InvalidSpec`] when neither `level` nor `namespaceEnforcement` is
    /// set: the check would check nothing.
    fn evaluate(spec: &PodSecurityCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        if spec.level.is_none() && spec.namespace_enforcement.is_none() {
            return Err(InvalidSpec::new(
                "spec.check.podSecurity.level",
                "set level, namespaceEnforcement or both: this check would check nothing",
            ));
        }
        Ok(evaluate(spec, cx))
    }
}

fn evaluate(spec: &PodSecurityCheck, cx: &Context) -> Outcome {
    let mut out = Outcome::default();
    if let Some(level) = spec.level {
        out.evidence.push(POD_SPECS.evidence(format!(
            "pod specs of every pod-creating object of each namespace in scope, against the {level:?} profile"
        )));
    }
    if let Some(level) = spec.namespace_enforcement {
        out.evidence.push(NAMESPACE_LABELS.evidence(format!(
            "the {ENFORCE_LABEL} label of each namespace in scope, at least {level:?}"
        )));
    }
    cx.each_namespace(&mut out, |ns, out| {
        if let Some(level) = spec.namespace_enforcement {
            namespace_label(cx, ns, level, out);
        }
        let Some(level) = spec.level else {
            return;
        };
        for w in workloads::in_namespace(cx, ns) {
            out.resources_checked += 1;
            let Some(pod) = w.pod_spec() else {
                continue;
            };
            for (reason, detail) in judge(pod, w, level) {
                out.violations.push(w.violation(reason, detail));
            }
        }
    });
    out
}

/// The rank of a level: privileged 0, baseline 1, restricted 2 (label values
/// as Pod Security Admission reads them; anything else is no enforcement).
fn rank(label: &str) -> Option<u8> {
    match label {
        "privileged" => Some(0),
        "baseline" => Some(1),
        "restricted" => Some(2),
        _ => None,
    }
}

/// `namespaceEnforcement`: the Namespace enforces at least `level`.
fn namespace_label(cx: &Context, ns: &str, level: PodSecurityLevel, out: &mut Outcome) {
    let Some(n) = cx.objects::<Namespace>().get("", ns) else {
        return;
    };
    out.resources_checked += 1;
    let label = labels_of(n.as_ref()).get(ENFORCE_LABEL).map(String::as_str);
    if label
        .and_then(rank)
        .is_some_and(|r| Some(r) >= rank(level_name(level)))
    {
        return;
    }
    let found = match label {
        None => "has no label".to_owned(),
        Some(v) => format!("sets it to {v:?}"),
    };
    out.violations.push(violation(
        n.as_ref(),
        "PodSecurityNotEnforced",
        format!(
            "{ENFORCE_LABEL} must be at least {} (the API server then refuses pods below that level); the namespace {found}",
            level_name(level)
        ),
    ));
}

/// The level as the `pod-security.kubernetes.io/enforce` label spells it.
fn level_name(l: PodSecurityLevel) -> &'static str {
    match l {
        PodSecurityLevel::Baseline => "baseline",
        PodSecurityLevel::Restricted => "restricted",
    }
}

/// A container, init container or ephemeral container, as the standard reads
/// it.
struct C<'a> {
    name: &'a str,
    sc: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
    probes: [Option<&'a Probe>; 3],
    lifecycle: Option<&'a Lifecycle>,
}

/// The view of a container (also an init or ephemeral container).
fn view(c: &Container) -> C<'_> {
    C {
        name: &c.name,
        sc: c.security_context.as_deref(),
        ports: c.ports.as_deref().unwrap_or(&[]),
        probes: [
            c.liveness_probe.as_ref(),
            c.readiness_probe.as_ref(),
            c.startup_probe.as_ref(),
        ],
        lifecycle: c.lifecycle.as_ref(),
    }
}

fn containers(pod: &PodSpec) -> Vec<C<'_>> {
    pod.init_containers
        .iter()
        .flatten()
        .chain(pod.containers.iter())
        .chain(pod.ephemeral_containers.iter().flatten())
        .map(view)
        .collect()
}

/// The findings of one pod spec at `level`, as (reason, detail).
fn judge(pod: &PodSpec, w: Workload, level: PodSecurityLevel) -> Vec<(&'static str, String)> {
    let cs = containers(pod);
    let mut found = baseline(pod, w, &cs);
    if level == PodSecurityLevel::Restricted {
        found.extend(restricted(pod, &cs));
    }
    found
}

/// Names of the containers for which `bad` holds, as a finding.
fn named(cs: &[C], bad: impl Fn(&C) -> Option<String>) -> Option<String> {
    let items: Vec<String> = cs
        .iter()
        .filter_map(|c| bad(c).map(|why| format!("{} ({why})", c.name)))
        .collect();
    (!items.is_empty()).then(|| list_some(&items, 5))
}

/// The capabilities Baseline lets a container add: the container runtime's
/// default set (`check_capabilities_baseline.go`).
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The safe sysctls (`check_sysctls.go`, v1.32 and later).
const SAFE_SYSCTLS: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// SELinux types Baseline allows (`check_seLinuxOptions.go`, v1.31 and later).
const SELINUX_TYPES: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn user_namespace(pod: &PodSpec) -> bool {
    pod.host_users == Some(false)
}

fn baseline(pod: &PodSpec, w: Workload, cs: &[C]) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    let psc = pod.security_context.as_ref();
    let host_process = psc
        .and_then(|s| s.windows_options.as_ref())
        .and_then(|o| o.host_process)
        == Some(true);
    let hp = named(cs, |c| {
        (c.sc
            .and_then(|s| s.windows_options.as_ref())
            .and_then(|o| o.host_process)
            == Some(true))
        .then(|| "windowsOptions.hostProcess".into())
    });
    if host_process || hp.is_some() {
        f.push((
            "HostProcess",
            format!(
                "Windows HostProcess: {}",
                hp.unwrap_or_else(|| "pod".into())
            ),
        ));
    }
    let ns: Vec<&str> = [
        ("hostNetwork", pod.host_network),
        ("hostPID", pod.host_pid),
        ("hostIPC", pod.host_ipc),
    ]
    .into_iter()
    .filter(|(_, v)| *v == Some(true))
    .map(|(n, _)| n)
    .collect();
    if !ns.is_empty() {
        f.push((
            "HostNamespaces",
            format!("shares the node's namespaces: {}", ns.join(", ")),
        ));
    }
    if let Some(p) = named(cs, |c| {
        (c.sc.and_then(|s| s.privileged) == Some(true)).then(|| "privileged".into())
    }) {
        f.push(("PrivilegedContainer", format!("privileged: {p}")));
    }
    if let Some(p) = named(cs, |c| {
        let extra: Vec<&str> = added(c.sc)
            .filter(|a| !BASELINE_CAPABILITIES.contains(a))
            .collect();
        (!extra.is_empty()).then(|| extra.join(", "))
    }) {
        f.push((
            "AddedCapabilities",
            format!("adds capabilities beyond the runtime's default set: {p}"),
        ));
    }
    f.extend(baseline_host(pod, cs));
    f.extend(baseline_profiles(pod, w, cs));
    f
}

/// The capabilities a container adds.
fn added(sc: Option<&SecurityContext>) -> impl Iterator<Item = &str> {
    sc.and_then(|s| s.capabilities.as_ref())
        .and_then(|c: &Capabilities| c.add.as_ref())
        .into_iter()
        .flatten()
        .map(String::as_str)
}

/// hostPath volumes, host ports, `host` in probes and lifecycle handlers,
/// sysctls.
fn baseline_host(pod: &PodSpec, cs: &[C]) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    let paths: Vec<String> = pod
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.clone())
        .collect();
    if !paths.is_empty() {
        f.push((
            "HostPathVolume",
            format!("hostPath volume(s): {}", list_some(&paths, 5)),
        ));
    }
    if let Some(p) = named(cs, |c| {
        let ports: Vec<String> = c
            .ports
            .iter()
            .filter_map(|p| p.host_port.filter(|h| *h != 0))
            .map(|h| h.to_string())
            .collect();
        (!ports.is_empty()).then(|| format!("hostPort {}", ports.join(", ")))
    }) {
        f.push(("HostPorts", format!("uses host ports: {p}")));
    }
    if let Some(p) = named(cs, |c| host_in_handlers(c).then(|| "host set".into())) {
        f.push((
            "HostProbesOrLifecycle",
            format!("probes or lifecycle handlers name a host (they reach it from the node): {p}"),
        ));
    }
    let unsafe_sysctls: Vec<String> = pod
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_ref())
        .into_iter()
        .flatten()
        .filter(|s| !SAFE_SYSCTLS.contains(&s.name.as_str()))
        .map(|s| s.name.clone())
        .collect();
    if !unsafe_sysctls.is_empty() {
        f.push((
            "UnsafeSysctls",
            format!(
                "sets sysctls outside the safe set: {}",
                list_some(&unsafe_sysctls, 5)
            ),
        ));
    }
    f
}

/// Whether a probe or lifecycle handler of `c` names a `host`.
fn host_in_handlers(c: &C) -> bool {
    c.probes.iter().flatten().any(|p| probe_names_host(p))
        || c.lifecycle.is_some_and(lifecycle_names_host)
}

/// AppArmor at Baseline: the pod's and containers' `appArmorProfile.type`,
/// and the deprecated per-container annotations of the pod (template).
fn apparmor(pod: &PodSpec, w: Workload, cs: &[C]) -> Option<(&'static str, String)> {
    let psc = pod.security_context.as_ref();
    let apparmor_ok = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut apparmor: Vec<String> = Vec::new();
    let pod_apparmor = psc
        .and_then(|s| s.app_armor_profile.as_ref())
        .map(|p| p.type_.as_str());
    if let Some(t) = pod_apparmor.filter(|t| !apparmor_ok(t)) {
        apparmor.push(format!("pod ({t})"));
    }
    if let Some(p) = named(cs, |c| {
        let t =
            c.sc.and_then(|s| s.app_armor_profile.as_ref())?
                .type_
                .as_str();
        (!apparmor_ok(t)).then(|| t.to_owned())
    }) {
        apparmor.push(p);
    }
    for (k, v) in w.pod_annotations() {
        if k.starts_with(APPARMOR_ANNOTATION_PREFIX)
            && !(v.is_empty() || v == "runtime/default" || v.starts_with("localhost/"))
        {
            apparmor.push(format!("annotation {k}={v}"));
        }
    }
    (!apparmor.is_empty()).then(|| {
        (
            "AppArmorProfile",
            format!(
                "AppArmor other than RuntimeDefault or Localhost: {}",
                apparmor.join("; ")
            ),
        )
    })
}

/// AppArmor, SELinux, procMount and seccomp at Baseline.
fn baseline_profiles(pod: &PodSpec, w: Workload, cs: &[C]) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = apparmor(pod, w, cs).into_iter().collect();
    let psc = pod.security_context.as_ref();
    let selinux_bad = |o: Option<&k8s_openapi::api::core::v1::SELinuxOptions>| {
        let o = o?;
        let t = o.type_.as_deref().unwrap_or("");
        let custom = o.user.as_deref().is_some_and(|u| !u.is_empty())
            || o.role.as_deref().is_some_and(|r| !r.is_empty());
        (!SELINUX_TYPES.contains(&t) || custom)
            .then(|| format!("type {t:?}, user/role set: {custom}"))
    };
    let mut selinux: Vec<String> = selinux_bad(psc.and_then(|s| s.se_linux_options.as_deref()))
        .map(|w| format!("pod ({w})"))
        .into_iter()
        .collect();
    selinux.extend(named(cs, |c| {
        selinux_bad(c.sc.and_then(|s| s.se_linux_options.as_deref()))
    }));
    if !selinux.is_empty() {
        f.push((
            "SELinuxOptions",
            format!("custom SELinux options: {}", selinux.join("; ")),
        ));
    }
    // In a user namespace Baseline allows any procMount (Restricted does not).
    if let Some(p) = proc_mount(cs).filter(|_| !user_namespace(pod)) {
        f.push(("ProcMount", format!("procMount other than Default: {p}")));
    }
    let unconfined = |t: Option<&str>| t == Some("Unconfined");
    let mut seccomp: Vec<String> = Vec::new();
    if unconfined(
        psc.and_then(|s| s.seccomp_profile.as_ref())
            .map(|p| p.type_.as_str()),
    ) {
        seccomp.push("pod".into());
    }
    seccomp.extend(named(cs, |c| {
        unconfined(
            c.sc.and_then(|s| s.seccomp_profile.as_ref())
                .map(|p| p.type_.as_str()),
        )
        .then(|| "Unconfined".into())
    }));
    if !seccomp.is_empty() {
        f.push((
            "SeccompProfile",
            format!("seccomp Unconfined: {}", seccomp.join("; ")),
        ));
    }
    f
}

fn proc_mount(cs: &[C]) -> Option<String> {
    named(cs, |c| {
        let p = c.sc.and_then(|s| s.proc_mount.as_deref())?;
        (p != "Default").then(|| p.to_owned())
    })
}

/// The inline volume kinds Restricted allows (`check_restrictedVolumes.go`).
fn restricted_volume(v: &Volume) -> bool {
    const ALLOWED: [&str; 9] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    ALLOWED.iter().any(|s| v.is(s))
}

fn restricted(pod: &PodSpec, cs: &[C]) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    let volumes: Vec<String> = pod
        .volumes
        .iter()
        .flatten()
        .filter(|v| !restricted_volume(v))
        .map(|v| v.name.clone())
        .collect();
    if !volumes.is_empty() {
        f.push((
            "RestrictedVolumeTypes",
            format!(
                "volume(s) of a kind Restricted does not allow: {}",
                list_some(&volumes, 5)
            ),
        ));
    }
    let windows = pod.os.as_ref().is_some_and(|o| o.name == "windows");
    let psc = pod.security_context.as_ref();
    if !windows {
        if let Some(p) = named(cs, |c| {
            (c.sc.and_then(|s| s.allow_privilege_escalation) != Some(false))
                .then(|| "allowPrivilegeEscalation not false".into())
        }) {
            f.push((
                "AllowPrivilegeEscalation",
                format!("must set allowPrivilegeEscalation: false: {p}"),
            ));
        }
        let pod_seccomp = psc
            .and_then(|s| s.seccomp_profile.as_ref())
            .map(|p| p.type_.as_str());
        let ok = |t: Option<&str>| matches!(t, Some("RuntimeDefault" | "Localhost"));
        if let Some(p) = named(cs, |c| {
            let t =
                c.sc.and_then(|s| s.seccomp_profile.as_ref())
                    .map(|p| p.type_.as_str());
            (!ok(t.or(pod_seccomp)))
                .then(|| "no RuntimeDefault or Localhost seccomp profile".into())
        }) {
            f.push((
                "SeccompProfileNotSet",
                format!("seccompProfile must be RuntimeDefault or Localhost: {p}"),
            ));
        }
        if let Some(p) = named(cs, |c| {
            let caps = c.sc.and_then(|s| s.capabilities.as_ref());
            let drops_all = caps
                .and_then(|c| c.drop.as_ref())
                .is_some_and(|d| d.iter().any(|x| x == "ALL"));
            let extra: Vec<&str> = added(c.sc).filter(|a| *a != "NET_BIND_SERVICE").collect();
            match (drops_all, extra.is_empty()) {
                (true, true) => None,
                (false, _) => Some("does not drop ALL".into()),
                (true, false) => Some(format!("adds {}", extra.join(", "))),
            }
        }) {
            f.push((
                "CapabilitiesNotDropped",
                format!("must drop ALL and add at most NET_BIND_SERVICE: {p}"),
            ));
        }
    }
    f.extend(restricted_users(pod, cs));
    // Baseline already reported it outside a user namespace.
    if let Some(p) = proc_mount(cs).filter(|_| user_namespace(pod)) {
        f.push(("ProcMount", format!("procMount other than Default: {p}")));
    }
    f
}

/// `runAsNonRoot` and `runAsUser` at Restricted (waived in a user namespace).
fn restricted_users(pod: &PodSpec, cs: &[C]) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    if user_namespace(pod) {
        return f;
    }
    let psc = pod.security_context.as_ref();
    let pod_non_root = psc.and_then(|s| s.run_as_non_root);
    let mut non_root: Vec<String> = Vec::new();
    if pod_non_root == Some(false) {
        non_root.push("pod sets runAsNonRoot: false".into());
    }
    non_root.extend(named(cs, |c| match c.sc.and_then(|s| s.run_as_non_root) {
        Some(false) => Some("runAsNonRoot: false".into()),
        None if pod_non_root != Some(true) => Some("runAsNonRoot not set".into()),
        _ => None,
    }));
    if !non_root.is_empty() {
        f.push((
            "RunAsNonRoot",
            format!(
                "must run as non-root (runAsNonRoot: true): {}",
                non_root.join("; ")
            ),
        ));
    }
    let mut root: Vec<String> = Vec::new();
    if psc.and_then(|s| s.run_as_user) == Some(0) {
        root.push("pod".into());
    }
    root.extend(named(cs, |c| {
        (c.sc.and_then(|s| s.run_as_user) == Some(0)).then(|| "runAsUser: 0".into())
    }));
    if !root.is_empty() {
        f.push((
            "RunAsRootUser",
            format!("must not set runAsUser: 0: {}", root.join("; ")),
        ));
    }
    f
}
