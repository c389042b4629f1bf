//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager).
//!
//! Two replicas are safe: only the holder writes status and Events. The holder
//! renews the Lease before it expires; a crashed holder is replaced after at
//! most the lease duration. If the Lease task fails (the API server refuses or
//! is unreachable), the operator stops: nothing may write without a Lease.
use std::sync::Arc;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Config;
use crate::metrics::Metrics;

/// The running Lease task.
pub struct LeaderTask {
    handle: Option<JoinHandle<Result<(), String>>>,
    /// Without leader election: the sender of the constant `true`.
    _constant: Option<watch::Sender<bool>>,
}

impl LeaderTask {
    /// Resolves when the Lease task ends; never without leader election.
    ///
    /// # Errors
    /// The Lease error that ended it.
    pub async fn wait(&mut self) -> Result<(), String> {
        match self.handle.as_mut() {
            None => std::future::pending().await,
            Some(h) => {
                let r = h.await.map_err(|e| e.to_string()).and_then(|r| r);
                self.handle = None;
                r
            }
        }
    }

    /// Waits (at most 5 s) for the task to release the Lease after shutdown.
    pub async fn release(self) {
        if let Some(h) = self.handle
            && tokio::time::timeout(std::time::Duration::from_secs(5), h)
                .await
                .is_err()
        {
            warn!("the Lease was not released within 5 s");
        }
    }
}

/// Starts leader election (or, when disabled, a constant "leader"). The
/// receiver is true while this replica holds the Lease.
///
/// # Errors
/// The Lease cannot be created or read.
pub async fn start(
    kube_config: &kube::Config,
    config: &Config,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(watch::Receiver<bool>, LeaderTask), LeaseManagerError> {
    if !config.leader_election {
        let (tx, rx) = watch::channel(true);
        metrics.set_leader(true);
        return Ok((
            rx,
            LeaderTask {
                handle: None,
                _constant: Some(tx),
            },
        ));
    }
    let secs = config.lease_duration.as_secs().max(2);
    // A renewal that hangs must fail before the Lease can expire, so that this
    // replica stops writing before another one may take over: the Lease gets
    // its own client whose requests time out within a third of the duration.
    let mut lease_config = kube_config.clone();
    let deadline = std::time::Duration::from_secs((secs / 3).max(1));
    lease_config.connect_timeout = Some(deadline);
    lease_config.read_timeout = Some(deadline);
    lease_config.write_timeout = Some(deadline);
    let client = Client::try_from(lease_config).map_err(LeaseManagerError::from)?;
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.identity)
        .with_duration(secs)
        .with_grace((secs / 3).max(1))
        .build()
        .await?;
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(async move {
        loop {
            tokio::select! {
                r = manager.changed() => match r {
                    Ok(is_leader) => {
                        tx.send_replace(is_leader);
                    }
                    Err(e) => {
                        tx.send_replace(false);
                        return Err(e.to_string());
                    }
                },
                _ = shutdown.cancelled() => {
                    // Stop writing first, then hand the Lease over.
                    tx.send_replace(false);
                    if let Err(e) = manager.release().await {
                        warn!(error = %e, "could not release the Lease");
                    }
                    return Ok(());
                }
            }
        }
    });
    Ok((
        rx,
        LeaderTask {
            handle: Some(handle),
            _constant: None,
        },
    ))
}
