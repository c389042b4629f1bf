//! Scale benchmark of the operator on a real control plane (`make bench`).
//!
//! For each namespace count N (default 1,000 and 10,000): starts a fresh local
//! control plane (etcd, kube-apiserver with an audit log of the operator's
//! requests, kube-controller-manager), creates N namespaces of twelve objects
//! each plus cluster RBAC, StorageClasses and Velero schedules and backups,
//! waits until the controllers have settled, applies the whole catalog
//! (`controls/`), installs the chart's RBAC and starts the operator (release
//! build, its own process, the chart's ServiceAccount) and measures:
//!
//! - time from the operator's start until every Control has been evaluated;
//! - detection latency: from the request that introduces a violation (delete a
//!   namespace's default-deny NetworkPolicy, bind cluster-admin to a user, add
//!   an Ingress without TLS) until a client watching Controls sees the status
//!   name it; the fix latency likewise; beside the latency of a bare watch of
//!   the changed object (the physical limit);
//! - peak RSS and CPU seconds of the operator (`/proc`);
//! - the operator's requests by verb (the API server's audit log), its status
//!   writes and how many of them changed nothing;
//! - Polaris, when it builds from the Go module proxy.
//!
//! Results go to `bench/results.json` (one object per N).
//!
//! `cargo bench --bench scale -- [--namespaces 1000,10000] [--trials 50]
//! [--idle 60] [--output bench/results.json]`. Run by `cargo test` (without
//! `--bench`), it makes a small run (20 namespaces, 3 trials) and checks the
//! harness's own results — latencies measured for every trial, no no-op status
//! writes, no LIST in steady state — so that the harness cannot rot.
mod cluster;
mod measure;
mod populate;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use cluster::proc_usage;
use measure::{Observer, percentiles};
use soc2_test_support::operator::metric_value;
use soc2_test_support::{Cluster, access, repo_root};

/// The benchmark's flags (after `cargo bench --bench scale --`).
#[derive(Parser, Debug)]
struct Args {
    /// Namespace counts, one run (and one fresh control plane) each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,10000",
        env = "SOC2_BENCH_NAMESPACES"
    )]
    namespaces: Vec<usize>,
    /// Trials per scenario (each: a violation and its fix).
    #[arg(long, default_value_t = 50, env = "SOC2_BENCH_TRIALS")]
    trials: usize,
    /// Seconds of steady state without changes before the trials.
    #[arg(long, default_value_t = 60)]
    idle: u64,
    /// Where the results go (the file is rewritten with every run).
    #[arg(long, default_value = "bench/results.json")]
    output: PathBuf,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The four scenarios: the Control that must notice, and what is changed.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// Delete a namespace's default-deny NetworkPolicy (CC6.1/CC6.6).
    NetworkPolicyDeleted,
    /// Bind cluster-admin to a user (CC6.1–CC6.3).
    ClusterAdminBound,
    /// Add an Ingress without TLS (CC6.7).
    IngressWithoutTls,
    /// Add a privileged bare Pod (CC6.8), then delete it.
    PrivilegedBarePod,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::NetworkPolicyDeleted,
        Scenario::ClusterAdminBound,
        Scenario::IngressWithoutTls,
        Scenario::PrivilegedBarePod,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::NetworkPolicyDeleted => "network-policy-deleted",
            Scenario::ClusterAdminBound => "cluster-admin-bound",
            Scenario::IngressWithoutTls => "ingress-without-tls",
            Scenario::PrivilegedBarePod => "privileged-bare-pod",
        }
    }

    fn control(self) -> &'static str {
        match self {
            Scenario::NetworkPolicyDeleted => "network-default-deny",
            Scenario::ClusterAdminBound => "no-unexpected-cluster-admins",
            Scenario::IngressWithoutTls => "encryption-in-transit",
            Scenario::PrivilegedBarePod => "privileged-workloads-forbidden",
        }
    }
}

/// One trial's latencies (ms).
#[derive(Default)]
struct Samples {
    detection: Vec<f64>,
    fix: Vec<f64>,
    bare: Vec<f64>,
    missed: usize,
}

