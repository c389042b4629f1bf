//! Incremental evaluation gives exactly what a full evaluation gives.
//!
//! A cluster of real manifests (Online Boutique, kube-prometheus) and synthetic
//! namespaces goes through a long, seeded sequence of random changes — policies
//! deleted and added, Ingresses without TLS, cluster-admin bindings, wildcard
//! Roles, namespace labels flipped, namespaces added and deleted, workloads
//! scaled and made privileged, PVCs, StorageClasses, ClusterRoles. After every
//! change, each Control of the catalog (plus scoped variants) is brought up to
//! date the way the operator does it — `Changes::record` for the changed
//! object, then `incremental::update`, falling back to a full evaluation when
//! it must — and compared with a fresh full `evaluate`.
use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use soc2_operator::api::Control;
use soc2_operator::checks::kinds_for;
use soc2_operator::commands::check::BUILTIN_CONTROLS;
use soc2_operator::engine::{Evaluation, evaluate};
use soc2_operator::incremental::{self, Changes, Retained};
use soc2_operator::resources::compact::Deployment;
use soc2_operator::snapshot::{Kind, Snapshot};

use crate::util::now;

/// A small deterministic PRNG (xorshift64*): the sequence is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }
}

fn controls() -> Vec<Control> {
    let mut out: Vec<Control> = BUILTIN_CONTROLS
        .iter()
        .map(|(path, yaml)| {
            let mut c: Control =
                serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{path}: {e}"));
            c.metadata.uid = Some(format!("uid-{path}"));
            c.metadata.generation = Some(1);
            c
        })
        .collect();
    // Scoped variants: a label selector (namespaces move in and out of scope
    // when their labels flip) and an exclusion list.
    let scoped: Vec<Control> = out
        .iter()
        .filter(|c| {
            let k = &c.spec.check;
            k.network_policy.is_some() || k.rbac.is_some() || k.availability.is_some()
        })
        .map(|c| {
            let mut c = c.clone();
            let name = format!("{}-scoped", c.metadata.name.as_deref().unwrap());
            c.metadata.name = Some(name.clone());
            c.metadata.uid = Some(format!("uid-{name}"));
            c.spec.scope = Some(
                serde_json::from_value(serde_json::json!({
                    "namespaceSelector": {"matchLabels": {"tier": "app"}},
                    "excludedNamespaces": ["app-3"]
                }))
                .unwrap(),
            );
            c
        })
        .collect();
    out.extend(scoped);
    out
}

/// Online Boutique (half its policies), kube-prometheus, six synthetic
/// namespaces (one with a privileged hostNetwork Deployment), two
/// StorageClasses, `kube-system` with a kube-apiserver mirror Pod that does
/// not encrypt Secrets, and a Gateway whose HTTP listener admits redirecting
/// routes from namespaces labelled `tier: app` (one such route in `app-0`).
pub fn base() -> Snapshot {
    let mut s = Snapshot::default();
    let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    let ob =
        std::fs::read_to_string(real.join("microservices-demo/kubernetes-manifests.yaml")).unwrap();
    s.insert_yaml(&ob, "online-boutique").unwrap();
    // Half of Online Boutique's policies: its namespace starts non-compliant.
    let mut policies: Vec<_> = std::fs::read_dir(real.join("microservices-demo/network-policies"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    policies.sort();
    for p in policies.iter().step_by(2) {
        s.insert_yaml(&std::fs::read_to_string(p).unwrap(), "online-boutique")
            .unwrap();
    }
    for entry in std::fs::read_dir(real.join("kube-prometheus"))
        .unwrap()
        .flatten()
    {
        let p = entry.path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let _ = s.insert_yaml(&text, "monitoring");
        }
    }
    for i in 0..6 {
        let ns = format!("app-{i}");
        let tier = if i % 2 == 0 { "app" } else { "batch" };
        s.insert_yaml(&namespace(&ns, tier), "").unwrap();
        if i % 3 != 0 {
            s.insert_yaml(&deny(&ns, "default-deny"), &ns).unwrap();
        }
        s.insert_yaml(&deployment(&ns, "web", 1 + i % 3, i == 4), &ns)
            .unwrap();
        s.insert_yaml(&ingress(&ns, "web", i % 2 == 0), &ns)
            .unwrap();
    }
    s.insert_yaml(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: standard\n  annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}\nprovisioner: kubernetes.io/no-provisioner\n",
        "",
    )
    .unwrap();
    s.insert_yaml(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: encrypted\nprovisioner: pd.csi.storage.gke.io\nparameters: {encrypted: \"true\"}\n",
        "",
    )
    .unwrap();
    s.insert_yaml(&namespace("kube-system", "system"), "")
        .unwrap();
    s.insert_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver-cp1\n  namespace: kube-system\n  labels: {component: kube-apiserver}\nspec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.36.3\n    command: [kube-apiserver, --authorization-mode=Node,RBAC]\n",
        "kube-system",
    )
    .unwrap();
    s.mark_installed(Kind::Gateway);
    s.mark_installed(Kind::HttpRoute);
    s.insert_yaml(&namespace("infra", "infra"), "").unwrap();
    s.insert_yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: infra}\nspec:\n  gatewayClassName: example\n  listeners:\n  - name: http\n    protocol: HTTP\n    port: 80\n    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector: {matchLabels: {tier: app}}\n  - name: https\n    protocol: HTTPS\n    port: 443\n    tls: {certificateRefs: [{name: edge-cert}]}\n",
        "infra",
    )
    .unwrap();
    s.insert_yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: redirect, namespace: app-0}\nspec:\n  parentRefs: [{name: edge, namespace: infra, sectionName: http}]\n  rules:\n  - filters:\n    - type: RequestRedirect\n      requestRedirect: {scheme: https, statusCode: 301}\n",
        "app-0",
    )
    .unwrap();
    s.add_implicit_namespaces();
    s
}

