//! What the benchmark observes: the Controls' status as a client sees it, a
//! bare watch of the objects the trials change (the physical limit), the
//! operator's requests from the API server's audit log, and latency
//! percentiles.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use soc2_operator::api::{Control, ControlStatus};
use tokio::sync::watch;

/// A Control's verdict as the benchmark sees it.
#[derive(Clone, Debug, Default)]
pub struct ControlView {
    /// `Compliant` condition status (`True`, `False`, `Unknown`), if any.
    pub compliant: Option<String>,
    /// Whether `Ready` is present for the current generation.
    pub evaluated: bool,
    /// Namespaces and names in `status.violations`.
    pub violations: Vec<String>,
    /// When the benchmark's watch received this status.
    pub seen: Option<Instant>,
}

/// Shared observations, updated by the watch tasks.
#[derive(Default)]
pub struct Observed {
    /// Controls by name.
    pub controls: HashMap<String, ControlView>,
    /// Status changes other than `summary.lastEvaluationTime` (each a real write).
    pub status_changes: u64,
    /// Status updates that changed nothing but `lastEvaluationTime`.
    pub status_noop_updates: u64,
    /// Bare watch: `kind/namespace/name` → (exists, when seen).
    pub objects: HashMap<String, (bool, Instant)>,
    last_status: HashMap<String, ControlStatus>,
}

/// The watch tasks and their observations.
pub struct Observer {
    /// Observations.
    pub state: Arc<Mutex<Observed>>,
    /// Bumped on every observation.
    pub changed: watch::Receiver<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Observer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn status_without_time(s: &ControlStatus) -> ControlStatus {
    let mut s = s.clone();
    if let Some(sum) = s.summary.as_mut() {
        sum.last_evaluation_time =
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
    }
    s
}

/// Starts watching Controls and the three kinds the trials change; returns
/// once every watch has listed.
pub async fn observe(client: &Client) -> Result<Observer> {
    let state = Arc::new(Mutex::new(Observed::default()));
    let (tx, rx) = watch::channel(0u64);
    let tx = Arc::new(tx);
    let (synced_tx, mut synced_rx) = tokio::sync::mpsc::channel::<()>(4);
    let mut tasks = Vec::new();
    {
        let (state, tx, synced) = (state.clone(), tx.clone(), synced_tx.clone());
        let api: Api<Control> = Api::all(client.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = s.next().await {
                let seen = Instant::now();
                match ev {
                    Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) => {
                        let mut st = state.lock().unwrap();
                        record_control(&mut st, &c, seen);
                    }
                    Ok(watcher::Event::InitDone) => {
                        let _ = synced.send(()).await;
                    }
                    _ => {}
                }
                tx.send_modify(|v| *v += 1);
            }
        }));
    }
    tasks.push(bare::<NetworkPolicy>(client, &state, &tx, &synced_tx));
    tasks.push(bare::<ClusterRoleBinding>(client, &state, &tx, &synced_tx));
    tasks.push(bare::<Ingress>(client, &state, &tx, &synced_tx));
    tasks.push(bare::<Pod>(client, &state, &tx, &synced_tx));
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(300), synced_rx.recv())
            .await
            .map_err(|_| anyhow::anyhow!("the benchmark's watches did not list within 5 min"))?;
    }
    Ok(Observer {
        state,
        changed: rx,
        tasks,
    })
}

fn record_control(st: &mut Observed, c: &Control, seen: Instant) {
    let name = c.name_any();
    let status = c.status.clone().unwrap_or_default();
    let cond = |t: &str| status.conditions.iter().find(|x| x.type_ == t);
    let view = ControlView {
        compliant: cond("Compliant").map(|x| x.status.clone()),
        evaluated: cond("Ready").is_some() && status.observed_generation == c.metadata.generation,
        violations: status
            .violations
            .iter()
            .map(|v| format!("{}/{}", v.namespace.clone().unwrap_or_default(), v.name))
            .collect(),
        seen: Some(seen),
    };
    if c.status.is_some() {
        let now = status_without_time(&status);
        match st.last_status.get(&name) {
            Some(prev) if *prev == now => st.status_noop_updates += 1,
            _ => {
                st.status_changes += 1;
                st.last_status.insert(name.clone(), now);
            }
        }
    }
    st.controls.insert(name, view);
}

