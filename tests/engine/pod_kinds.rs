//! Every kind that creates pods is read (issue 13): CronJobs, Jobs,
//! ReplicaSets, ReplicationControllers and bare Pods, each judged once —
//! an object whose controller is a kind read here is judged through it, so a
//! violation names what the user must fix — and HorizontalPodAutoscalers for
//! availability.
use soc2_operator::snapshot::Snapshot;

use crate::util::*;

/// A privileged, hostPID CronJob with the Job it made and that Job's Pod.
const CRONJOB: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: app}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          hostPID: true
          restartPolicy: OnFailure
          containers: [{name: dump, image: "tools:1", securityContext: {privileged: true}}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: nightly-29000000
  namespace: app
  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: nightly, uid: u1, controller: true}]
spec:
  template:
    spec:
      hostPID: true
      restartPolicy: OnFailure
      containers: [{name: dump, image: "tools:1", securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: nightly-29000000-abcde
  namespace: app
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: nightly-29000000, uid: u2, controller: true}]
spec:
  hostPID: true
  containers: [{name: dump, image: "tools:1", securityContext: {privileged: true}}]
"#;

/// A privileged hostNetwork bare Pod, and a Deployment's ReplicaSet and Pod.
const BARE_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: app}
spec:
  hostNetwork: true
  containers: [{name: shell, image: "busybox:1", securityContext: {privileged: true}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1", securityContext: {privileged: true}}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-5d9f
  namespace: app
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u3, controller: true}]
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1", securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web-5d9f-xyz
  namespace: app
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d9f, uid: u4, controller: true}]
spec:
  containers: [{name: web, image: "web:1", securityContext: {privileged: true}}]
"#;

/// The catalog Control, on a snapshot trimmed as the operator's caches trim.
fn privileged(docs: &str) -> Vec<(String, String, String)> {
    let mut s: Snapshot = snapshot(&[docs]);
    s.trim_all();
    let c = control("workloadSecurity: {}");
    sorted(&eval(&c, &s))
}

#[test]
fn a_privileged_cronjob_is_named_not_its_jobs_or_pods() {
    assert_eq!(
        privileged(CRONJOB),
        expect(&[
            ("HostNamespaces", "CronJob", "app/nightly"),
            ("PrivilegedContainer", "CronJob", "app/nightly"),
        ])
    );
}

#[test]
fn a_privileged_bare_pod_is_named_and_owned_pods_are_judged_through_their_owner() {
    assert_eq!(
        privileged(BARE_POD),
        expect(&[
            ("HostNamespaces", "Pod", "app/debug"),
            ("PrivilegedContainer", "Deployment", "app/web"),
            ("PrivilegedContainer", "Pod", "app/debug"),
        ])
    );
}

#[test]
fn objects_without_an_owner_read_here_are_judged_themselves() {
    let docs = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: lone, namespace: app}
spec:
  selector: {matchLabels: {app: lone}}
  template:
    metadata: {labels: {app: lone}}
    spec: {containers: [{name: c, image: "x:1", securityContext: {privileged: true}}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy, namespace: app}
spec:
  template:
    metadata: {labels: {app: legacy}}
    spec: {hostIPC: true, containers: [{name: c, image: "x:1"}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: app}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: "x:1", securityContext: {privileged: true}}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: rollout-pod
  namespace: app
  ownerReferences: [{apiVersion: example.io/v1, kind: Rollout, name: r, uid: u5, controller: true}]
spec: {containers: [{name: c, image: "x:1", securityContext: {privileged: true}}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: rollout-rs
  namespace: app
  ownerReferences: [{apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: r, uid: u6, controller: true}]
spec:
  selector: {matchLabels: {app: r}}
  template:
    metadata: {labels: {app: r}}
    spec: {containers: [{name: c, image: "x:1", securityContext: {privileged: true}}]}
"#;
    assert_eq!(
        privileged(docs),
        expect(&[
            ("HostNamespaces", "ReplicationController", "app/legacy"),
            ("PrivilegedContainer", "Job", "app/once"),
            ("PrivilegedContainer", "Pod", "app/rollout-pod"),
            ("PrivilegedContainer", "ReplicaSet", "app/lone"),
            ("PrivilegedContainer", "ReplicaSet", "app/rollout-rs"),
        ])
    );
}

#[test]
fn image_provenance_reads_cronjobs_and_bare_pods() {
    let mut s: Snapshot = snapshot(&[CRONJOB, BARE_POD]);
    s.trim_all();
    let c = control("imageProvenance: {allowedRegistries: [registry.example.com/]}");
    let mut found: Vec<(String, String)> = sorted(&eval(&c, &s))
        .into_iter()
        .map(|(_, kind, name)| (kind, name))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("CronJob".to_owned(), "app/nightly".to_owned()),
            ("Deployment".to_owned(), "app/web".to_owned()),
            ("Pod".to_owned(), "app/debug".to_owned()),
        ]
    );
}

