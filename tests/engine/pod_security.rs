//! The `podSecurity` family: the Pod Security Standards of Kubernetes v1.36,
//! field by field, with the standard's own exemptions (user namespaces,
//! Windows pods, the runtime's default capabilities, the safe sysctls), each
//! case judged on the snapshot as given and as the operator's caches trim it.
use soc2_operator::engine::Verdict;
use soc2_operator::snapshot::Snapshot;

use crate::util::*;

/// A pod that meets Restricted: the base every case changes one field of.
const RESTRICTED_POD: &str =
    "securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}";
const RESTRICTED_CONTAINER: &str =
    "securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}";

/// A bare Pod in `app` with pod-level fields `pod` and one container with
/// fields `container` (YAML flow mappings' contents, joined with commas).
fn pod(pod: &str, container: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: app}}\nspec:\n  {pod}\n{extra_spec}  containers:\n  - {{name: c, image: \"x:1\", {container}}}\n"
    )
}

/// The reasons a level finds, on the untrimmed and on the trimmed snapshot
/// (they must agree).
fn reasons(level: &str, doc: &str) -> Vec<String> {
    let c = control(&format!("podSecurity: {{level: {level}}}"));
    let whole = snapshot(&[doc]);
    let mut trimmed: Snapshot = snapshot(&[doc]);
    trimmed.trim_all();
    let of = |s: &Snapshot| {
        let mut r: Vec<String> = eval(&c, s)
            .violations
            .iter()
            .map(|v| v.reason.clone())
            .collect();
        r.sort();
        r
    };
    let (a, b) = (of(&whole), of(&trimmed));
    assert_eq!(a, b, "trimming changed the verdict on {doc}");
    a
}