fn namespace(name: &str, tier: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/metadata.name: {name}\n    tier: {tier}\n"
    )
}

fn deny(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  podSelector: {{}}\n  policyTypes: [Ingress, Egress]\n"
    )
}

fn deployment(ns: &str, name: &str, replicas: usize, privileged: bool) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      hostNetwork: {privileged}\n      containers:\n      - name: c\n        image: registry.example.com/{name}:1\n        securityContext: {{privileged: {privileged}}}\n"
    )
}

fn ingress(ns: &str, name: &str, tls: bool) -> String {
    let tls = if tls {
        format!("  tls:\n  - hosts: [{name}.{ns}.example.com]\n    secretName: t\n")
    } else {
        String::new()
    };
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{tls}  rules:\n  - host: {name}.{ns}.example.com\n"
    )
}

/// One random change: applies it and returns `(kind, namespace, name)`.
fn mutate(s: &mut Snapshot, rng: &mut Rng, step: usize) -> (Kind, Option<String>, String) {
    let namespaces: Vec<String> = s
        .objects::<k8s_openapi::api::core::v1::Namespace>()
        .iter()
        .map(|n| n.metadata.name.clone().unwrap())
        .collect();
    // kube-system and app-0 (the redirecting route's namespace) come up often.
    let ns = match rng.below(6) {
        0 => "kube-system".to_owned(),
        1 => "app-0".to_owned(),
        _ => rng
            .pick(&namespaces)
            .cloned()
            .unwrap_or_else(|| "app-0".into()),
    };
    let n = format!("x{step}");
    let ins = |s: &mut Snapshot, y: String, ns: &str| {
        s.insert_yaml(&y, ns).unwrap_or_else(|e| panic!("{e}\n{y}"));
    };
    macro_rules! remove_random {
        ($ty:ty, $kind:expr) => {{
            let all: Vec<(String, String)> = s
                .objects::<$ty>()
                .iter()
                .map(|o| {
                    (
                        o.metadata.namespace.clone().unwrap_or_default(),
                        o.metadata.name.clone().unwrap(),
                    )
                })
                .collect();
            match rng.pick(&all).cloned() {
                Some((ons, oname)) => {
                    s.objects_mut::<$ty>().remove(&ons, &oname);
                    ($kind, (!ons.is_empty()).then_some(ons), oname)
                }
                None => (Kind::Namespace, None, "app-0".into()),
            }
        }};
    }
    match rng.below(19) {
        0 => remove_random!(NetworkPolicy, Kind::NetworkPolicy),
        1 => {
            ins(s, deny(&ns, &n), &ns);
            (Kind::NetworkPolicy, Some(ns), n)
        }
        2 => {
            ins(s, ingress(&ns, &n, false), &ns);
            (Kind::Ingress, Some(ns), n)
        }
        3 => remove_random!(Ingress, Kind::Ingress),
        4 => {
            let y = format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {n}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\nsubjects:\n- {{kind: User, apiGroup: rbac.authorization.k8s.io, name: mallory-{n}}}\n"
            );
            ins(s, y, "");
            (Kind::ClusterRoleBinding, None, n)
        }
        5 => remove_random!(ClusterRoleBinding, Kind::ClusterRoleBinding),
        6 => {
            let y = format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {n}\n  namespace: {ns}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\nsubjects:\n- {{kind: ServiceAccount, name: default, namespace: {ns}}}\n"
            );
            ins(s, y, &ns);
            (Kind::RoleBinding, Some(ns), n)
        }
        7 => remove_random!(RoleBinding, Kind::RoleBinding),
        8 => {
            let y = format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {n}\n  namespace: {ns}\nrules:\n- {{apiGroups: ['*'], resources: ['*'], verbs: ['*']}}\n"
            );
            ins(s, y, &ns);
            (Kind::Role, Some(ns), n)
        }
        9 => {
            // Flip the tier label: the namespace moves in or out of scoped Controls.
            let tier = if rng.below(2) == 0 { "app" } else { "batch" };
            ins(s, namespace(&ns, tier), "");
            (Kind::Namespace, None, ns)
        }
        10 => {
            let name = format!("new-{step}");
            ins(s, namespace(&name, "app"), "");
            (Kind::Namespace, None, name)
        }
        11 => {
            // A namespace goes; its objects linger (as while the API server
            // deletes them).
            s.objects_mut::<k8s_openapi::api::core::v1::Namespace>()
                .remove("", &ns);
            (Kind::Namespace, None, ns)
        }
        12 => {
            let name = rng
                .pick(&["web", "frontend", "cartservice"])
                .unwrap()
                .to_string();
            let replicas = 1 + rng.below(3);
            let privileged = rng.below(4) == 0;
            ins(s, deployment(&ns, &name, replicas, privileged), &ns);
            (Kind::Deployment, Some(ns), name)
        }
        13 => remove_random!(Deployment, Kind::Deployment),
        14 => {
            let y = format!(
                "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {n}\n  namespace: {ns}\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: {{app: web}}\n"
            );
            ins(s, y, &ns);
            (Kind::PodDisruptionBudget, Some(ns), n)
        }
        15 => {
            let class = rng.pick(&["", "standard", "missing", "encrypted"]).unwrap();
            let y = format!(
                "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {n}\n  namespace: {ns}\nspec:\n  storageClassName: \"{class}\"\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n"
            );
            ins(s, y, &ns);
            (Kind::PersistentVolumeClaim, Some(ns), n)
        }
        16 => {
            // Rewrite a ClusterRole (often one that RoleBindings reference) or
            // add one; then sometimes bind it in a namespace.
            let roles: Vec<String> = s
                .objects::<ClusterRole>()
                .iter()
                .map(|r| r.metadata.name.clone().unwrap())
                .filter(|r| !r.starts_with("system:"))
                .collect();
            let name = if rng.below(3) == 0 {
                n.clone()
            } else {
                rng.pick(&roles).cloned().unwrap_or(n.clone())
            };
            let rules = match rng.below(3) {
                0 => "- {apiGroups: [''], resources: ['*'], verbs: ['*']}",
                1 => "- {apiGroups: [''], resources: [secrets], verbs: [get, list]}",
                _ => "- {apiGroups: [''], resources: [configmaps], verbs: [get]}",
            };
            let y = format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\nrules:\n{rules}\n"
            );
            ins(s, y, "");
            (Kind::ClusterRole, None, name)
        }
        17 => {
            let roles: Vec<String> = s
                .objects::<ClusterRole>()
                .iter()
                .map(|r| r.metadata.name.clone().unwrap())
                .collect();
            let role = rng.pick(&roles).cloned().unwrap_or("view".into());
            let y = format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {n}\n  namespace: {ns}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects:\n- {{kind: User, apiGroup: rbac.authorization.k8s.io, name: dev-{n}}}\n"
            );
            ins(s, y, &ns);
            (Kind::RoleBinding, Some(ns), n)
        }
        _ => {
            let y = format!(
                "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {n}\n  annotations: {{storageclass.kubernetes.io/is-default-class: \"true\"}}\nprovisioner: example.com/plain\n"
            );
            ins(s, y, "");
            (Kind::StorageClass, None, n)
        }
    }
}

