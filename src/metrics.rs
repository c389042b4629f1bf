//! Prometheus metrics of the operator (prefix `soc2_`, base units, bounded
//! labels: control, category, severity, criterion, kind, reason).
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `soc2_control_compliant` | gauge | control, category, severity | 1 when the Control is compliant, 0 otherwise (NonCompliant or Unknown; absent while its spec is invalid) |
//! | `soc2_control_unknown` | gauge | control, category, severity | 1 when the verdict is Unknown (the evidence it needs cannot be seen), 0 otherwise |
//! | `soc2_control_violations` | gauge | control, category, severity | violations found (the true count, not capped) |
//! | `soc2_control_resources_checked` | gauge | control | objects the last evaluation looked at |
//! | `soc2_control_last_evaluation_timestamp_seconds` | gauge | control | Unix time of the last evaluation |
//! | `soc2_control_ready` | gauge | control | 1 when the spec is valid and was evaluated |
//! | `soc2_criterion_compliant` | gauge | criterion | 1 when every Control mapped to the TSC criterion is compliant |
//! | `soc2_evaluation_duration_seconds` | histogram | | time of one Control's evaluation |
//! | `soc2_evaluations_total` | counter | mode | evaluations, `full` or `incremental` (only the changed namespaces or cluster part) |
//! | `soc2_reconcile_errors_total` | counter | reason | failed reconciliations by cause |
//! | `soc2_watch_events_total` | counter | kind | watch events received |
//! | `soc2_cache_objects` | gauge | kind | objects in the shared cache |
//! | `soc2_status_writes_total` | counter | | status patches sent |
//! | `soc2_leader` | gauge | | 1 while this replica holds the leader Lease |
//! | `soc2_resync_interval_seconds` | gauge | | the configured resync interval |
//! | `soc2_build_info` | gauge | version | always 1 |
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::api::Control;
use crate::engine::{Evaluation, Verdict};

/// The series labels a Control was last exported with, to remove them when the
/// Control is deleted or its category or severity changes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ControlLabels {
    category: String,
    severity: String,
    criteria: Vec<String>,
    /// `Some(compliant)` once evaluated with a valid spec.
    compliant: Option<bool>,
}

/// The operator's metrics, registered in their own [`Registry`].
pub struct Metrics {
    registry: Registry,
    control: ControlSeries,
    criterion_compliant: GaugeVec,
    evaluation_duration: Histogram,
    evaluations: IntCounterVec,
    reconcile_errors: IntCounterVec,
    watch_events: IntCounterVec,
    cache_objects: IntGaugeVec,
    status_writes: IntCounter,
    leader: IntGauge,
    resync_interval: prometheus::Gauge,
    controls: Mutex<BTreeMap<String, ControlLabels>>,
}

/// The per-Control series (label `control`, plus category and severity for
/// the verdict series).
struct ControlSeries {
    compliant: GaugeVec,
    unknown: GaugeVec,
    violations: GaugeVec,
    resources_checked: GaugeVec,
    last_evaluation: GaugeVec,
    ready: GaugeVec,
}

impl ControlSeries {
    fn new(registry: &Registry) -> Self {
        ControlSeries {
            compliant: registered(
                registry,
                gauge_vec(
                    "soc2_control_compliant",
                    "1 when the Control is compliant, 0 when not.",
                    &CONTROL_LABELS,
                ),
            ),
            unknown: registered(
                registry,
                gauge_vec(
                    "soc2_control_unknown",
                    "1 when the Control's verdict is Unknown: the evidence it needs cannot be seen.",
                    &CONTROL_LABELS,
                ),
            ),
            violations: registered(
                registry,
                gauge_vec(
                    "soc2_control_violations",
                    "Violations found by the last evaluation of the Control.",
                    &CONTROL_LABELS,
                ),
            ),
            resources_checked: registered(
                registry,
                gauge_vec(
                    "soc2_control_resources_checked",
                    "Objects the last evaluation of the Control looked at.",
                    &["control"],
                ),
            ),
            last_evaluation: registered(
                registry,
                gauge_vec(
                    "soc2_control_last_evaluation_timestamp_seconds",
                    "Unix time of the last evaluation of the Control.",
                    &["control"],
                ),
            ),
            ready: registered(
                registry,
                gauge_vec(
                    "soc2_control_ready",
                    "1 when the Control's spec is valid and was evaluated.",
                    &["control"],
                ),
            ),
        }
    }
}

