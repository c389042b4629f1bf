//! The status ledger: what this process wrote for each Control, until the
//! Control watch brings it back.
//!
//! A status patch and its watch echo race: the echo can arrive before the
//! patch call returns, and several writes can be in flight. The ledger
//! records a write *before* it is sent ([`Ledger::record`]), puts the previous
//! record back if the patch fails ([`Ledger::undo`]), and classifies every
//! status the watch delivers ([`Ledger::echo`]): our latest write, an earlier
//! one of ours, or someone else's (which the operator repairs). It also keeps
//! the transition Event still to publish, which survives later writes until
//! it is published ([`Ledger::event_published`]).
//!
//! The ledger is reachable only through a guard of the Control table
//! ([`super::controls::Table::ledger`]): the lock order `controls` → `ledger`
//! is the only one the types allow.
use std::collections::BTreeMap;

use super::events::PendingEvent;
use crate::api::ControlStatus;
use crate::engine::same_content;

/// How many earlier writes of one Control are still recognised as ours.
pub const MAX_EARLIER_WRITES: usize = 4;

/// A status this process wrote, and the transition Event still to publish.
#[derive(Clone, Debug, PartialEq)]
struct Written {
    /// The Control's `metadata.uid` (a re-created Control starts afresh).
    uid: Option<String>,
    /// The status sent last.
    status: ControlStatus,
    /// An Event not yet published (its publication failed or is under way).
    pending_event: Option<PendingEvent>,
    /// Statuses written before `status` whose watch echo may still arrive
    /// (at most [`MAX_EARLIER_WRITES`], oldest first).
    earlier: Vec<ControlStatus>,
}

/// What a status delivered by the Control watch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Our latest write coming back.
    Ours,
    /// An earlier write of ours, overtaken by a later one.
    Earlier,
    /// Nobody's we know: someone else wrote it (repair it), or our record
    /// of it is gone.
    Foreign,
}

/// Undoes one [`Ledger::record`] when its patch fails.
#[derive(Debug)]
#[must_use = "a failed patch must be undone"]
pub struct Undo {
    name: String,
    status: ControlStatus,
    prior: Option<Written>,
}

/// The status writes of this process, by Control name.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: BTreeMap<String, Written>,
}

impl Ledger {
    /// The status last written for Control `name` with `uid`, and the Event
    /// still to publish; `None` when nothing of ours is outstanding.
    pub fn last_written(
        &self,
        name: &str,
        uid: Option<&str>,
    ) -> Option<(&ControlStatus, Option<&PendingEvent>)> {
        self.entries
            .get(name)
            .filter(|w| w.uid.as_deref() == uid)
            .map(|w| (&w.status, w.pending_event.as_ref()))
    }

    /// Records that `status` is about to be written for Control `name` with
    /// `uid`, with `event` to publish after it (or the one still pending).
    /// Returns what [`Ledger::undo`] needs if the patch fails.
    pub fn record(
        &mut self,
        name: &str,
        uid: Option<&str>,
        status: &ControlStatus,
        event: Option<PendingEvent>,
    ) -> Undo {
        let (earlier, pending_event) = match self.entries.get(name) {
            Some(w) if w.uid.as_deref() == uid => {
                let mut e = w.earlier.clone();
                e.push(w.status.clone());
                let drop = e.len().saturating_sub(MAX_EARLIER_WRITES);
                e.drain(..drop);
                (e, event.or_else(|| w.pending_event.clone()))
            }
            _ => (Vec::new(), event),
        };
        let prior = self.entries.insert(
            name.to_owned(),
            Written {
                uid: uid.map(str::to_owned),
                status: status.clone(),
                pending_event,
                earlier,
            },
        );
        Undo {
            name: name.to_owned(),
            status: status.clone(),
            prior,
        }
    }

