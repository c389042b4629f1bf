//! Events about Controls: one per compliance transition (`events.k8s.io/v1`,
//! in the events namespace, because Controls are cluster-scoped), naming the
//! first violations. Deciding an Event ([`transition_event`]) and building the
//! object ([`event_object`]) are pure; publishing is the cluster's
//! ([`super::cluster::Cluster::create_event`]).
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Resource;

use super::FIELD_MANAGER;
use crate::api::conditions::{self, COMPLIANT, READY};
use crate::api::{Control, ControlStatus};
use crate::vocabulary::truncate;

/// An Event to publish about a Control (one per compliance transition).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEvent {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// `Compliant`, `NonCompliant`, `Unknown` or `InvalidSpec`.
    pub reason: &'static str,
    /// The condition message (first violations).
    pub note: String,
    /// The Control.
    pub regarding: ObjectReference,
}

/// The Event for a change of the `Compliant` (or `Ready`) condition's status
/// from `previous` to `status`; `None` when neither changed.
pub fn transition_event(
    control: &Control,
    previous: Option<&ControlStatus>,
    status: &ControlStatus,
) -> Option<PendingEvent> {
    let cond = |s: Option<&ControlStatus>, t: &str| {
        s.and_then(|s| conditions::find(&s.conditions, t))
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    let (was, now) = (cond(previous, COMPLIANT), cond(Some(status), COMPLIANT));
    let (was_ready, now_ready) = (cond(previous, READY), cond(Some(status), READY));
    let status_of = |c: &Option<(String, String)>| c.as_ref().map(|(s, _)| s.clone());
    let (type_, reason, note) = match &now_ready {
        Some((s, m)) if s == "False" && status_of(&was_ready) != status_of(&now_ready) => {
            ("Warning", "InvalidSpec", m.clone())
        }
        _ if status_of(&was) != status_of(&now) => match &now {
            Some((s, m)) if s == "True" => ("Normal", "Compliant", m.clone()),
            Some((s, m)) if s == "False" => ("Warning", "NonCompliant", m.clone()),
            Some((s, m)) if s == "Unknown" => ("Warning", "Unknown", m.clone()),
            _ => return None,
        },
        _ => return None,
    };
    Some(PendingEvent {
        type_,
        reason,
        note,
        regarding: control.object_ref(&()),
    })
}

/// The `events.k8s.io/v1` Event for `ev` at `now`, in `namespace`, reported
/// by `identity`. One object per transition (an aggregated series would keep
/// the first note); the note is cut to the API's 1 kB.
pub fn event_object(ev: &PendingEvent, now: Timestamp, namespace: &str, identity: &str) -> Event {
    let name = format!(
        "{}.{:x}",
        ev.regarding.name.as_deref().unwrap_or("control"),
        now.as_nanosecond()
    );
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some("Evaluate".into()),
        reason: Some(ev.reason.into()),
        note: Some(truncate(&ev.note, 1000)),
        type_: Some(ev.type_.into()),
        regarding: Some(ev.regarding.clone()),
        reporting_controller: Some(format!("soc2-operator.dev/{FIELD_MANAGER}")),
        reporting_instance: Some(truncate(identity, 128)),
        ..Default::default()
    }
}