const TRIAL_TIMEOUT: Duration = Duration::from_secs(60);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Introduces the violation (`violate`) or removes it, then waits for the bare
/// watch and the Control's status. Returns (control ms, bare ms).
async fn step(
    client: &Client,
    obs: &mut Observer,
    scenario: Scenario,
    t: usize,
    ns: &str,
    violate: bool,
) -> Result<Option<(f64, f64)>> {
    let pp = PostParams::default();
    let dp = DeleteParams::default();
    let (key, exists, needle) = match scenario {
        Scenario::NetworkPolicyDeleted => (
            measure::object_key("NetworkPolicy", Some(ns), "default-deny"),
            !violate,
            ns.to_owned(),
        ),
        Scenario::ClusterAdminBound => {
            let name = format!("bench-admin-{t}");
            (
                measure::object_key("ClusterRoleBinding", None, &name),
                violate,
                name,
            )
        }
        Scenario::IngressWithoutTls => {
            let name = format!("plain-{t}");
            (
                measure::object_key("Ingress", Some(ns), &name),
                violate,
                name,
            )
        }
        Scenario::PrivilegedBarePod => {
            let name = format!("debug-{t}");
            (measure::object_key("Pod", Some(ns), &name), violate, name)
        }
    };
    let t0 = Instant::now();
    match (scenario, violate) {
        (Scenario::NetworkPolicyDeleted, true) => {
            Api::<NetworkPolicy>::namespaced(client.clone(), ns)
                .delete("default-deny", &dp)
                .await?;
        }
        (Scenario::NetworkPolicyDeleted, false) => {
            let np: NetworkPolicy = serde_json::from_value(populate::default_deny(ns))?;
            Api::<NetworkPolicy>::namespaced(client.clone(), ns)
                .create(&pp, &np)
                .await?;
        }
        (Scenario::ClusterAdminBound, true) => {
            let crb: ClusterRoleBinding = serde_json::from_value(json!({
                "metadata": {"name": needle},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": format!("mallory-{t}")}]
            }))?;
            Api::<ClusterRoleBinding>::all(client.clone())
                .create(&pp, &crb)
                .await?;
        }
        (Scenario::ClusterAdminBound, false) => {
            Api::<ClusterRoleBinding>::all(client.clone())
                .delete(&needle, &dp)
                .await?;
        }
        (Scenario::IngressWithoutTls, true) => {
            let mut v = populate::ingress(&needle, &format!("plain-{t}.{ns}.example.com"), false);
            v["metadata"]["namespace"] = json!(ns);
            let ing: Ingress = serde_json::from_value(v)?;
            Api::<Ingress>::namespaced(client.clone(), ns)
                .create(&pp, &ing)
                .await?;
        }
        (Scenario::IngressWithoutTls, false) => {
            Api::<Ingress>::namespaced(client.clone(), ns)
                .delete(&needle, &dp)
                .await?;
        }
        (Scenario::PrivilegedBarePod, true) => {
            let pod: Pod = serde_json::from_value(populate::privileged_pod(&needle))?;
            Api::<Pod>::namespaced(client.clone(), ns)
                .create(&pp, &pod)
                .await?;
        }
        (Scenario::PrivilegedBarePod, false) => {
            // No kubelet: a pod is gone at once only with a zero grace period.
            Api::<Pod>::namespaced(client.clone(), ns)
                .delete(
                    &needle,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..dp
                    },
                )
                .await?;
        }
    }
    let control = scenario.control();
    let seen = obs
        .wait_for(TRIAL_TIMEOUT, |o| {
            let bare = o
                .objects
                .get(&key)
                .filter(|(e, at)| *e == exists && *at >= t0)?
                .1;
            let view = o.controls.get(control)?;
            let at = view.seen.filter(|at| *at >= t0)?;
            let done = if violate {
                view.compliant.as_deref() == Some("False")
                    && view.violations.iter().any(|v| v.contains(&needle))
            } else {
                view.compliant.as_deref() == Some("True")
            };
            done.then_some((ms(at - t0), ms(bare - t0)))
        })
        .await;
    Ok(seen)
}

