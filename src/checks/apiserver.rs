//! The kube-apiserver mirror pods in `kube-system` and their flags: evidence
//! for the encryption and audit-logging checks (a helper of those families,
//! not a family itself).
use k8s_openapi::api::core::v1::Pod;

use crate::snapshot::name_of;
use crate::vocabulary::Context;

/// The kube-apiserver pods in `kube-system` (static/mirror pods labelled
/// `component=kube-apiserver`, or named `kube-apiserver-…`).
pub fn pods<'a>(cx: &'a Context) -> impl Iterator<Item = &'a Pod> {
    cx.objects::<Pod>()
        .in_namespace("kube-system")
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("component"))
                .map(String::as_str)
                == Some("kube-apiserver")
                || name_of(*p).starts_with("kube-apiserver-")
        })
}

/// The non-empty value of `flag` in any container's command or args
/// (`--flag=value` or `--flag value`).
pub fn flag_value(pod: &Pod, flag: &str) -> Option<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .find_map(|c| {
            let argv: Vec<&String> = c
                .command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten())
                .collect();
            argv.iter().enumerate().find_map(|(i, a)| {
                let rest = a.strip_prefix(flag)?;
                match rest.strip_prefix('=') {
                    Some(v) if !v.is_empty() => Some(v.to_owned()),
                    Some(_) => None,
                    None if rest.is_empty() => argv
                        .get(i + 1)
                        .filter(|v| !v.is_empty() && !v.starts_with('-'))
                        .map(|v| (*v).clone()),
                    None => None,
                }
            })
        })
}
