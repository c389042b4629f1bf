//! The work queue: which Controls to evaluate next, and what changed for each
//! ([`Changes`]). Watches enqueue; the reconcile loop takes a batch per pass.
use std::collections::BTreeMap;

use tokio::sync::Notify;

use crate::incremental::Changes;

/// Controls waiting to be evaluated, with what changed for each.
#[derive(Default)]
pub struct Queue {
    dirty: std::sync::Mutex<BTreeMap<String, Changes>>,
    wake: Notify,
}

impl Queue {
    fn dirty(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Changes>> {
        self.dirty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Enqueues Control `name` with `changes` (merged with what is queued).
    pub fn enqueue(&self, name: &str, changes: Changes) {
        self.dirty()
            .entry(name.to_owned())
            .or_default()
            .merge(changes);
        self.wake.notify_one();
    }

    /// Enqueues several Controls at once (one wake-up).
    pub fn enqueue_all(&self, items: impl IntoIterator<Item = (String, Changes)>) {
        let mut dirty = self.dirty();
        for (name, changes) in items {
            dirty.entry(name).or_default().merge(changes);
        }
        drop(dirty);
        self.wake.notify_one();
    }

    /// Takes everything queued (one evaluation pass).
    pub fn take(&self) -> BTreeMap<String, Changes> {
        std::mem::take(&mut *self.dirty())
    }

    /// Drops Control `name` from the queue (it is being evaluated fully now).
    pub fn dequeue(&self, name: &str) {
        self.dirty().remove(name);
    }

    /// What is queued for `name`, if anything.
    #[cfg(test)]
    pub(crate) fn queued(&self, name: &str) -> Option<Changes> {
        self.dirty().get(name).cloned()
    }

    /// Resolves at the next enqueue (or at once if one happened since the
    /// last wait).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}