/// Waits until the API server receives fewer than 10 writes a second for
/// 6 s in a row (the controllers have created ReplicaSets, Pods, tokens and
/// config maps for every namespace). Returns the seconds waited.
async fn wait_settled(client: &Client) -> Result<f64> {
    let started = Instant::now();
    let mut last: Option<f64> = None;
    let mut quiet = 0;
    while started.elapsed() < Duration::from_secs(1800) {
        let text = client
            .request_text(http::Request::get("/metrics").body(Vec::new())?)
            .await?;
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines)?;
        let writes: f64 = scrape
            .samples
            .iter()
            .filter(|s| s.metric == "apiserver_request_total")
            .filter(|s| {
                matches!(
                    s.labels.get("verb"),
                    Some("CREATE" | "UPDATE" | "PATCH" | "APPLY" | "DELETE" | "POST" | "PUT")
                )
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum();
        if let Some(prev) = last {
            if writes - prev < 20.0 {
                quiet += 1;
                if quiet >= 3 {
                    return Ok(started.elapsed().as_secs_f64());
                }
            } else {
                quiet = 0;
            }
        }
        last = Some(writes);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    bail!("the cluster did not settle within 30 min")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Polaris (`polaris audit`) on the same cluster: full scan time and peak RSS,
/// or why it could not be built.
fn peer(cluster: &Cluster) -> Value {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let dir = PathBuf::from(home).join(".cache/soc2-operator/peer");
    let bin = dir.join("bin/polaris");
    let module = "github.com/fairwindsops/polaris/v9@latest";
    if !bin.exists() {
        let out = Command::new("go")
            .args(["install", module])
            .env("GOBIN", dir.join("bin"))
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                return json!({"name": "polaris", "built": false, "module": module,
                              "error": err.trim().lines().collect::<Vec<_>>().join(" ")});
            }
            Err(e) => {
                return json!({"name": "polaris", "built": false, "module": module, "error": e.to_string()});
            }
        }
    }
    let started = Instant::now();
    let child = Command::new(&bin)
        .args(["audit", "--format", "json"])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return json!({"name": "polaris", "built": true, "error": e.to_string()}),
    };
    let mut peak = 0.0f64;
    let status = loop {
        if let Some((rss, _)) = proc_usage(child.id()) {
            peak = peak.max(rss);
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return json!({"name": "polaris", "built": true, "error": e.to_string()}),
        }
    };
    json!({"name": "polaris", "built": true, "exit": status.code(),
           "full_scan_s": started.elapsed().as_secs_f64(), "peak_rss_mib": peak})
}

/// The operator's metric `name` (unlabelled), scraped from its /metrics.
fn operator_metric(port: u16, name: &str) -> Option<f64> {
    let body = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    metric_value(&body, name)
}

struct RunConfig {
    namespaces: usize,
    trials: usize,
    idle: Duration,
    state: PathBuf,
    with_peer: bool,
}