/// What a comparison looks at: everything but the evaluation time.
/// What a status is made of: an incremental update keeps the first
/// `MAX_STATUS_VIOLATIONS` findings and the true counts.
fn essence(e: &Evaluation) -> impl PartialEq + std::fmt::Debug + '_ {
    let first = |v: &'_ [soc2_operator::api::Violation]| {
        v.iter()
            .take(soc2_operator::api::MAX_STATUS_VIOLATIONS)
            .cloned()
            .collect::<Vec<_>>()
    };
    (
        e.verdict,
        &e.reason,
        &e.message,
        e.resources_checked,
        first(&e.violations),
        e.violation_count,
        first(&e.undetermined),
        e.undetermined_count,
        &e.evidence,
        &e.notes,
        &e.invalid,
    )
}

#[test]
fn incremental_updates_equal_full_evaluations_over_a_random_change_sequence() {
    let controls = controls();
    let mut snap = base();
    let t = now();
    let mut retained: BTreeMap<String, Retained> = BTreeMap::new();
    for c in &controls {
        let (_, r) = incremental::evaluate_retained(c, &snap, t);
        retained.insert(
            c.metadata.name.clone().unwrap(),
            r.expect("valid catalog Control"),
        );
    }
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let (mut incremental_updates, mut full) = (0, 0);
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for step in 0..600 {
        let (kind, ns, name) = mutate(&mut snap, &mut rng, step);
        for c in &controls {
            if !kinds_for(&c.spec.check).contains(&kind) {
                continue;
            }
            let cname = c.metadata.name.clone().unwrap();
            let mut changes = Changes::default();
            changes.record(&c.spec.check, kind, ns.as_deref(), &name);
            let r = retained.get_mut(&cname).unwrap();
            let got = match incremental::update(c, &snap, t, r, &changes) {
                Some(e) => {
                    incremental_updates += 1;
                    *by_kind.entry(format!("{kind:?}")).or_default() += 1;
                    e
                }
                None => {
                    full += 1;
                    let (e, fresh) = incremental::evaluate_retained(c, &snap, t);
                    *r = fresh.expect("valid catalog Control");
                    e
                }
            };
            let want = evaluate(c, &snap, t);
            assert_eq!(
                essence(&got),
                essence(&want),
                "step {step}: {kind:?} {ns:?}/{name} changed; Control {cname} (changes {changes:?})"
            );
            assert_eq!(r.violations(), want.violations);
        }
    }
    // The comparison must have exercised the incremental path, for namespaced
    // kinds, the Namespace kind and the cluster part alike.
    assert!(
        incremental_updates > 2 * full,
        "incremental {incremental_updates}, full {full}"
    );
    for k in [
        "NetworkPolicy",
        "Namespace",
        "ClusterRoleBinding",
        "Ingress",
        "Deployment",
        "RoleBinding",
    ] {
        assert!(
            by_kind.get(k).copied().unwrap_or(0) > 10,
            "{k}: {by_kind:?}"
        );
    }
}

