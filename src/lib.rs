//! soc2-operator: SOC 2 controls as code for Kubernetes.
//!
//! Data flows one way: watch caches → [`snapshot::Snapshot`] →
//! [`engine::evaluate`] (pure, no I/O) → status, Events and metrics. The same
//! engine serves the operator, the one-shot `check` command and offline
//! manifest checks. The operator keeps each Control's last result and
//! re-evaluates only what a change can reach ([`incremental`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod controller;
pub mod engine;
pub mod http;
pub mod incremental;
pub mod metrics;
pub mod resources;
pub mod snapshot;
pub mod vocabulary;

/// The crate version, as reported by `soc2-operator version` and `soc2_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