impl ControlSeries {
    /// Removes the verdict series (compliant, unknown, violations) of one
    /// Control's label values `l`.
    fn remove_verdict(&self, l: &[&str; 3]) {
        for g in [&self.compliant, &self.unknown, &self.violations] {
            let _ = g.remove_label_values(l);
        }
    }
}

/// Every `reason` of `soc2_reconcile_errors_total`, exported from 0 so that
/// `rate()` and alerts work before the first error.
pub const RECONCILE_ERROR_REASONS: [&str; 6] = [
    "StatusPatch",
    "Event",
    "Timeout",
    "WatchError",
    "InvalidObject",
    "APIServerMetrics",
];

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

const CONTROL_LABELS: [&str; 3] = ["control", "category", "severity"];

/// `collector`, registered in `registry` (names are static and unique).
fn registered<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("unique metric names");
    collector
}

/// `soc2_evaluation_duration_seconds`, buckets from 0.5 ms to 5 s.
fn evaluation_histogram() -> Histogram {
    Histogram::with_opts(
        HistogramOpts::new(
            "soc2_evaluation_duration_seconds",
            "Time to evaluate one Control.",
        )
        .buckets(vec![
            0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
    )
    .expect("valid metric")
}

impl Metrics {
    /// Creates and registers every metric; `soc2_build_info{version}` is set to 1.
    ///
    /// # Panics
    /// Never: names and labels are static and valid.
    pub fn new(version: &str) -> Self {
        let registry = Registry::new();
        let m = Metrics {
            control: ControlSeries::new(&registry),
            criterion_compliant: registered(&registry, gauge_vec(
                "soc2_criterion_compliant",
                "1 when every Control mapped to the SOC 2 criterion is compliant.",
                &["criterion"],
            )),
            evaluation_duration: registered(&registry, evaluation_histogram()),
            evaluations: registered(&registry, counter_vec(
                "soc2_evaluations_total",
                "Control evaluations, by mode: full, or incremental (only the namespaces or the cluster-wide part that changed).",
                &["mode"],
            )),
            reconcile_errors: registered(&registry, counter_vec(
                "soc2_reconcile_errors_total",
                "Failed reconciliations, by reason.",
                &["reason"],
            )),
            watch_events: registered(&registry, counter_vec(
                "soc2_watch_events_total",
                "Watch events received, by kind.",
                &["kind"],
            )),
            cache_objects: registered(&registry, IntGaugeVec::new(
                Opts::new("soc2_cache_objects", "Objects in the shared cache, by kind."),
                &["kind"],
            )
            .expect("valid metric")),
            status_writes: registered(&registry, IntCounter::new(
                "soc2_status_writes_total",
                "Control status patches sent to the API server.",
            )
            .expect("valid metric")),
            leader: registered(&registry, IntGauge::new(
                "soc2_leader",
                "1 while this replica holds the leader Lease and writes status.",
            )
            .expect("valid metric")),
            resync_interval: registered(&registry, prometheus::Gauge::new(
                "soc2_resync_interval_seconds",
                "The configured resync interval: every Control is re-evaluated at least this often.",
            )
            .expect("valid metric")),
            controls: Mutex::new(BTreeMap::new()),
            registry,
        };
        for reason in RECONCILE_ERROR_REASONS {
            m.reconcile_errors.with_label_values(&[reason]);
        }
        let build_info = registered(
            &m.registry,
            IntGaugeVec::new(
                Opts::new("soc2_build_info", "Build information; always 1."),
                &["version"],
            )
            .expect("valid metric"),
        );
        build_info.with_label_values(&[version]).set(1);
        m
    }

    /// One evaluation took `seconds`, `mode` `full` or `incremental`.
    pub fn evaluated(&self, mode: &str, seconds: f64) {
        self.evaluation_duration.observe(seconds);
        self.evaluations.with_label_values(&[mode]).inc();
    }

    /// One failed reconciliation, by `reason` (one of
    /// [`RECONCILE_ERROR_REASONS`]).
    pub fn reconcile_error(&self, reason: &str) {
        self.reconcile_errors.with_label_values(&[reason]).inc();
    }

    /// One watch event of `kind` (the kind's name, e.g. `Deployment`).
    pub fn watch_event(&self, kind: &str) {
        self.watch_events.with_label_values(&[kind]).inc();
    }

    /// The shared cache holds `n` objects of `kind`.
    pub fn set_cached(&self, kind: crate::snapshot::Kind, n: usize) {
        self.cache_objects
            .with_label_values(&[kind.type_meta().1])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One status patch sent.
    pub fn status_written(&self) {
        self.status_writes.inc();
    }

    /// Whether this replica holds the Lease.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The configured resync interval.
    pub fn set_resync_interval(&self, interval: std::time::Duration) {
        self.resync_interval.set(interval.as_secs_f64());
    }

    /// Records an evaluation of `control`.
    pub fn observe(&self, control: &Control, eval: &Evaluation) {
        let name = control.metadata.name.clone().unwrap_or_default();
        let labels = ControlLabels {
            category: format!("{:?}", control.spec.category),
            severity: format!("{:?}", control.spec.severity),
            criteria: control.spec.criteria.clone(),
            compliant: match eval.verdict {
                Verdict::Compliant => Some(true),
                Verdict::NonCompliant | Verdict::Unknown => Some(false),
                Verdict::InvalidSpec => None,
            },
        };
        let unknown = eval.verdict == Verdict::Unknown;
        let mut controls = self.controls.lock().expect("metrics lock");
        if let Some(old) = controls.get(&name)
            && (old.category != labels.category || old.severity != labels.severity)
        {
            self.remove_series(&name, old);
        }
        let l = [name.as_str(), &labels.category, &labels.severity];
        match labels.compliant {
            Some(c) => {
                self.control
                    .compliant
                    .with_label_values(&l)
                    .set(f64::from(u8::from(c)));
                self.control
                    .violations
                    .with_label_values(&l)
                    .set(eval.violation_count as f64);
                self.control
                    .unknown
                    .with_label_values(&l)
                    .set(f64::from(u8::from(unknown)));
            }
            None => self.control.remove_verdict(&l),
        }
        self.control
            .ready
            .with_label_values(&[&name])
            .set(f64::from(u8::from(eval.invalid.is_none())));
        self.control
            .resources_checked
            .with_label_values(&[&name])
            .set(eval.resources_checked as f64);
        self.control
            .last_evaluation
            .with_label_values(&[&name])
            .set(eval.evaluated_at.as_millisecond() as f64 / 1000.0);
        controls.insert(name, labels);
        self.update_criteria(&controls);
    }

    /// A Control that cannot be evaluated (unreadable spec, a kind it reads
    /// cannot be watched): no verdict series, `soc2_control_ready` 0, and it no
    /// longer counts for its criteria.
    pub fn not_ready(&self, name: &str) {
        let mut controls = self.controls.lock().expect("metrics lock");
        if let Some(old) = controls.get_mut(name) {
            let l = [name, old.category.as_str(), old.severity.as_str()];
            self.control.remove_verdict(&l);
            old.compliant = None;
        }
        self.control.ready.with_label_values(&[name]).set(0.0);
        self.update_criteria(&controls);
    }

    /// Removes every series of the Control `name` (it was deleted).
    pub fn forget(&self, name: &str) {
        let mut controls = self.controls.lock().expect("metrics lock");
        if let Some(old) = controls.remove(name) {
            self.remove_series(name, &old);
        }
        self.update_criteria(&controls);
    }

    fn remove_series(&self, name: &str, old: &ControlLabels) {
        let l = [name, old.category.as_str(), old.severity.as_str()];
        self.control.remove_verdict(&l);
        let _ = self.control.resources_checked.remove_label_values(&[name]);
        let _ = self.control.last_evaluation.remove_label_values(&[name]);
        let _ = self.control.ready.remove_label_values(&[name]);
    }

    /// `soc2_criterion_compliant`: 1 when every evaluated Control of the criterion
    /// is compliant; a criterion without evaluated Controls has no series.
    fn update_criteria(&self, controls: &BTreeMap<String, ControlLabels>) {
        let mut by_criterion: BTreeMap<&str, bool> = BTreeMap::new();
        for c in controls.values() {
            let Some(compliant) = c.compliant else {
                continue;
            };
            for cr in &c.criteria {
                let e = by_criterion.entry(cr.as_str()).or_insert(true);
                *e &= compliant;
            }
        }
        let current: BTreeSet<String> = self
            .criterion_compliant
            .collect()
            .iter()
            .flat_map(|mf| mf.get_metric().iter())
            .filter_map(|m| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == "criterion")
                    .map(|l| l.value().to_owned())
            })
            .collect();
        for stale in current
            .iter()
            .filter(|c| !by_criterion.contains_key(c.as_str()))
        {
            let _ = self.criterion_compliant.remove_label_values(&[stale]);
        }
        for (criterion, compliant) in by_criterion {
            self.criterion_compliant
                .with_label_values(&[criterion])
                .set(f64::from(u8::from(compliant)));
        }
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}
