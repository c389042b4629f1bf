//! A1.1 capacity (`capacity`) and CC6.1 ServiceAccount tokens
//! (`serviceAccountTokens`), issue 13: resource requests and limits as
//! Kubernetes fills them in (a limit implies the request; a LimitRange's
//! `Container` defaults, with the API server's defaulting of `max` and
//! `min`; pod-level resources), and token automounting as the pod spec and
//! its ServiceAccount decide it.
use soc2_operator::engine::Verdict;

use crate::util::*;

/// A Deployment `name` in namespace `ns` whose one container has `resources`
/// (a YAML flow mapping) and whose pod spec has `pod` (YAML flow-mapping
/// entries, may be empty).
fn deployment(ns: &str, name: &str, resources: &str, pod: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{{pod}containers: [{{name: main, image: 'x:1', resources: {resources}}}]}}\n"
    )
}

const CAPACITY: &str = "capacity:\n  requests: [cpu, memory]\n  limits: [memory]";

#[test]
fn requests_and_limits_as_kubernetes_fills_them_in() {
    let docs = [
        // Declares everything.
        deployment(
            "app",
            "full",
            "{requests: {cpu: 10m, memory: 1Mi}, limits: {memory: 2Mi}}",
            "",
        ),
        // A limit without a request: the request equals the limit (cpu is missing).
        deployment("app", "limit-only", "{limits: {memory: 2Mi}}", ""),
        // Nothing at all.
        deployment("app", "bare", "{}", ""),
        // Pod-level resources cover every container.
        deployment(
            "app",
            "pod-level",
            "{}",
            "resources: {requests: {cpu: 1, memory: 1Gi}, limits: {memory: 1Gi}}, ",
        ),
        // Requests but no memory limit.
        deployment("app", "no-limit", "{requests: {cpu: 10m, memory: 1Mi}}", ""),
    ];
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let e = eval(&control(CAPACITY), &snapshot(&refs));
    assert_eq!(e.verdict, Verdict::NonCompliant);
    assert_eq!(
        sorted(&e),
        expect(&[
            ("MissingResourceLimits", "Deployment", "app/bare"),
            ("MissingResourceRequests", "Deployment", "app/bare"),
            ("MissingResourceRequests", "Deployment", "app/limit-only"),
            ("MissingResourceLimits", "Deployment", "app/no-limit"),
        ])
    );
    let limit_only = e
        .violations
        .iter()
        .find(|v| v.name == "limit-only")
        .unwrap();
    assert!(
        limit_only.message.contains("main (cpu)"),
        "only cpu is missing: {}",
        limit_only.message
    );
    assert_eq!(e.resources_checked, 5);
}

#[test]
fn a_limit_range_supplies_defaults_with_the_api_servers_defaulting() {
    let bare = deployment("app", "bare", "{}", "");
    // `max` implies `default` (a limit), which implies `defaultRequest`;
    // `min` implies `defaultRequest`.
    let lr = |spec: &str| {
        format!(
            "apiVersion: v1\nkind: LimitRange\nmetadata: {{name: d, namespace: app}}\nspec: {{limits: [{spec}]}}\n"
        )
    };
    let cases = [
        (
            "{type: Container, defaultRequest: {cpu: 1m, memory: 1Mi}, default: {memory: 2Mi}}",
            vec![],
        ),
        (
            "{type: Container, max: {memory: 2Mi}, min: {cpu: 1m}}",
            vec![],
        ),
        (
            "{type: Container, default: {memory: 2Mi}}",
            vec!["MissingResourceRequests"],
        ),
        // A Pod item gives containers nothing.
        (
            "{type: Pod, max: {cpu: 2, memory: 2Gi}}",
            vec!["MissingResourceLimits", "MissingResourceRequests"],
        ),
    ];
    for (spec, want) in cases {
        let l = lr(spec);
        let e = eval(&control(CAPACITY), &snapshot(&[&bare, &l]));
        let got: Vec<String> = sorted(&e).into_iter().map(|(r, _, _)| r).collect();
        assert_eq!(got, want, "LimitRange {spec}");
    }
}

#[test]
fn init_containers_and_every_pod_creating_kind_are_judged_through_their_owner() {
    let cron = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: app}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          initContainers: [{name: setup, image: "x:1"}]
          containers: [{name: run, image: "x:1", resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {memory: 1Mi}}}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: nightly-1
  namespace: app
  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: nightly, uid: u, controller: true}]
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: run, image: "x:1"}]
"#;
    let e = eval(&control(CAPACITY), &snapshot(&[cron]));
    assert_eq!(
        sorted(&e),
        expect(&[
            ("MissingResourceLimits", "CronJob", "app/nightly"),
            ("MissingResourceRequests", "CronJob", "app/nightly"),
        ])
    );
    assert!(e.violations[0].message.contains("setup"));
}

#[test]
fn resource_quota_per_namespace() {
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: capped}\nspec: {hard: {pods: '10'}}\n";
    let s = snapshot(&[quota, &ns("open")]);
    let e = eval(
        &control("capacity:\n  requests: []\n  requireResourceQuota: true"),
        &s,
    );
    assert_eq!(
        sorted(&e),
        expect(&[("NoResourceQuota", "Namespace", "open")])
    );
    assert_eq!(e.resources_checked, 2);
}