async fn run_once(cfg: &RunConfig) -> Result<Value> {
    let root = repo_root();
    eprintln!(
        "[{} ns] starting a control plane in {}",
        cfg.namespaces,
        cfg.state.display()
    );
    let cluster = cluster::up(&cfg.state)?;
    let admin = access::client_from(&cluster.kubeconfig).await?;
    let kubectl = |args: &[&str]| soc2_test_support::kubectl(&cluster.kubeconfig, args);
    kubectl(&[
        "apply",
        "--server-side",
        "-f",
        "crds/",
        "-f",
        "tests/fixtures/real/velero/crds/",
    ])?;
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "--all",
    ])?;
    kubectl(&["create", "namespace", cluster::RELEASE_NAMESPACE])?;

    eprintln!("[{} ns] creating objects", cfg.namespaces);
    let population = populate::populate(&admin, cfg.namespaces).await?;
    eprintln!(
        "[{} ns] {} objects in {:.0} s; waiting for the controllers to settle",
        cfg.namespaces, population.objects, population.seconds
    );
    let settle_s = wait_settled(&admin).await?;
    let op_kubeconfig = cluster::operator_identity(&cluster, &admin).await?;
    kubectl(&["apply", "-f", "controls/"])?;
    let controls = std::fs::read_dir(root.join("controls"))?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .count();

    let mut obs = measure::observe(&admin).await?;
    let audit = cluster.audit_log();
    let a0 = measure::audit_position(&audit)?;
    let port = free_port()?;
    let log = std::fs::File::create(cluster.state.join("operator.log"))?;
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
        .args(["--log-format", "json", "run", "--exit-with-parent"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(["--lease-namespace", cluster::RELEASE_NAMESPACE])
        .env("KUBECONFIG", &op_kubeconfig)
        // As the chart and the image run it (glibc malloc arenas).
        .env("MALLOC_ARENA_MAX", "2")
        .env(
            "RUST_LOG",
            std::env::var("SOC2_BENCH_OPERATOR_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start the operator")?;
    let pid = child.id();
    let evaluated = obs
        .wait_for(Duration::from_secs(900), |o| {
            (o.controls.len() == controls && o.controls.values().all(|c| c.evaluated))
                .then(|| o.controls.values().filter_map(|c| c.seen).max())
                .flatten()
        })
        .await;
    let Some(evaluated) = evaluated else {
        let _ = child.kill();
        bail!(
            "not every Control was evaluated within 15 min (operator log: {})",
            cluster.state.join("operator.log").display()
        );
    };
    let startup_s = (evaluated - started).as_secs_f64();
    let (_, cpu_startup) = proc_usage(pid).unwrap_or_default();
    eprintln!(
        "[{} ns] {controls} Controls evaluated {startup_s:.2} s after the start",
        cfg.namespaces
    );
    for s in Scenario::ALL {
        let st = obs.state.lock().unwrap();
        let v = st.controls.get(s.control());
        if v.and_then(|v| v.compliant.as_deref()) != Some("True") {
            bail!(
                "{} should be compliant before the trials, found {:?} (violations {:?})",
                s.control(),
                v.and_then(|v| v.compliant.clone()),
                v.map(|v| v.violations.clone())
            );
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a1 = measure::audit_position(&audit)?;

    // Steady state without changes.
    tokio::time::sleep(cfg.idle).await;
    let (_, cpu_idle_end) = proc_usage(pid).unwrap_or_default();
    let a2 = measure::audit_position(&audit)?;

    eprintln!("[{} ns] {} trials per scenario", cfg.namespaces, cfg.trials);
    let mut by_scenario: Vec<(Scenario, Samples)> = Vec::new();
    for s in Scenario::ALL {
        by_scenario.push((s, Samples::default()));
    }
    for t in 0..cfg.trials {
        for (s, samples) in by_scenario.iter_mut() {
            let ns = populate::namespace_name((t * 7919 + 13) % cfg.namespaces);
            for violate in [true, false] {
                match step(&admin, &mut obs, *s, t, &ns, violate).await? {
                    Some((control, bare)) => {
                        if violate {
                            samples.detection.push(control);
                        } else {
                            samples.fix.push(control);
                        }
                        samples.bare.push(bare);
                    }
                    None => {
                        eprintln!(
                            "[{} ns] trial {t} {} (violate={violate}): not seen within {TRIAL_TIMEOUT:?}",
                            cfg.namespaces,
                            s.name()
                        );
                        samples.missed += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a3 = measure::audit_position(&audit)?;
    let (peak_rss, cpu_total) = proc_usage(pid).unwrap_or_default();
    let rss_now = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0);
    let metric_writes = operator_metric(port, "soc2_status_writes_total");
    let apiserver_rss = cluster.apiserver_pid().and_then(proc_usage).map(|(r, _)| r);
    // SIGTERM, as Kubernetes stops a pod.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit = tokio::task::spawn_blocking(move || child.wait()).await??;
    let kept = root.join(format!("target/bench-operator-{}.log", cfg.namespaces));
    let _ = std::fs::copy(cluster.state.join("operator.log"), &kept);

    let startup_req = measure::requests(&audit, a0, a1)?;
    let idle_req = measure::requests(&audit, a1, a2)?;
    let steady_req = measure::requests(&audit, a1, a3)?;
    let all_req = measure::requests(&audit, a0, a3)?;
    let (changes, time_only) = {
        let st = obs.state.lock().unwrap();
        (st.status_changes, st.status_noop_updates)
    };
    let noop = all_req.status_patches.saturating_sub(changes);

    let mut all = Samples::default();
    let mut scenarios = serde_json::Map::new();
    for (s, samples) in &by_scenario {
        scenarios.insert(
            s.name().into(),
            json!({
                "control": s.control(),
                "detection_ms": percentiles(&samples.detection),
                "fix_ms": percentiles(&samples.fix),
                "bare_watch_ms": percentiles(&samples.bare),
                "missed": samples.missed,
            }),
        );
        all.detection.extend(&samples.detection);
        all.fix.extend(&samples.fix);
        all.bare.extend(&samples.bare);
        all.missed += samples.missed;
    }
    let (det, fix, bare) = (
        percentiles(&all.detection),
        percentiles(&all.fix),
        percentiles(&all.bare),
    );
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let peer = if cfg.with_peer {
        peer(&cluster)
    } else {
        Value::Null
    };
    Ok(json!({
        "namespaces": cfg.namespaces,
        "objects": population.objects,
        "controls": controls,
        "populate_s": round(population.seconds),
        "settle_s": round(settle_s),
        "startup_to_evaluated_s": round(startup_s),
        "detection_ms": det,
        "fix_ms": fix,
        "bare_watch_ms": bare,
        "detection_p99_minus_bare_p99_ms": round(det.p99 - bare.p99),
        "fix_p99_minus_bare_p99_ms": round(fix.p99 - bare.p99),
        "missed": all.missed,
        "scenarios": scenarios,
        "peak_rss_mib": round(peak_rss),
        "rss_at_end_mib": rss_now.map(round),
        "cpu_seconds": round(cpu_total),
        "cpu_seconds_startup": round(cpu_startup),
        "cpu_seconds_idle": round(cpu_idle_end - cpu_startup),
        "idle_s": cfg.idle.as_secs(),
        "requests": steady_req.by_verb,
        "requests_idle": idle_req.by_verb,
        "requests_startup": startup_req.by_verb,
        "list_requests_steady_by_resource": steady_req.list_by_resource,
        "status_writes": all_req.status_patches,
        "status_writes_steady": steady_req.status_patches,
        "status_content_changes": changes,
        "status_updates_changing_only_evaluation_time": time_only,
        "noop_status_writes": noop,
        "operator_metric_status_writes": metric_writes,
        "operator_exit_code": exit.code(),
        "apiserver_peak_rss_mib": apiserver_rss.map(round),
        "peer": peer,
        "machine": machine(),
        "versions": versions(),
        "date": jiff::Timestamp::now().to_string(),
        "commit": commit(),
    }))
}

/// The measured commit (`git describe --always --dirty`), if git can tell.
fn commit() -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(repo_root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": mem_gib,
    })
}

fn versions() -> Value {
    let env = std::fs::read_to_string(repo_root().join("hack/control-plane/versions.env"))
        .unwrap_or_default();
    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_owned())
    };
    json!({"operator": soc2_operator::VERSION, "kubernetes": get("K8S_VERSION"), "etcd": get("ETCD_VERSION")})
}

fn write_results(path: &Path, results: &[Value]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(results)? + "\n")?;
    Ok(())
}

fn summary_line(r: &Value) -> String {
    format!(
        "| {} | {} | {:.1} s | {} / {} / {} ms | {} / {} / {} ms | {} / {} ms | {} ms | {} MiB | {} s | {} | {} | {} |",
        r["namespaces"],
        r["objects"],
        r["startup_to_evaluated_s"].as_f64().unwrap_or(0.0),
        r["detection_ms"]["p50"],
        r["detection_ms"]["p95"],
        r["detection_ms"]["p99"],
        r["fix_ms"]["p50"],
        r["fix_ms"]["p95"],
        r["fix_ms"]["p99"],
        r["bare_watch_ms"]["p50"],
        r["bare_watch_ms"]["p99"],
        r["detection_p99_minus_bare_p99_ms"],
        r["peak_rss_mib"],
        r["cpu_seconds"],
        r["requests"]["list"].as_u64().unwrap_or(0),
        r["status_writes"],
        r["noop_status_writes"],
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if !bench_mode {
        return smoke().await;
    }
    let args = Args::parse();
    let mut results = Vec::new();
    for &n in &args.namespaces {
        if n == 0 {
            bail!("--namespaces: counts must be positive");
        }
        let cfg = RunConfig {
            namespaces: n,
            trials: args.trials,
            idle: Duration::from_secs(args.idle),
            state: std::env::temp_dir().join(format!("soc2-bench-{}-{n}", std::process::id())),
            with_peer: true,
        };
        let r = run_once(&cfg)
            .await
            .with_context(|| format!("run with {n} namespaces"))?;
        eprintln!("{}", serde_json::to_string_pretty(&r)?);
        results.push(r);
        write_results(&args.output, &results)?;
    }
    println!(
        "| namespaces | objects | startup | detection p50/p95/p99 | fix p50/p95/p99 | bare watch p50/p99 | detection p99 − bare p99 | peak RSS | CPU | LISTs (steady) | status writes | no-op writes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        println!("{}", summary_line(r));
    }
    eprintln!("results written to {}", args.output.display());
    Ok(())
}

/// `cargo test` mode: a small run whose results must be complete and clean.
async fn smoke() -> Result<()> {
    let state = std::env::temp_dir().join(format!("soc2-e2e-bench-{}", std::process::id()));
    let cfg = RunConfig {
        namespaces: 20,
        trials: 3,
        idle: Duration::from_secs(3),
        state,
        with_peer: false,
    };
    let r = run_once(&cfg).await?;
    let out = tempfile::NamedTempFile::new()?;
    write_results(out.path(), std::slice::from_ref(&r))?;
    let back: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(out.path())?)?;
    assert_eq!(back.len(), 1);
    let r = &back[0];
    for key in [
        "namespaces",
        "objects",
        "startup_to_evaluated_s",
        "detection_ms",
        "fix_ms",
        "bare_watch_ms",
        "peak_rss_mib",
        "cpu_seconds",
        "requests",
        "status_writes",
        "noop_status_writes",
        "peer",
    ] {
        assert!(r.get(key).is_some(), "results.json lacks {key}: {r}");
    }
    assert!(
        r["objects"].as_u64().unwrap() > 20 * (populate::OBJECTS_PER_NAMESPACE as u64 + 1),
        "{r}"
    );
    assert_eq!(r["missed"], 0, "every violation and fix must be seen: {r}");
    for s in Scenario::ALL {
        assert_eq!(r["scenarios"][s.name()]["detection_ms"]["n"], 3, "{r}");
        assert_eq!(r["scenarios"][s.name()]["fix_ms"]["n"], 3, "{r}");
    }
    assert_eq!(
        r["noop_status_writes"], 0,
        "no status write may change nothing: {r}"
    );
    assert_eq!(
        r["requests"]["list"].as_u64().unwrap_or(0),
        0,
        "no LIST in steady state: {r}"
    );
    assert!(
        r["requests_startup"]["list"].as_u64().unwrap_or(0) > 0,
        "the audit log counts the start-up LISTs: {r}"
    );
    // Six transitions per trial and scenario, and a first status per Control.
    assert!(r["status_writes_steady"].as_u64().unwrap() >= 18, "{r}");
    assert_eq!(
        r["operator_metric_status_writes"].as_f64(),
        r["status_writes"].as_u64().map(|v| v as f64),
        "{r}"
    );
    assert_eq!(r["operator_exit_code"], 0, "{r}");
    eprintln!(
        "scale harness smoke run: ok\n{}",
        serde_json::to_string_pretty(r)?
    );
    Ok(())
}
