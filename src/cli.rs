//! Command-line interface: `run` (the default), `crd`, `version`. Every `run`
//! flag has an environment fallback (shown in `--help`).
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::controller::Config;

/// SOC 2 controls as code for Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "soc2-operator", version = crate::VERSION, about)]
pub struct Cli {
    /// What to do; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log format.
    #[arg(long, global = true, env = "SOC2_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Log output format.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator (the default).
    Run(Box<RunArgs>),
    /// Evaluate Controls once, against manifests or the live cluster (exit 0:
    /// compliant, 1: a violation at or above --fail-on, 2: bad input).
    Check(CheckArgs),
    /// Render the evidence report from the Controls in the cluster.
    Report(ReportArgs),
    /// Print the Control CustomResourceDefinition as YAML.
    Crd,
    /// Print the catalog as a Markdown table (docs/controls.md).
    Docs,
    /// Print the version.
    Version,
}

/// Flags of `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Control manifests: a file, a directory, or `-`; default the built-in catalog.
    #[arg(long)]
    pub controls: Option<String>,
    /// Manifests to check offline (file, directory, or `-`: YAML or JSON,
    /// multi-document, List kinds, `helm template` output); default the live
    /// cluster (kubeconfig or in-cluster).
    #[arg(long)]
    pub manifests: Option<String>,
    /// Namespace of namespaced manifests that name none (as `kubectl apply -n`).
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::commands::check::Output::Table)]
    pub output: crate::commands::check::Output,
    /// Exit 1 when a Control of at least this severity is not compliant.
    #[arg(long, value_enum, default_value_t = FailOn::Low)]
    pub fail_on: FailOn,
    /// Let a Control whose verdict is Unknown (the evidence it needs cannot
    /// be seen, e.g. offline) pass the gate; by default Unknown fails like
    /// NonCompliant.
    #[arg(long)]
    pub allow_unknown: bool,
}

impl CheckArgs {
    /// The CI gate these flags describe.
    pub fn gate(&self) -> crate::commands::check::Gate {
        crate::commands::check::Gate {
            fail_on: self.fail_on.into(),
            allow_unknown: self.allow_unknown,
        }
    }
}

/// Flags of `report`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::commands::report::Format::Markdown)]
    pub format: crate::commands::report::Format,
    /// Prometheus base URL that scrapes the operator (adds compliance over the period).
    #[arg(long)]
    pub prometheus: Option<String>,
    /// The period for --prometheus, as a Prometheus duration.
    #[arg(long, default_value = "90d")]
    pub period: String,
}

/// `--fail-on` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// Any non-compliant Control.
    Low,
    /// Medium and above.
    Medium,
    /// High and above.
    High,
    /// Critical only.
    Critical,
}

impl From<FailOn> for crate::api::Severity {
    fn from(f: FailOn) -> Self {
        match f {
            FailOn::Low => crate::api::Severity::Low,
            FailOn::Medium => crate::api::Severity::Medium,
            FailOn::High => crate::api::Severity::High,
            FailOn::Critical => crate::api::Severity::Critical,
        }
    }
}

/// Flags of `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "SOC2_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Re-evaluate every Control at least this often (Go duration), for
    /// time-based checks such as backup freshness.
    #[arg(long, env = "SOC2_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// Shortest time between two evaluation passes (Go duration): an isolated
    /// change is evaluated at once, a burst of changes in one pass per interval.
    #[arg(long, env = "SOC2_DEBOUNCE", default_value = "100ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Elect a leader on a Lease; only the leader writes status and Events.
    #[arg(long, env = "SOC2_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "SOC2_LEASE_NAME", default_value = "soc2-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (in a pod: its own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Lease duration (Go duration): a crashed leader is replaced within it.
    #[arg(long, env = "SOC2_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// This replica's identity in the Lease (in a pod: its name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Manage only Controls matching this label selector (e.g. `shard=a`).
    #[arg(long, env = "SOC2_CONTROL_SELECTOR")]
    pub control_selector: Option<String>,
    /// Read the API server's /metrics as evidence of Secret encryption (needs
    /// `get` on the nonResourceURL /metrics).
    #[arg(long, env = "SOC2_READ_APISERVER_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub read_apiserver_metrics: bool,
    /// Namespace of the Events about Controls (Controls are cluster-scoped).
    #[arg(long, env = "SOC2_EVENTS_NAMESPACE", default_value = "default")]
    pub events_namespace: String,
    /// Stop when the parent process exits (for test harnesses and scripts that
    /// start the operator as a child).
    #[arg(long, env = "SOC2_EXIT_WITH_PARENT", hide = true)]
    pub exit_with_parent: bool,
}

impl Default for RunArgs {
    fn default() -> Self {
        RunArgs::parse_from_env_and(&[])
    }
}

impl RunArgs {
    /// Parses `run` flags from `args` (plus the environment).
    pub fn parse_from_env_and(args: &[&str]) -> Self {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            run: RunArgs,
        }
        let mut argv = vec!["run"];
        argv.extend_from_slice(args);
        Wrap::parse_from(argv).run
    }

    /// The operator configuration.
    pub fn config(&self) -> Config {
        Config {
            metrics_addr: self.metrics_addr,
            resync: self.resync_interval,
            debounce: self.debounce,
            leader_election: self.leader_election,
            lease_name: self.lease_name.clone(),
            lease_namespace: self.lease_namespace.clone(),
            identity: self.identity.clone().unwrap_or_else(default_identity),
            lease_duration: self.lease_duration,
            control_selector: self.control_selector.clone(),
            read_apiserver_metrics: self.read_apiserver_metrics,
            events_namespace: self.events_namespace.clone(),
        }
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "soc2-operator".into());
    format!("{host}-{}", std::process::id())
}

/// Parses a Go duration (`10m`, `1h30m`, `250ms`) into a [`Duration`].
///
/// # Errors
/// A message naming the accepted form.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::vocabulary::parse_duration("duration", s)
        .map_err(|e| e.message)
        .and_then(|d| Duration::try_from(d).map_err(|e| e.to_string()))
}