fn bare<K>(
    client: &Client,
    state: &Arc<Mutex<Observed>>,
    tx: &Arc<watch::Sender<u64>>,
    synced: &tokio::sync::mpsc::Sender<()>,
) -> tokio::task::JoinHandle<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let (state, tx, synced) = (state.clone(), tx.clone(), synced.clone());
    tokio::spawn(async move {
        let mut s = watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = s.next().await {
            let seen = Instant::now();
            let (obj, exists) = match ev {
                Ok(watcher::Event::Apply(o)) => (o, true),
                Ok(watcher::Event::Delete(o)) => (o, false),
                Ok(watcher::Event::InitDone) => {
                    let _ = synced.send(()).await;
                    continue;
                }
                _ => continue,
            };
            let key = object_key(
                K::kind(&()).as_ref(),
                obj.namespace().as_deref(),
                &obj.name_any(),
            );
            state.lock().unwrap().objects.insert(key, (exists, seen));
            tx.send_modify(|v| *v += 1);
        }
    })
}

/// The bare-watch key of an object.
pub fn object_key(kind: &str, ns: Option<&str>, name: &str) -> String {
    format!("{kind}/{}/{name}", ns.unwrap_or(""))
}

impl Observer {
    /// Waits (up to `timeout`) until `pred` holds; returns what it returned.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Observed) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.changed.borrow_and_update();
            if let Some(v) = pred(&self.state.lock().unwrap()) {
                return Some(v);
            }
            match tokio::time::timeout_at(deadline, self.changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }
}

/// Percentiles of latencies, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile (nearest rank; with 50 samples the second largest).
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Samples.
    pub n: usize,
}

/// Nearest-rank percentiles of `samples` (ms).
pub fn percentiles(samples: &[f64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let r = ((p / 100.0) * s.len() as f64).ceil() as usize;
        s[r.clamp(1, s.len()) - 1]
    };
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Percentiles {
        p50: round(rank(50.0)),
        p95: round(rank(95.0)),
        p99: round(rank(99.0)),
        max: round(*s.last().unwrap()),
        n: s.len(),
    }
}

/// The operator's requests in a stretch of the audit log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Requests {
    /// Requests by audit verb (`list`, `watch`, `get`, `patch`, `create`, `update`, …).
    pub by_verb: BTreeMap<String, u64>,
    /// `list` requests by resource.
    pub list_by_resource: BTreeMap<String, u64>,
    /// Successful patches of `controls/status`.
    pub status_patches: u64,
}

/// Counts the requests logged between byte offsets `from` and `to` of the
/// audit log: each request once (a watch at `ResponseStarted`, which is when
/// it is made; every other request at `ResponseComplete`).
pub fn requests(audit_log: &Path, from: u64, to: u64) -> Result<Requests> {
    use std::io::{BufRead, Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(audit_log)?;
    f.seek(SeekFrom::Start(from))?;
    let reader = std::io::BufReader::new(f.take(to.saturating_sub(from)));
    let mut r = Requests::default();
    for line in reader.lines() {
        let line = line?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let verb = v["verb"].as_str().unwrap_or("");
        let stage = v["stage"].as_str().unwrap_or("");
        let counted = if verb == "watch" {
            stage == "ResponseStarted"
        } else {
            stage == "ResponseComplete"
        };
        if !counted {
            continue;
        }
        *r.by_verb.entry(verb.to_owned()).or_default() += 1;
        let resource = v["objectRef"]["resource"].as_str().unwrap_or("");
        if verb == "list" {
            *r.list_by_resource.entry(resource.to_owned()).or_default() += 1;
        }
        if verb == "patch"
            && resource == "controls"
            && v["objectRef"]["subresource"] == "status"
            && v["responseStatus"]["code"] == 200
        {
            r.status_patches += 1;
        }
    }
    Ok(r)
}

/// The audit log's current length (a position to count from).
pub fn audit_position(audit_log: &Path) -> Result<u64> {
    match std::fs::metadata(audit_log) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => bail!("audit log {}: {e}", audit_log.display()),
    }
}