#[test]
fn changes_follow_each_familys_locality() {
    let controls = controls();
    let by_name = |n: &str| {
        controls
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(n))
            .unwrap()
    };
    let record = |c: &Control, kind, ns: Option<&str>, name: &str| {
        let mut ch = Changes::default();
        ch.record(&c.spec.check, kind, ns, name);
        ch
    };
    let np = by_name("network-default-deny");
    let ch = record(np, Kind::NetworkPolicy, Some("shop"), "deny");
    assert_eq!(ch.namespaces.iter().collect::<Vec<_>>(), ["shop"]);
    assert!(!ch.full && !ch.cluster);
    // A Namespace's own name is the namespace that changed.
    let ch = record(np, Kind::Namespace, None, "shop");
    assert_eq!(ch.namespaces.iter().collect::<Vec<_>>(), ["shop"]);
    let admins = by_name("no-unexpected-cluster-admins");
    let ch = record(admins, Kind::ClusterRoleBinding, None, "x");
    assert!(ch.cluster && !ch.full && ch.namespaces.is_empty());
    // A ClusterRole can change every binding that references it.
    assert!(record(admins, Kind::ClusterRole, None, "x").full);
    // Backups cover namespaces from the velero namespace: always a full evaluation.
    let backups = by_name("backups-fresh");
    assert!(record(backups, Kind::VeleroBackup, Some("velero"), "b").full);
    // Merging keeps the widest change.
    let mut ch = record(np, Kind::NetworkPolicy, Some("a"), "p");
    ch.merge(record(np, Kind::NetworkPolicy, Some("b"), "p"));
    assert_eq!(ch.namespaces.len(), 2);
    ch.merge(Changes::full());
    assert!(ch.full);
}