    /// Puts back the record before a failed write, unless a later record
    /// (or a foreign write) replaced it meanwhile.
    pub fn undo(&mut self, undo: Undo) {
        if self
            .entries
            .get(&undo.name)
            .is_some_and(|w| w.status == undo.status)
        {
            match undo.prior {
                Some(p) => self.entries.insert(undo.name, p),
                None => self.entries.remove(&undo.name),
            };
        }
    }

    /// Classifies the status the Control watch delivered for `name` in an
    /// update that did not change the spec, and retires what it settles.
    /// Echoes arrive in write order: an earlier write's echo (checked first,
    /// in case a later write has the same content) retires it and those
    /// before it; our latest write's echo retires the record unless an Event
    /// is still pending; anything else forgets the record, so that the next
    /// evaluation compares with what is really stored.
    pub fn echo(&mut self, name: &str, observed: Option<&ControlStatus>) -> Echo {
        let same = |s: &ControlStatus| observed.is_some_and(|o| same_content(s, o));
        let Some(w) = self.entries.get_mut(name) else {
            return Echo::Foreign;
        };
        if let Some(i) = w.earlier.iter().position(same) {
            w.earlier.drain(..=i);
            return Echo::Earlier;
        }
        if same(&w.status) {
            w.earlier.clear();
            if w.pending_event.is_none() {
                self.entries.remove(name);
            }
            return Echo::Ours;
        }
        self.entries.remove(name);
        Echo::Foreign
    }

    /// The Event `ev` of Control `name` was published: it is no longer pending.
    pub fn event_published(&mut self, name: &str, ev: &PendingEvent) {
        if let Some(w) = self.entries.get_mut(name)
            && w.pending_event.as_ref() == Some(ev)
        {
            w.pending_event = None;
        }
    }

    /// Forgets Control `name` (deleted).
    pub fn forget(&mut self, name: &str) {
        self.entries.remove(name);
    }

