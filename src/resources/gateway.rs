//! Gateway API `gateway.networking.k8s.io/v1` Gateway, HTTPRoute and
//! GRPCRoute (kubernetes-sigs/gateway-api).
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// `Gateway.spec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "Gateway",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// The listeners (ports and protocols) of the Gateway.
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

/// `Gateway.spec.listeners[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Listener name, referenced by routes' `parentRefs[].sectionName`.
    #[serde(default)]
    pub name: String,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP` or an implementation-specific value.
    #[serde(default)]
    pub protocol: String,
    /// Network port.
    #[serde(default)]
    pub port: Option<i32>,
    /// Which routes may attach.
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `Gateway.spec.listeners[].allowedRoutes`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AllowedRoutes {
    /// Namespaces routes may attach from.
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
}

/// `allowedRoutes.namespaces`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteNamespaces {
    /// `Same` (default), `All` or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    /// With `from: Selector`: the namespaces' labels.
    #[serde(default)]
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}

/// `HTTPRoute.spec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    /// The Gateways (and listeners) the route attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Routing rules.
    #[serde(default)]
    pub rules: Vec<HTTPRouteRule>,
}

/// `GRPCRoute.spec` (only where it attaches: a GRPCRoute on an `HTTP`
/// listener serves gRPC over cleartext HTTP/2, "h2c", and has no redirect
/// filter).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "GRPCRoute",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct GRPCRouteSpec {
    /// The Gateways (and listeners) the route attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
}

/// `HTTPRoute.spec.parentRefs[]` (and GRPCRoute's).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// Parent kind; absent means `Gateway`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Parent name.
    #[serde(default)]
    pub name: String,
    /// Parent namespace; absent means the route's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The listener name; absent attaches to every listener.
    #[serde(default)]
    pub section_name: Option<String>,
}

/// `HTTPRoute.spec.rules[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteRule {
    /// Filters applied to matching requests.
    #[serde(default)]
    pub filters: Vec<HTTPRouteFilter>,
}

/// `HTTPRoute.spec.rules[].filters[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteFilter {
    /// Filter type, for example `RequestRedirect`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// Set for `RequestRedirect` filters.
    #[serde(default)]
    pub request_redirect: Option<RequestRedirect>,
}

/// `HTTPRoute` `RequestRedirect` filter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRedirect {
    /// The scheme redirected to (`https`).
    #[serde(default)]
    pub scheme: Option<String>,
}