fn hpa(target: &str, min: &str) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web, namespace: app}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}\n{min}  maxReplicas: 10\n"
    )
}

/// The Kubernetes docs tell users to omit `spec.replicas` under an HPA: the
/// HPA's `minReplicas` (default 1) is then the effective minimum.
#[test]
fn an_autoscaler_s_min_replicas_is_the_effective_minimum() {
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: app}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: \"web:1\"}]}\n";
    let c = control(
        "availability: {minReplicas: 2, requirePodDisruptionBudget: false, requireReadinessProbes: false}",
    );
    let e = eval(&c, &snapshot(&[deploy]));
    assert_eq!(
        sorted(&e),
        expect(&[("InsufficientReplicas", "Deployment", "app/web")])
    );
    assert!(e.violations[0].message.contains("runs 1 replica"), "{e:?}");
    let with = hpa("web", "  minReplicas: 3\n");
    assert_eq!(sorted(&eval(&c, &snapshot(&[deploy, &with]))), expect(&[]));
    let default_min = hpa("web", "");
    let e = eval(&c, &snapshot(&[deploy, &default_min]));
    assert_eq!(
        sorted(&e),
        expect(&[("InsufficientReplicas", "Deployment", "app/web")])
    );
    assert!(
        e.violations[0]
            .message
            .contains("HorizontalPodAutoscaler web minReplicas"),
        "{e:?}"
    );
    let other = hpa("api", "  minReplicas: 3\n");
    assert_eq!(
        sorted(&eval(&c, &snapshot(&[deploy, &other]))),
        expect(&[("InsufficientReplicas", "Deployment", "app/web")]),
        "an HPA of another Deployment does not count"
    );
}

/// The cache keeps compact views of the pod-creating kinds, but offline
/// manifests are validated against the complete API type first.
#[test]
fn offline_a_field_no_check_reads_is_still_validated_against_the_api_type() {
    let mut s = Snapshot::default();
    let err = s
        .insert_yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  minReadySeconds: soon\n  selector: {}\n  template: {spec: {containers: []}}\n",
            "default",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("Deployment") && err.contains("d"), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

/// A pod is judged through its owner only when the owner is a kind read
/// here, API group included: the pods of an OpenKruise `apps.kruise.io`
/// StatefulSet or a Volcano `batch.volcano.sh` Job are judged as bare pods.
#[test]
fn pods_of_a_third_party_controller_with_a_built_in_kind_name_are_judged() {
    let pod = |name: &str, api_version: &str, kind: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: app\n  ownerReferences: [{{apiVersion: {api_version}, kind: {kind}, name: o, uid: u, controller: true}}]\nspec: {{hostPID: true, containers: [{{name: c, image: 'x:1'}}]}}\n"
        )
    };
    let docs = [
        pod("kruise", "apps.kruise.io/v1beta1", "StatefulSet"),
        pod("volcano", "batch.volcano.sh/v1alpha1", "Job"),
        pod("owned", "apps/v1", "ReplicaSet"),
    ];
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let mut s = snapshot(&refs);
    s.trim_all();
    let e = eval(&control("workloadSecurity: {}"), &s);
    assert_eq!(
        sorted(&e),
        expect(&[
            ("HostNamespaces", "Pod", "app/kruise"),
            ("HostNamespaces", "Pod", "app/volcano"),
        ])
    );
}

/// A required field given as `null` validates against the API type (which
/// reads it as empty) and loads as such, instead of failing on the view.
#[test]
fn a_null_template_loads_as_an_empty_one() {
    let mut s = Snapshot::default();
    let n = s
        .insert_yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: app}\nspec:\n  selector: {}\n  template:\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c, namespace: app}\nspec:\n",
            "default",
        )
        .unwrap();
    assert_eq!(n, 2);
}