    /// Forgets everything (this replica just became leader: what it wrote
    /// before may have been overwritten by another leader).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of Controls with an outstanding record.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no write is outstanding.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Summary;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn status(violations: i64, at: &str) -> ControlStatus {
        ControlStatus {
            observed_generation: Some(1),
            summary: Some(Summary {
                resources_checked: 10,
                violations,
                undetermined: 0,
                last_evaluation_time: Time(at.parse().unwrap()),
            }),
            ..Default::default()
        }
    }

    fn event(reason: &'static str) -> PendingEvent {
        PendingEvent {
            type_: "Warning",
            reason,
            note: String::new(),
            regarding: ObjectReference::default(),
        }
    }

    const UID: Option<&str> = Some("u1");

    /// Two statuses of different content.
    fn two() -> (ControlStatus, ControlStatus) {
        (
            status(1, "2026-01-01T00:00:00Z"),
            status(2, "2026-01-01T00:00:01Z"),
        )
    }

    #[test]
    fn our_echo_retires_the_record() {
        let mut l = Ledger::default();
        let s = status(1, "2026-01-01T00:00:00Z");
        let _ = l.record("c", UID, &s, None);
        assert_eq!(l.last_written("c", UID).map(|(s, _)| s), Some(&s));
        // The echo may carry another evaluation time: same content is ours.
        let echo = status(1, "2026-01-01T00:00:07Z");
        assert_eq!(l.echo("c", Some(&echo)), Echo::Ours);
        assert!(l.is_empty());
    }

    #[test]
    fn a_foreign_status_forgets_the_record() {
        let mut l = Ledger::default();
        let _ = l.record("c", UID, &status(1, "2026-01-01T00:00:00Z"), None);
        assert_eq!(
            l.echo("c", Some(&status(5, "2026-01-01T00:00:00Z"))),
            Echo::Foreign
        );
        assert!(l.last_written("c", UID).is_none());
        // Nothing recorded at all: foreign too.
        assert_eq!(l.echo("other", None), Echo::Foreign);
    }

    #[test]
    fn earlier_echoes_are_ours_and_retired_in_order() {
        let mut l = Ledger::default();
        let (a, b, c) = (
            status(1, "2026-01-01T00:00:00Z"),
            status(2, "2026-01-01T00:00:01Z"),
            status(3, "2026-01-01T00:00:02Z"),
        );
        for s in [&a, &b, &c] {
            let _ = l.record("x", UID, s, None);
            let _ = l.record("y", UID, s, None);
        }
        assert_eq!(l.echo("x", Some(&a)), Echo::Earlier);
        assert_eq!(l.echo("x", Some(&b)), Echo::Earlier);
        assert_eq!(l.echo("x", Some(&c)), Echo::Ours);
        assert!(l.last_written("x", UID).is_none());
        // b's echo retires a with it: a seen afterwards is not ours.
        assert_eq!(l.echo("y", Some(&b)), Echo::Earlier);
        assert_eq!(l.echo("y", Some(&a)), Echo::Foreign);
    }

    #[test]
    fn at_most_four_earlier_writes_are_remembered() {
        let mut l = Ledger::default();
        let all: Vec<ControlStatus> = (0..7).map(|i| status(i, "2026-01-01T00:00:00Z")).collect();
        for s in &all {
            let _ = l.record("x", UID, s, None);
        }
        // Writes 0 and 1 fell out: their echo is foreign.
        assert_eq!(l.echo("x", Some(&all[1])), Echo::Foreign);
        for s in &all[2..6] {
            let _ = l.record("y", UID, s, None);
        }
        let _ = l.record("y", UID, &all[6], None);
        assert_eq!(l.echo("y", Some(&all[2])), Echo::Earlier);
    }

    #[test]
    fn a_pending_event_survives_the_echo_and_later_writes() {
        let mut l = Ledger::default();
        let (a, b) = two();
        let _ = l.record("c", UID, &a, Some(event("NonCompliant")));
        // A later write without an Event of its own keeps the pending one.
        let _ = l.record("c", UID, &b, None);
        assert_eq!(
            l.last_written("c", UID).and_then(|(_, e)| e.cloned()),
            Some(event("NonCompliant"))
        );
        // The echo does not retire a record whose Event is pending.
        assert_eq!(l.echo("c", Some(&b)), Echo::Ours);
        assert!(!l.is_empty());
        // Publishing another Event does not clear this one; publishing it does.
        l.event_published("c", &event("Compliant"));
        assert!(l.last_written("c", UID).unwrap().1.is_some());
        l.event_published("c", &event("NonCompliant"));
        assert!(l.last_written("c", UID).unwrap().1.is_none());
    }

    #[test]
    fn a_failed_write_puts_the_previous_record_back() {
        let mut l = Ledger::default();
        let (a, b) = two();
        let _ = l.record("c", UID, &a, None);
        let undo = l.record("c", UID, &b, Some(event("NonCompliant")));
        l.undo(undo);
        assert_eq!(l.last_written("c", UID), Some((&a, None)));
        // The first write failing too leaves nothing.
        let mut l = Ledger::default();
        let undo = l.record("c", UID, &a, None);
        l.undo(undo);
        assert!(l.is_empty());
    }

    #[test]
    fn an_undo_does_not_clobber_a_newer_record() {
        let mut l = Ledger::default();
        let (a, b) = two();
        let undo = l.record("c", UID, &a, None);
        let _ = l.record("c", UID, &b, None);
        l.undo(undo);
        assert_eq!(l.last_written("c", UID).map(|(s, _)| s), Some(&b));
    }

    #[test]
    fn a_recreated_control_starts_afresh() {
        let mut l = Ledger::default();
        let a = status(1, "2026-01-01T00:00:00Z");
        let _ = l.record("c", UID, &a, Some(event("NonCompliant")));
        assert!(l.last_written("c", Some("u2")).is_none());
        let b = status(2, "2026-01-01T00:00:01Z");
        let _ = l.record("c", Some("u2"), &b, None);
        // Neither the old write nor its Event carries over to the new object.
        assert_eq!(l.last_written("c", Some("u2")), Some((&b, None)));
        assert_eq!(l.echo("c", Some(&a)), Echo::Foreign);
    }
}
