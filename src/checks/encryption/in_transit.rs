//! Encryption in transit: Ingress TLS coverage and Gateway API listeners.
use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::Ingress;

use super::{GATEWAY_LISTENERS, INGRESS_TLS};
use crate::api::InTransitCheck;
use crate::resources::gateway::{GRPCRoute, Gateway, HTTPRoute, Listener};
use crate::snapshot::trim::INGRESS_HTTP_ANNOTATIONS;
use crate::snapshot::{Kind, labels_of, name_of, namespace_of};
use crate::vocabulary::{Context, Outcome, list_some, violation};

/// Whether TLS host `tls` covers rule host `host` (exact, or a `*.` wildcard
/// matching exactly one leading label), case-insensitively.
pub fn tls_covers(tls: &str, host: &str) -> bool {
    let (tls, host) = (tls.to_ascii_lowercase(), host.to_ascii_lowercase());
    if tls == host {
        return true;
    }
    match (tls.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((label, rest))) => !label.is_empty() && rest == suffix,
        _ => false,
    }
}

/// Ingresses and, when the Gateway API is installed, Gateway listeners.
pub(super) fn in_transit(spec: &InTransitCheck, cx: &Context, out: &mut Outcome) {
    out.evidence.push(
        INGRESS_TLS
            .evidence("spec.tls of each Ingress in scope, against every host it serves".into()),
    );
    cx.each_namespace(out, |ns, out| {
        for ing in cx.objects::<Ingress>().in_namespace(ns) {
            out.resources_checked += 1;
            check_ingress(ing, out);
        }
    });
    if !cx.is_installed(Kind::Gateway) {
        out.notes.push(
            "Gateway API CRDs (gateway.networking.k8s.io/v1 Gateway) are not installed: Gateways were not checked".into(),
        );
        return;
    }
    out.evidence
        .push(GATEWAY_LISTENERS.evidence("protocols of each Gateway listener in scope".into()));
    // HTTPRoutes and GRPCRoutes indexed once by the Gateway they reference.
    let mut routes: HashMap<(&str, &str), Vec<AttachedRoute>> = HashMap::new();
    if spec.allow_http_redirect {
        let http = cx.objects::<HTTPRoute>().iter();
        let grpc = cx.objects::<GRPCRoute>().iter();
        let all = http
            .map(|r| (Route::Http(r), r.spec.parent_refs.as_slice()))
            .chain(grpc.map(|r| (Route::Grpc(r), r.spec.parent_refs.as_slice())));
        for (r, parents) in all {
            for p in parents {
                if p.kind.as_deref().unwrap_or("Gateway") == "Gateway" {
                    let ns = p.namespace.as_deref().unwrap_or(r.namespace());
                    routes
                        .entry((ns, p.name.as_str()))
                        .or_default()
                        .push((r, p.section_name.as_deref()));
                }
            }
        }
    }
    cx.each_namespace(out, |ns, out| {
        for gw in cx.objects::<Gateway>().in_namespace(ns) {
            out.resources_checked += 1;
            let attached = routes
                .get(&(namespace_of(gw.as_ref()), name_of(gw.as_ref())))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            check_gateway(gw, spec, cx, attached, out);
        }
    });
}