#[test]
fn trimming_what_no_check_reads_changes_no_verdict() {
    // Every snapshot path (the operator's caches, `check` on a cluster or on
    // manifests) stores trimmed objects, so every engine test runs on trimmed
    // data; here workloads carrying everything a pod template can hold are
    // stored untrimmed and trimmed, and the catalog must not tell them apart.
    use std::sync::Arc;
    let mut whole = base();
    for (kind, extra) in [
        ("StatefulSet", "  serviceName: db\n  replicas: 1\n"),
        ("DaemonSet", ""),
        ("Deployment", "  replicas: 3\n"),
    ] {
        let yaml = format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: agent\n  namespace: app-1\n  labels: {{a: b}}\n  annotations: {{x: y}}\nspec:\n{extra}  selector:\n    matchLabels: {{app: agent}}\n  template:\n    metadata:\n      labels: {{app: agent}}\n      annotations: {{k: v}}\n    spec:\n      hostPID: true\n      volumes:\n      - name: root\n        hostPath: {{path: /}}\n      - name: tmp\n        emptyDir: {{}}\n      initContainers:\n      - name: init\n        image: busybox:1\n        securityContext: {{privileged: true}}\n      containers:\n      - name: agent\n        image: quay.io/agent@sha256:{}\n        env: [{{name: A, value: b}}]\n        ports: [{{containerPort: 9100}}]\n        resources: {{limits: {{memory: 64Mi}}}}\n        readinessProbe: {{httpGet: {{path: /, port: 9100}}}}\n        securityContext:\n          capabilities: {{add: [NET_ADMIN, SYS_TIME]}}\n",
            "a".repeat(64)
        );
        match kind {
            "StatefulSet" => whole
                .objects_mut::<soc2_operator::resources::compact::StatefulSet>()
                .insert(Arc::new(serde_yaml::from_str(&yaml).unwrap())),
            "DaemonSet" => whole
                .objects_mut::<soc2_operator::resources::compact::DaemonSet>()
                .insert(Arc::new(serde_yaml::from_str(&yaml).unwrap())),
            _ => whole
                .objects_mut::<soc2_operator::resources::compact::Deployment>()
                .insert(Arc::new(serde_yaml::from_str(&yaml).unwrap())),
        }
    }
    let mut cut = whole.clone();
    cut.trim_all();
    assert_ne!(
        format!(
            "{:?}",
            whole
                .objects::<soc2_operator::resources::compact::DaemonSet>()
                .iter()
                .next()
        ),
        format!(
            "{:?}",
            cut.objects::<soc2_operator::resources::compact::DaemonSet>()
                .iter()
                .next()
        ),
        "trimming removes something"
    );
    let t = now();
    let mut compared = 0;
    for c in controls() {
        let (w, k) = (evaluate(&c, &whole, t), evaluate(&c, &cut, t));
        assert_eq!(
            essence(&w),
            essence(&k),
            "{}",
            c.metadata.name.as_deref().unwrap()
        );
        compared += w.violations.iter().filter(|v| v.name == "agent").count();
    }
    assert!(
        compared >= 6,
        "the catalog finds the agents' violations: {compared}"
    );
}

/// An incremental update keeps the first `MAX_STATUS_VIOLATIONS` violations
/// (the same as a full evaluation's first ones) and counts them all, and the
/// status says how many there are and that the list is cut.
#[test]
fn an_incremental_update_caps_the_violations_it_carries_and_counts_them_all() {
    use soc2_operator::api::MAX_STATUS_VIOLATIONS;
    let n = MAX_STATUS_VIOLATIONS + 50;
    let docs: Vec<String> = (0..n)
        .map(|i| crate::util::ns(&format!("team-{i:03}")))
        .collect();
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let mut snap = crate::util::snapshot(&refs);
    let c = crate::util::control("networkPolicy: {}");
    let (full, r) = incremental::evaluate_retained(&c, &snap, now());
    assert_eq!(full.violations.len(), n);
    let mut r = r.unwrap();
    // One namespace gets its default-deny policy.
    snap.insert_yaml(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: team-007}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n",
        "default",
    )
    .unwrap();
    let mut changes = Changes::default();
    changes.record(&c.spec.check, Kind::NetworkPolicy, Some("team-007"), "deny");
    let got = incremental::update(&c, &snap, now(), &mut r, &changes).expect("incremental");
    let want = evaluate(&c, &snap, now());
    assert_eq!(got.violation_count, n - 1);
    assert_eq!(want.violation_count, n - 1);
    assert_eq!(got.violations.len(), MAX_STATUS_VIOLATIONS);
    assert_eq!(got.violations[..], want.violations[..MAX_STATUS_VIOLATIONS]);
    assert_eq!(got.message, want.message);
    let status = got.to_status(&c, None);
    let summary = status.summary.as_ref().unwrap();
    assert_eq!(summary.violations, i64::try_from(n - 1).unwrap());
    assert!(status.violations_truncated);
    assert_eq!(status, want.to_status(&c, None));
}
