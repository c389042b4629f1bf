//! The kube-apiserver mirror pods in `kube-system` and their flags: evidence
//! for the encryption and audit-logging checks (a helper of those families,
//! not a family itself).
use crate::resources::compact::{Container, Pod};

use crate::snapshot::labels_of;
use crate::vocabulary::Context;

pub use crate::snapshot::trim::MIRROR_ANNOTATION;

/// The container of a kube-apiserver pod that runs the API server: named
/// `kube-apiserver`, or running the `kube-apiserver` binary (its command,
/// or its image's entrypoint when only `args` are given).
fn apiserver_container(c: &Container) -> bool {
    let runs = |s: &str| s.rsplit('/').next() == Some("kube-apiserver");
    c.name == "kube-apiserver"
        || c.command
            .as_ref()
            .and_then(|cmd| cmd.first())
            .is_some_and(|c| runs(c))
        || (c.command.as_ref().is_none_or(Vec::is_empty)
            && c.image
                .as_deref()
                .is_some_and(|i| i.contains("kube-apiserver")))
}

/// The kube-apiserver pods in `kube-system`: static (mirror) pods, or pods
/// labelled `component=kube-apiserver` as kubeadm labels them, that run a
/// kube-apiserver container. A pod merely named `kube-apiserver-…` does not
/// count.
pub fn pods<'a>(cx: &'a Context) -> impl Iterator<Item = &'a Pod> {
    cx.objects::<Pod>()
        .in_namespace("kube-system")
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            let mirror = p
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
            let labelled =
                labels_of(*p).get("component").map(String::as_str) == Some("kube-apiserver");
            (mirror || labelled)
                && p.spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .any(apiserver_container)
        })
}

/// The value of `flag` on the kube-apiserver container of `pod`
/// (`--flag=value` or `--flag value`); when given several times the last one
/// counts, as Go's flag parsing does, and an empty last value is `None`.
pub fn flag_value(pod: &Pod, flag: &str) -> Option<String> {
    let c = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .find(|c| apiserver_container(c))?;
    let argv: Vec<&String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .collect();
    let mut value: Option<String> = None;
    for (i, a) in argv.iter().enumerate() {
        let Some(rest) = a.strip_prefix(flag) else {
            continue;
        };
        if let Some(v) = rest.strip_prefix('=') {
            value = Some(v.to_owned());
        } else if rest.is_empty() {
            value = Some(
                argv.get(i + 1)
                    .filter(|v| !v.starts_with('-'))
                    .map(|v| (*v).clone())
                    .unwrap_or_default(),
            );
        }
    }
    value.filter(|v| !v.is_empty())
}