#[test]
fn a_capacity_check_that_asks_for_nothing_is_invalid() {
    let e = eval(&control("capacity:\n  requests: []"), &snapshot(&[]));
    assert_eq!(e.verdict, Verdict::InvalidSpec);
    assert!(
        e.message.contains("spec.check.capacity.requests"),
        "{}",
        e.message
    );
}

const TOKENS: &str = "serviceAccountTokens:\n  allowedServiceAccounts: [app/operator]";

fn service_account(name: &str, automount: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: app}}\n{automount}\n"
    )
}

#[test]
fn token_automounting_as_the_pod_spec_and_its_service_account_decide() {
    let docs = [
        service_account("default", ""),
        service_account("quiet", "automountServiceAccountToken: false"),
        service_account("loud", "automountServiceAccountToken: true"),
        service_account("operator", ""),
        // Default ServiceAccount, nothing set: mounted.
        deployment("app", "plain", "{}", ""),
        // The pod opts out.
        deployment(
            "app",
            "opted-out",
            "{}",
            "automountServiceAccountToken: false, ",
        ),
        // The ServiceAccount opts out.
        deployment("app", "quiet-sa", "{}", "serviceAccountName: quiet, "),
        // The pod's true wins over its ServiceAccount's false.
        deployment(
            "app",
            "pod-wins",
            "{}",
            "serviceAccountName: quiet, automountServiceAccountToken: true, ",
        ),
        deployment("app", "loud-sa", "{}", "serviceAccountName: loud, "),
        // Allowed to call the API.
        deployment("app", "operator", "{}", "serviceAccountName: operator, "),
        // A ServiceAccount that does not exist: mounted as far as the pod says.
        deployment("app", "ghost", "{}", "serviceAccountName: ghost, "),
    ];
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let e = eval(&control(TOKENS), &snapshot(&refs));
    assert_eq!(
        sorted(&e),
        expect(&[
            ("ServiceAccountTokenMounted", "Deployment", "app/ghost"),
            ("ServiceAccountTokenMounted", "Deployment", "app/loud-sa"),
            ("ServiceAccountTokenMounted", "Deployment", "app/plain"),
            ("ServiceAccountTokenMounted", "Deployment", "app/pod-wins"),
        ])
    );
    let pod_wins = e.violations.iter().find(|v| v.name == "pod-wins").unwrap();
    assert!(
        pod_wins
            .message
            .contains("sets automountServiceAccountToken: true")
    );
    assert_eq!(e.resources_checked, 7);
}

#[test]
fn offline_a_service_account_missing_from_the_input_is_undetermined() {
    let d = deployment("app", "web", "{}", "serviceAccountName: web, ");
    let mut s = snapshot(&[&d]);
    s.mark_partial();
    let e = eval(&control(TOKENS), &s);
    assert_eq!(e.verdict, Verdict::Unknown);
    assert!(e.violations.is_empty());
    assert_eq!(e.undetermined.len(), 1);
    assert_eq!(e.undetermined[0].reason, "ServiceAccountNotInInput");
}

/// A running bare Pod was admitted already: a LimitRange made later does not
/// give it requests. Offline, a Pod manifest is yet to be admitted and gets
/// the namespace's defaults.
#[test]
fn limit_range_defaults_do_not_cover_a_running_bare_pod() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: app}\nspec: {containers: [{name: c, image: 'x:1'}]}\n";
    let lr = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: d, namespace: app}\nspec: {limits: [{type: Container, default: {cpu: 1, memory: 1Gi}}]}\n";
    let live = eval(&control(CAPACITY), &snapshot(&[pod, lr]));
    assert_eq!(
        sorted(&live),
        expect(&[
            ("MissingResourceLimits", "Pod", "app/p"),
            ("MissingResourceRequests", "Pod", "app/p"),
        ])
    );
    let mut offline = snapshot(&[pod, lr]);
    offline.mark_partial();
    assert_eq!(
        eval(&control(CAPACITY), &offline).verdict,
        Verdict::Compliant
    );
}

/// The deprecated `serviceAccount` field names the ServiceAccount when
/// `serviceAccountName` is absent (offline manifests may still use it).
#[test]
fn the_deprecated_service_account_field_names_the_account() {
    let docs = [
        service_account("default", "automountServiceAccountToken: false"),
        service_account("builder", ""),
        deployment("app", "ci", "{}", "serviceAccount: builder, "),
    ];
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let e = eval(&control(TOKENS), &snapshot(&refs));
    assert_eq!(
        sorted(&e),
        expect(&[("ServiceAccountTokenMounted", "Deployment", "app/ci")])
    );
    assert!(e.violations[0].message.contains("ServiceAccount builder"));
}

/// A static pod's mirror gets no ServiceAccount token (ServiceAccount
/// admission skips it), so it is not reported.
#[test]
fn mirror_pods_get_no_token() {
    let pod = |name: &str, annotations: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: app, annotations: {{{annotations}}}}}\nspec: {{containers: [{{name: c, image: 'x:1'}}]}}\n"
        )
    };
    let docs = [
        service_account("default", ""),
        pod("static", "kubernetes.io/config.mirror: abc"),
        pod("plain", ""),
    ];
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let mut s = snapshot(&refs);
    s.trim_all();
    let e = eval(&control(TOKENS), &s);
    assert_eq!(
        sorted(&e),
        expect(&[("ServiceAccountTokenMounted", "Pod", "app/plain")])
    );
}