#[test]
fn each_pod_security_standards_field_with_its_exemptions() {
    let rc = RESTRICTED_CONTAINER;
    let rp = RESTRICTED_POD;
    // (case, pod-level, container fields, extra spec lines, Baseline finds, Restricted finds)
    let cases: Vec<(&str, String, String, &str, &[&str], &[&str])> = vec![
        ("the restricted base", rp.into(), rc.into(), "", &[], &[]),
        ("hostNetwork", format!("hostNetwork: true\n  {rp}"), rc.into(), "", &["HostNamespaces"], &["HostNamespaces"]),
        ("hostPID and hostIPC", format!("hostPID: true\n  hostIPC: true\n  {rp}"), rc.into(), "", &["HostNamespaces"], &["HostNamespaces"]),
        ("privileged", rp.into(), "securityContext: {privileged: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &["PrivilegedContainer"], &["PrivilegedContainer"]),
        ("a privileged init container", rp.into(), rc.into(), "  initContainers:\n  - {name: init, image: \"x:1\", securityContext: {privileged: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}\n", &["PrivilegedContainer"], &["PrivilegedContainer"]),
        ("a privileged ephemeral container", rp.into(), rc.into(), "  ephemeralContainers:\n  - {name: debug, image: \"x:1\", securityContext: {privileged: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}\n", &["PrivilegedContainer"], &["PrivilegedContainer"]),
        ("NET_RAW is not a default capability", rp.into(), "securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL], add: [NET_RAW]}}".into(), "", &["AddedCapabilities"], &["AddedCapabilities", "CapabilitiesNotDropped"]),
        ("CHOWN is a default capability; Restricted allows only NET_BIND_SERVICE", rp.into(), "securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL], add: [CHOWN]}}".into(), "", &[], &["CapabilitiesNotDropped"]),
        ("NET_BIND_SERVICE after dropping ALL", rp.into(), "securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}".into(), "", &[], &[]),
        ("not dropping ALL", rp.into(), "securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [NET_RAW]}}".into(), "", &[], &["CapabilitiesNotDropped"]),
        ("a hostPath volume", rp.into(), rc.into(), "  volumes: [{name: h, hostPath: {path: /var/run}}]\n", &["HostPathVolume"], &["HostPathVolume", "RestrictedVolumeTypes"]),
        ("an nfs volume", rp.into(), rc.into(), "  volumes: [{name: n, nfs: {server: nfs.example.com, path: /}}]\n", &[], &["RestrictedVolumeTypes"]),
        ("the inline volume kinds Restricted allows", rp.into(), rc.into(), "  volumes: [{name: a, configMap: {name: x}}, {name: b, secret: {secretName: x}}, {name: c, emptyDir: {}}, {name: d, projected: {sources: []}}, {name: e, persistentVolumeClaim: {claimName: x}}, {name: f, downwardAPI: {}}, {name: g, csi: {driver: x}}, {name: i, image: {reference: \"x:1\"}}]\n", &[], &[]),
        ("a host port", rp.into(), "ports: [{containerPort: 80, hostPort: 8080}], securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &["HostPorts"], &["HostPorts"]),
        ("hostPort 0 is no host port", rp.into(), "ports: [{containerPort: 80, hostPort: 0}], securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &[], &[]),
        ("a probe that names a host", rp.into(), "readinessProbe: {httpGet: {host: 10.0.0.1, port: 80}}, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &["HostProbesOrLifecycle"], &["HostProbesOrLifecycle"]),
        ("a preStop handler that names a host", rp.into(), "lifecycle: {preStop: {httpGet: {host: metadata.internal, port: 80}}}, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &["HostProbesOrLifecycle"], &["HostProbesOrLifecycle"]),
        ("AppArmor Unconfined", rp.into(), "securityContext: {appArmorProfile: {type: Unconfined}, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &["AppArmorProfile"], &["AppArmorProfile"]),
        ("AppArmor Localhost", rp.replace("}}", "}, appArmorProfile: {type: Localhost, localhostProfile: k8s-web}}"), rc.into(), "", &[], &[]),
        ("SELinux type spc_t", rp.into(), "securityContext: {seLinuxOptions: {type: spc_t}, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &["SELinuxOptions"], &["SELinuxOptions"]),
        ("SELinux container_engine_t (v1.31)", rp.into(), "securityContext: {seLinuxOptions: {type: container_engine_t}, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &[], &[]),
        ("an SELinux user", rp.replace("}}", "}, seLinuxOptions: {user: system_u}}"), rc.into(), "", &["SELinuxOptions"], &["SELinuxOptions"]),
        ("procMount Unmasked", rp.into(), "securityContext: {procMount: Unmasked, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &["ProcMount"], &["ProcMount"]),
        ("procMount Unmasked in a user namespace: Baseline allows it, Restricted not", format!("hostUsers: false\n  {rp}"), "securityContext: {procMount: Unmasked, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &[], &["ProcMount"]),
        ("seccomp Unconfined", rp.replace("RuntimeDefault", "Unconfined"), rc.into(), "", &["SeccompProfile"], &["SeccompProfile", "SeccompProfileNotSet"]),
        ("no seccomp profile", "securityContext: {runAsNonRoot: true}".into(), rc.into(), "", &[], &["SeccompProfileNotSet"]),
        ("seccomp set on the container only", "securityContext: {runAsNonRoot: true}".into(), "securityContext: {seccompProfile: {type: Localhost, localhostProfile: p.json}, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &[], &[]),
        ("an unsafe sysctl", rp.replace("}}", "}, sysctls: [{name: kernel.msgmax, value: \"65536\"}]}"), rc.into(), "", &["UnsafeSysctls"], &["UnsafeSysctls"]),
        ("a safe sysctl (v1.32: tcp_rmem)", rp.replace("}}", "}, sysctls: [{name: net.ipv4.tcp_rmem, value: \"4096 87380 6291456\"}]}"), rc.into(), "", &[], &[]),
        ("a Windows HostProcess container", rp.into(), "securityContext: {windowsOptions: {hostProcess: true}, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &["HostProcess"], &["HostProcess"]),
        ("allowPrivilegeEscalation unset", rp.into(), "securityContext: {capabilities: {drop: [ALL]}}".into(), "", &[], &["AllowPrivilegeEscalation"]),
        ("runAsNonRoot unset", "securityContext: {seccompProfile: {type: RuntimeDefault}}".into(), rc.into(), "", &[], &["RunAsNonRoot"]),
        ("runAsNonRoot on the container only", "securityContext: {seccompProfile: {type: RuntimeDefault}}".into(), "securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}".into(), "", &[], &[]),
        ("runAsUser 0", rp.replace("}}", "}, runAsUser: 0}"), rc.into(), "", &[], &["RunAsRootUser"]),
        ("runAsUser 0 and no runAsNonRoot in a user namespace", "hostUsers: false\n  securityContext: {runAsUser: 0, seccompProfile: {type: RuntimeDefault}}".into(), rc.into(), "", &[], &[]),
        ("a Windows pod is exempt from privilege escalation, seccomp and capabilities", "os: {name: windows}\n  securityContext: {runAsNonRoot: true}".into(), String::new(), "", &[], &[]),
    ];
    for (case, pod_fields, container, extra, baseline, restricted) in cases {
        let doc = pod(&pod_fields, &container, extra);
        assert_eq!(
            reasons("Baseline", &doc),
            baseline.to_vec(),
            "Baseline: {case}\n{doc}"
        );
        assert_eq!(
            reasons("Restricted", &doc),
            restricted.to_vec(),
            "Restricted: {case}\n{doc}"
        );
    }
}

#[test]
fn apparmor_annotations_of_a_pod_template_are_read() {
    let deploy = |value: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: app}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata:\n      labels: {{app: web}}\n      annotations: {{container.apparmor.security.beta.kubernetes.io/web: {value}}}\n    spec: {{containers: [{{name: web, image: \"x:1\"}}]}}\n"
        )
    };
    assert_eq!(
        reasons("Baseline", &deploy("unconfined")),
        vec!["AppArmorProfile"]
    );
    assert!(reasons("Baseline", &deploy("runtime/default")).is_empty());
    assert!(reasons("Baseline", &deploy("localhost/k8s-web")).is_empty());
}

/// The deprecated annotation is all a Windows pod (or one created before
/// v1.30) carries: the API server copies it into the field only for Linux
/// pods. The caches keep it on bare pods too.
#[test]
fn apparmor_annotations_of_a_bare_pod_are_read() {
    let doc = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: app\n  annotations: {container.apparmor.security.beta.kubernetes.io/c: unconfined}\nspec:\n  os: {name: windows}\n  containers: [{name: c, image: \"x:1\"}]\n";
    assert_eq!(reasons("Baseline", doc), vec!["AppArmorProfile"]);
}

#[test]
fn namespaces_enforce_at_least_the_required_level() {
    let ns = |name: &str, label: Option<&str>| {
        let labels = label
            .map(|l| format!(", labels: {{pod-security.kubernetes.io/enforce: {l}}}"))
            .unwrap_or_default();
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}{labels}}}\n")
    };
    let docs = [
        ns("strict", Some("restricted")),
        ns("base", Some("baseline")),
        ns("open", Some("privileged")),
        ns("none", None),
        ns("typo", Some("Restricted")),
    ];
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let s = snapshot(&refs);
    let e = eval(
        &control("podSecurity: {namespaceEnforcement: Baseline}"),
        &s,
    );
    assert_eq!(
        sorted(&e),
        expect(&[
            ("PodSecurityNotEnforced", "Namespace", "none"),
            ("PodSecurityNotEnforced", "Namespace", "open"),
            ("PodSecurityNotEnforced", "Namespace", "typo"),
        ])
    );
    let e = eval(
        &control("podSecurity: {namespaceEnforcement: Restricted}"),
        &s,
    );
    assert_eq!(
        sorted(&e),
        expect(&[
            ("PodSecurityNotEnforced", "Namespace", "base"),
            ("PodSecurityNotEnforced", "Namespace", "none"),
            ("PodSecurityNotEnforced", "Namespace", "open"),
            ("PodSecurityNotEnforced", "Namespace", "typo"),
        ])
    );
}

#[test]
fn a_pod_security_check_with_nothing_set_is_an_invalid_spec() {
    let e = eval(&control("podSecurity: {}"), &snapshot(&[]));
    assert_eq!(e.verdict, Verdict::InvalidSpec, "{e:?}");
    assert!(e.message.contains("spec.check.podSecurity.level"), "{e:?}");
}