/// An annotation that tells the controller to serve plain HTTP beside TLS:
/// ingress-nginx's `nginx.ingress.kubernetes.io/ssl-redirect: "false"` (it
/// redirects to HTTPS by default once `spec.tls` is set) unless
/// `force-ssl-redirect` is `"true"`, or GCE's `kubernetes.io/ingress.allow-http:
/// "true"`.
fn plain_http_annotation(ing: &Ingress, out: &mut Outcome) {
    let a = |k: &str| {
        ing.metadata
            .annotations
            .as_ref()
            .and_then(|m| m.get(k))
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let [redirect, force, allow] = INGRESS_HTTP_ANNOTATIONS;
    let nginx_plain =
        a(redirect).as_deref() == Some("false") && a(force).as_deref() != Some("true");
    let gce_plain = a(allow).as_deref() == Some("true");
    if nginx_plain || gce_plain {
        let which = if nginx_plain { redirect } else { allow };
        out.violations.push(violation(
            ing,
            "PlainHttpEnabled",
            format!("annotation {which} tells the controller to serve plain HTTP beside TLS"),
        ));
    }
}

/// A route that can attach to an `HTTP` listener.
#[derive(Clone, Copy)]
enum Route<'a> {
    Http(&'a HTTPRoute),
    /// Serves gRPC in cleartext (h2c) on an HTTP listener; it has no
    /// redirect filter.
    Grpc(&'a GRPCRoute),
}

impl<'a> Route<'a> {
    fn namespace(self) -> &'a str {
        match self {
            Route::Http(r) => namespace_of(r),
            Route::Grpc(r) => namespace_of(r),
        }
    }

    /// True when every rule redirects to `https` (never for a GRPCRoute).
    fn only_redirects(self) -> bool {
        match self {
            Route::Http(r) => only_redirects(r),
            Route::Grpc(_) => false,
        }
    }
}

/// A route and the listener (`sectionName`) it names, if any.
type AttachedRoute<'a> = (Route<'a>, Option<&'a str>);

/// Every host an Ingress serves must be covered by `spec.tls` (Ingress API,
/// `networking.k8s.io/v1`): each named rule host by a TLS host (exact, or a
/// `*.` wildcard of one label); a rule without `host`, which "applies to all
/// inbound HTTP traffic through the IP address specified", and a
/// `defaultBackend`, which serves every request no rule matches, only by a
/// TLS entry without `hosts` (the controller's default certificate, which
/// covers every host) — a TLS entry for named hosts leaves them plain HTTP for
/// every other Host header.
fn check_ingress(ing: &Ingress, out: &mut Outcome) {
    let spec = ing.spec.as_ref();
    let tls = spec.and_then(|s| s.tls.as_deref()).unwrap_or(&[]);
    let rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or(&[]);
    if tls.is_empty() {
        out.violations.push(violation(
            ing,
            "IngressWithoutTLS",
            "has no spec.tls entry: traffic is served in plain HTTP".into(),
        ));
        return;
    }
    plain_http_annotation(ing, out);
    // A TLS entry without hosts is the controller's default certificate,
    // which covers every host: "Defaults to the wildcard host setting for
    // the loadbalancer controller fulfilling this Ingress" (IngressTLS.hosts).
    let default_tls = tls
        .iter()
        .any(|t| t.hosts.as_ref().is_none_or(Vec::is_empty));
    if default_tls {
        return;
    }
    let tls_hosts: Vec<&str> = tls
        .iter()
        .flat_map(|t| t.hosts.iter().flatten())
        .map(String::as_str)
        .collect();
    let uncovered: BTreeSet<&str> = rules
        .iter()
        .filter_map(|r| r.host.as_deref())
        .filter(|h| !h.is_empty())
        .filter(|h| !tls_hosts.iter().any(|t| tls_covers(t, h)))
        .collect();
    if !uncovered.is_empty() {
        let list: Vec<String> = uncovered.into_iter().map(str::to_owned).collect();
        out.violations.push(violation(
            ing,
            "HostsWithoutTLS",
            format!("host(s) not covered by spec.tls: {}", list_some(&list, 10)),
        ));
    }
    let hostless = rules
        .iter()
        .any(|r| r.host.as_deref().is_none_or(str::is_empty));
    if hostless {
        out.violations.push(violation(
            ing,
            "RuleWithoutHost",
            "a rule without host serves every Host header, but spec.tls covers only named hosts: other hosts are served in plain HTTP".into(),
        ));
    }
    if spec.is_some_and(|s| s.default_backend.is_some()) {
        out.violations.push(violation(
            ing,
            "DefaultBackendWithoutTLS",
            "spec.defaultBackend serves every request no rule matches, for any Host header, but spec.tls covers only named hosts: it is served in plain HTTP".into(),
        ));
    }
}

/// Whether a route in `route_ns` may attach to `listener` of `gw`
/// (`allowedRoutes.namespaces.from`: `Same` by default, `All`, or `Selector`).
fn route_allowed(cx: &Context, gw: &Gateway, listener: &Listener, route_ns: &str) -> bool {
    let from = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match from.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        "Selector" => {
            let Some(sel) = from
                .and_then(|n| n.selector.as_ref())
                .and_then(|s| kube::core::Selector::try_from(s.clone()).ok())
            else {
                return false;
            };
            cx.objects::<Namespace>()
                .get("", route_ns)
                .is_some_and(|ns| kube::core::SelectorExt::matches(&sel, labels_of(ns.as_ref())))
        }
        _ => route_ns == namespace_of(gw),
    }
}

fn check_gateway(
    gw: &Gateway,
    spec: &InTransitCheck,
    cx: &Context,
    routes: &[AttachedRoute],
    out: &mut Outcome,
) {
    for l in &gw.spec.listeners {
        let proto = l.protocol.as_str();
        if proto == "HTTPS" || proto == "TLS" {
            continue;
        }
        if proto != "HTTP" {
            // TCP, UDP or an implementation-specific protocol: the Gateway
            // does not terminate TLS, and whether the application protocol
            // is encrypted (a database with TLS required) cannot be seen.
            out.undetermined.push(violation(
                gw,
                "ListenerProtocolNotHTTP",
                format!(
                    "listener {:?} (port {}) uses protocol {proto}: the Gateway does not terminate TLS, and whether its traffic is encrypted cannot be seen",
                    l.name,
                    l.port.map_or_else(|| "?".to_owned(), |p| p.to_string()),
                ),
            ));
            continue;
        }
        let mut why = String::new();
        if proto == "HTTP" && spec.allow_http_redirect {
            let attached: Vec<Route> = routes
                .iter()
                .filter(|(_, section)| section.is_none_or(|s| s == l.name))
                .filter(|(r, _)| route_allowed(cx, gw, l, r.namespace()))
                .map(|(r, _)| *r)
                .collect();
            if !attached.is_empty() && attached.iter().all(|r| r.only_redirects()) {
                continue;
            }
            why = if attached.is_empty() {
                " (no HTTPRoute attached to it redirects to https)".into()
            } else if attached.iter().any(|r| matches!(r, Route::Grpc(_))) {
                " (an attached GRPCRoute serves gRPC in cleartext, h2c)".into()
            } else {
                " (an attached HTTPRoute does more than redirect to https)".into()
            };
        }
        out.violations.push(violation(
            gw,
            "PlaintextListener",
            format!(
                "listener {:?} (port {}) uses protocol {proto}, not HTTPS or TLS{why}",
                l.name,
                l.port.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            ),
        ));
    }
}

/// True when every rule of the route redirects to `https`.
fn only_redirects(r: &HTTPRoute) -> bool {
    !r.spec.rules.is_empty()
        && r.spec.rules.iter().all(|rule| {
            rule.filters.iter().any(|f| {
                f.type_ == "RequestRedirect"
                    && f.request_redirect
                        .as_ref()
                        .and_then(|rr| rr.scheme.as_deref())
                        == Some("https")
            })
        })
}
