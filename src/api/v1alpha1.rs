//! `soc2-operator.dev/v1alpha1` `Control`: one SOC 2 control, written as code.
//!
//! A platform team applies a cluster-scoped `Control` naming the SOC 2 Trust
//! Services Criteria it implements (AICPA TSC 2017, revised points of focus 2022)
//! and exactly one check; the operator evaluates the check against live cluster
//! state and writes the verdict to `status`.
//!
//! Admission rejects what the schema can see (enums, patterns, CEL rules); what
//! only the engine can see (an unparsable duration, a selector that cannot match)
//! is reported as `Ready=False` with reason `InvalidSpec` naming the field.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Regular expression for a SOC 2 Trust Services Criteria ID (TSC 2017):
/// common criteria CC1.1–CC9.2, Availability A1.1–A1.3, Confidentiality
/// C1.1–C1.2, Processing Integrity PI1.1–PI1.5 and Privacy P1.1–P8.1, exactly as
/// numbered by the AICPA (for example CC6.8 exists, CC6.9 does not).
pub const CRITERION_PATTERN: &str = r"^(CC1\.[1-5]|CC2\.[1-3]|CC3\.[1-4]|CC4\.[1-2]|CC5\.[1-3]|CC6\.[1-8]|CC7\.[1-5]|CC8\.1|CC9\.[1-2]|A1\.[1-3]|C1\.[1-2]|PI1\.[1-5]|P1\.1|P2\.1|P3\.[1-2]|P4\.[1-3]|P5\.[1-2]|P6\.[1-7]|P7\.1|P8\.1)$";

/// Regular expression for a Go/Kubernetes duration string as accepted by
/// `time.ParseDuration` without sign (for example `26h`, `90m`, `1h30m`, `1.5h`).
pub const DURATION_PATTERN: &str = r"^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$";

/// Regular expression for an RFC 3339 date (`2026-01-10`) or date-time
/// (`2026-01-10T09:00:00Z`).
pub const DATE_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$";

/// The specification of a SOC 2 control: what it maps to and the one check that
/// decides whether the cluster complies.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    doc = "A SOC 2 control as code: the Trust Services Criteria it implements and one check evaluated continuously against the cluster.",
    group = "soc2-operator.dev",
    version = "v1alpha1",
    kind = "Control",
    plural = "controls",
    singular = "control",
    shortname = "soc2",
    category = "soc2",
    category = "compliance",
    status = "ControlStatus",
    printcolumn = r#"{"name":"Category","type":"string","jsonPath":".spec.category"}"#,
    printcolumn = r#"{"name":"Criteria","type":"string","jsonPath":".spec.criteria"}"#,
    printcolumn = r#"{"name":"Severity","type":"string","jsonPath":".spec.severity","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","priority":1}"#,
    printcolumn = r#"{"name":"Verdict","type":"string","jsonPath":".status.verdict"}"#,
    printcolumn = r#"{"name":"Compliant","type":"string","jsonPath":".status.conditions[?(@.type==\"Compliant\")].status","priority":1}"#,
    printcolumn = r#"{"name":"Violations","type":"integer","jsonPath":".status.summary.violations"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Compliant\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ControlSpec {
    /// SOC 2 Trust Services Criteria this control implements, by AICPA ID
    /// (for example `CC6.1`, `A1.2`). At least one, at most 20, no duplicates.
    #[schemars(
        length(min = 1, max = 20),
        inner(regex(pattern = CRITERION_PATTERN)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub criteria: Vec<String>,

    /// The Trust Services Category the control belongs to.
    pub category: Category,

    /// A one-line, human-readable name of the control (1–200 characters).
    #[schemars(length(min = 1, max = 200))]
    pub title: String,

    /// The SOC 2 intent of the control in prose, for auditors (at most 4096 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,

    /// How serious a violation is (`Low` < `Medium` < `High` < `Critical`);
    /// exported as the `severity` label of the control's metrics.
    pub severity: Severity,

    /// The weakest evidence this control accepts for each claim it makes:
    /// `Verified` (cluster state that proves the property itself),
    /// `Configured` (a setting that should produce it) or `Attested` (a
    /// person's statement). Evidence below it makes the verdict Unknown
    /// (reason `InsufficientEvidence`), never Compliant. Default: `Verified`
    /// for `Critical` controls, `Configured` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_evidence: Option<Verification>,

    /// `Audit` (default) reports violations. `Enforce` is accepted but not
    /// implemented yet: the `Ready` condition says so; the control is still audited.
    #[serde(default)]
    pub mode: Mode,

    /// Which namespaces the check covers. By default every namespace except
    /// `kube-system`, `kube-public` and `kube-node-lease`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,

    /// The check that decides compliance: exactly one member is set.
    pub check: Check,
}

impl ControlSpec {
    /// The weakest evidence the control accepts: `spec.minimumEvidence`, or
    /// `Verified` for `Critical` controls and `Configured` for the others.
    pub fn required_evidence(&self) -> Verification {
        self.minimum_evidence.unwrap_or(match self.severity {
            Severity::Critical => Verification::Verified,
            _ => Verification::Configured,
        })
    }
}

/// SOC 2 Trust Services Categories (AICPA TSC 2017).
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Category {
    /// Security (the common criteria, CC1–CC9).
    Security,
    /// Availability (A1).
    Availability,
    /// Processing Integrity (PI1).
    ProcessingIntegrity,
    /// Confidentiality (C1).
    Confidentiality,
    /// Privacy (P1–P8).
    Privacy,
}

/// Severity of a violation of the control, from least to most severe.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Severity {
    /// Hygiene; fix when convenient.
    Low,
    /// A weakness that should be fixed within the normal change cycle.
    Medium,
    /// A gap an auditor would report as an exception.
    High,
    /// An exposure that needs immediate action.
    Critical,
}

/// What the operator does about violations.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Report violations in status, Events and metrics.
    #[default]
    Audit,
    /// Reserved: accepted, but not enforced yet (reported in the `Ready` condition).
    Enforce,
}

/// Namespaces the check covers. Cluster-scoped objects (ClusterRoleBindings,
/// StorageClasses) are always considered; namespaced ones only in scope.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Selects namespaces by label; absent selects all. `kube-system`,
    /// `kube-public` and `kube-node-lease` are in scope only when this selector
    /// names them explicitly through the `kubernetes.io/metadata.name` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Namespaces never in scope, by exact name (at most 1000).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 63)))]
    pub excluded_namespaces: Vec<String>,
}

/// The check of a control. Exactly one member is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Check::exactly_one_rule())]
pub struct Check {
    /// CC6.1/CC6.6: every in-scope namespace has a NetworkPolicy with
    /// `podSelector: {}` that denies all ingress (and egress with `egress: true`);
    /// a policy selecting all pods with an empty rule (`ingress: [{}]`) is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicyCheck>,
    /// CC6.1/CC6.7/C1.1: Ingresses and Gateway listeners use TLS (`inTransit`);
    /// PVCs use encrypting StorageClasses and the API server encrypts Secrets
    /// (`atRest`, evidence Verified or Attested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionCheck>,
    /// CC6.1/CC6.2/CC6.3: no subject outside the allow-list is bound to
    /// cluster-admin or to a role with `*` verbs on `*` resources; optional checks
    /// for cluster-wide Secret reads, anonymous bindings, wildcards, escalation verbs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<RbacCheck>,
    /// A1.2/A1.3: every in-scope namespace is covered by an enabled Velero
    /// Schedule whose newest Completed Backup (label `velero.io/schedule-name`)
    /// finished within `maxAge` on an Available BackupStorageLocation.
    /// `Schedule.status.lastBackup` is not evidence of success. Without Velero's
    /// CRDs the control is NonCompliant (`BackupProviderNotInstalled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupCheck>,
    /// A1.1/A1.2: Deployments and StatefulSets in scope have at least
    /// `minReplicas` replicas, a PodDisruptionBudget selecting their pods and a
    /// readiness probe on every container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityCheck>,
    /// CC6.8: workloads run without privileged containers, host namespaces or
    /// (optionally) hostPath volumes and added capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_security: Option<WorkloadSecurityCheck>,
    /// CC7.2: the API server writes an audit log (`--audit-policy-file` with
    /// `--audit-log-path` or `--audit-webhook-config-file`), verified from its
    /// mirror pods or attested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_logging: Option<AuditLoggingCheck>,
    /// CC8.1: workload images come from approved registries and/or are pinned by
    /// digest, so what runs is what was reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_provenance: Option<ImageProvenanceCheck>,
    /// CC6.8: the pods of every pod-creating object meet a level of the
    /// Kubernetes Pod Security Standards (`level`), and/or every namespace has
    /// the API server enforce one (`namespaceEnforcement`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<PodSecurityCheck>,
    /// A1.1: every container of every pod-creating object declares resource
    /// requests (and limits, where asked), or its namespace's LimitRange
    /// supplies them; optionally every namespace has a ResourceQuota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityCheck>,
    /// CC6.1: pods get no ServiceAccount token mounted unless their
    /// ServiceAccount is allowed to call the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_tokens: Option<ServiceAccountTokenCheck>,
}

impl Check {
    /// The members of `check`, by their names in the CRD, in declaration
    /// order. Each is one check family (`checks::FAMILIES` lists them in the
    /// same order; tests in `checks` fail when the two, the schema or a
    /// family's field and name differ). The CEL
    /// rule that exactly one is set, and the engine's message when not, are
    /// built from this list.
    pub const MEMBERS: &'static [&'static str] = &[
        "networkPolicy",
        "encryption",
        "rbac",
        "backup",
        "availability",
        "workloadSecurity",
        "auditLogging",
        "imageProvenance",
        "podSecurity",
        "capacity",
        "serviceAccountTokens",
    ];

    /// The CRD's rule that exactly one member of [`Check::MEMBERS`] is set.
    fn exactly_one_rule() -> kube::core::Rule {
        let has: Vec<String> = Self::MEMBERS
            .iter()
            .map(|m| format!("has(self.{m})"))
            .collect();
        kube::core::Rule::new(format!("[{}].filter(x, x).size() == 1", has.join(", "))).message(
            kube::core::Message::Message(format!(
                "exactly one of {} must be set",
                Self::MEMBERS.join(", ")
            )),
        )
    }
}

/// Workload hardening (Kubernetes Pod Security Standards, "Baseline"):
/// Deployments, StatefulSets and DaemonSets in scope run no `privileged` container and no
/// `hostNetwork`, `hostPID` or `hostIPC`; optionally no `hostPath` volumes and no
/// added capabilities beyond `NET_BIND_SERVICE`. Init containers included.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSecurityCheck {
    /// Also report `hostPath` volumes (default false).
    #[serde(default)]
    pub forbid_host_path: bool,
    /// Also report added capabilities other than `NET_BIND_SERVICE` (default false).
    #[serde(default)]
    pub forbid_added_capabilities: bool,
}

/// ServiceAccount tokens (least privilege, CC6.1): the pods of every
/// pod-creating object in scope get no API credential mounted — the pod
/// spec's `automountServiceAccountToken` is `false`, or it is absent and
/// the pod's ServiceAccount sets it `false` (Kubernetes "Configure Service
/// Accounts for Pods": the pod's setting wins; absent on both means
/// mounted) — unless the pod's ServiceAccount is in
/// `allowedServiceAccounts` (workloads that call the API: operators,
/// controllers).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountTokenCheck {
    /// ServiceAccounts whose pods may mount a token, as `namespace/name`
    /// (at most 100), e.g. `monitoring/prometheus-operator`.
    #[serde(default)]
    #[schemars(
        length(max = 100),
        inner(
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
            length(max = 317)
        )
    )]
    pub allowed_service_accounts: Vec<String>,
}

/// Capacity (TSC A1.1: current processing capacity is managed): every
/// container (and init container) of every pod-creating object in scope
/// declares a request for each of `requests` and a limit for each of
/// `limits`, or the namespace has a LimitRange whose `Container` defaults
/// supply it (Kubernetes "Resource Management for Pods and Containers" and
/// "Limit Ranges": a limit without a request makes the request equal to
/// it; a LimitRange's `default` implies its `defaultRequest`, its `max` its
/// `default`, its `min` its `defaultRequest`); with `requireResourceQuota`
/// every namespace in scope has a ResourceQuota. At least one of the three
/// must ask for something.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.requests) && size(self.requests) > 0) || (has(self.limits) && size(self.limits) > 0) || (has(self.requireResourceQuota) && self.requireResourceQuota)").message("set requests, limits or requireResourceQuota: this check would check nothing"))]
pub struct CapacityCheck {
    /// Resource names every container must request (default `[cpu,
    /// memory]`; at most 16), e.g. `ephemeral-storage` or an extended
    /// resource such as `nvidia.com/gpu`.
    #[serde(default = "default_capacity_requests")]
    #[schemars(length(max = 16), inner(regex(pattern = RESOURCE_NAME_PATTERN), length(min = 1, max = 253)))]
    pub requests: Vec<String>,
    /// Resource names every container must limit (default none; at most
    /// 16), e.g. `memory`.
    #[serde(default)]
    #[schemars(length(max = 16), inner(regex(pattern = RESOURCE_NAME_PATTERN), length(min = 1, max = 253)))]
    pub limits: Vec<String>,
    /// Every namespace in scope must have at least one ResourceQuota
    /// (default false).
    #[serde(default)]
    pub require_resource_quota: bool,
}

impl Default for CapacityCheck {
    fn default() -> Self {
        CapacityCheck {
            requests: default_capacity_requests(),
            limits: Vec::new(),
            require_resource_quota: false,
        }
    }
}

/// A resource name (`cpu`, `ephemeral-storage`, `nvidia.com/gpu`): an
/// optional DNS-subdomain prefix and a qualified name, as the API server's
/// `ResourceList` keys.
const RESOURCE_NAME_PATTERN: &str =
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$";

/// `[cpu, memory]`: what the scheduler places pods by.
fn default_capacity_requests() -> Vec<String> {
    vec!["cpu".to_owned(), "memory".to_owned()]
}

/// The Kubernetes Pod Security Standards (v1.36), field by field as the Pod
/// Security Admission controller judges a pod: `level` judges the pod specs of
/// every pod-creating object in scope; `namespaceEnforcement` requires each
/// namespace in scope to carry `pod-security.kubernetes.io/enforce` with at
/// least that level. At least one must be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityCheck {
    /// The profile pods must meet: `Baseline` (no known privilege
    /// escalation) or `Restricted` (current hardening practice, Baseline
    /// included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<PodSecurityLevel>,
    /// The least level each namespace in scope must enforce through its
    /// `pod-security.kubernetes.io/enforce` label (a preventive control: the
    /// API server refuses pods below it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_enforcement: Option<PodSecurityLevel>,
}

/// A profile of the Pod Security Standards (the Privileged profile restricts
/// nothing and is no check).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodSecurityLevel {
    /// Baseline: no host namespaces, privileged containers, hostPath volumes,
    /// host ports, unsafe sysctls, extra capabilities or custom profiles.
    Baseline,
    /// Restricted: Baseline plus non-root, no privilege escalation, seccomp
    /// set, capabilities dropped, only inline volume kinds.
    Restricted,
}

/// A person's statement that a control holds where the operator cannot see
/// it (for example on a managed control plane): evidence of strength
/// `Attested`, never more. Who and when are required, so that an auditor can
/// sample it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    /// What is attested, e.g. "EKS envelope encryption with KMS key
    /// arn:aws:kms:…" (1–1024 characters).
    #[schemars(length(min = 1, max = 1024))]
    pub statement: String,
    /// Who attests: a name or e-mail address (1–253 characters).
    #[schemars(length(min = 1, max = 253))]
    pub attested_by: String,
    /// When it was attested: an RFC 3339 date (`2026-01-10`) or date-time.
    #[schemars(regex(pattern = DATE_PATTERN))]
    pub attested_at: String,
}

/// Audit logging of the API server (Kubernetes "Auditing"): every
/// kube-apiserver mirror pod in `kube-system` runs with `--audit-policy-file`
/// and a backend (`--audit-log-path` or `--audit-webhook-config-file`).
/// Without such pods, `attestation` (managed control planes) makes it Attested.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditLoggingCheck {
    /// A statement for managed control planes, e.g. "EKS control plane logging
    /// (audit) enabled to CloudWatch", with who and when (evidence `Attested`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

/// Where workload images come from (change management): every container of
/// the Deployments, StatefulSets and DaemonSets in scope uses an image from one of
/// `allowedRegistries` (prefix match on the image reference) and/or, with
/// `requireDigest`, pinned by `@sha256:` digest. At least one must be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.allowedRegistries) > 0 || self.requireDigest").message("set allowedRegistries, requireDigest, or both"))]
pub struct ImageProvenanceCheck {
    /// Image reference prefixes, e.g. `registry.example.com/` (at most 50).
    #[serde(default)]
    #[schemars(length(max = 50), inner(length(min = 1, max = 253)))]
    pub allowed_registries: Vec<String>,
    /// Require images pinned by digest (`image@sha256:…`).
    #[serde(default)]
    pub require_digest: bool,
}

/// Default-deny network policies (Kubernetes NetworkPolicy API,
/// `networking.k8s.io/v1`). A namespace passes when a NetworkPolicy with
/// `podSelector: {}` has `Ingress` in its effective `policyTypes` and no ingress
/// rules; with `egress: true` also one with `Egress` and no egress rules. Omitted
/// `policyTypes` means `Ingress`, plus `Egress` when egress rules exist.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyCheck {
    /// Also require default-deny egress (default false).
    #[serde(default)]
    pub egress: bool,
}

/// Encryption in transit and at rest. At least one of `inTransit`, `atRest`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.inTransit) || has(self.atRest)").message("set inTransit, atRest, or both"))]
pub struct EncryptionCheck {
    /// TLS on Ingresses and Gateway API Gateways in scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_transit: Option<InTransitCheck>,
    /// Encrypted volumes and Secrets encrypted in etcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_rest: Option<AtRestCheck>,
}

/// TLS in transit: every Ingress in scope has `spec.tls` entries covering every
/// host of its rules; when the Gateway API CRDs are installed, every Gateway
/// listener in scope uses protocol `HTTPS` or `TLS`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InTransitCheck {
    /// Accept plain `HTTP` Gateway listeners whose every attached HTTPRoute only
    /// redirects to HTTPS (a `RequestRedirect` filter with `scheme: https`).
    #[serde(default)]
    pub allow_http_redirect: bool,
}

/// Encryption at rest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.storageClasses) || has(self.secrets)").message("set storageClasses, secrets, or both"))]
pub struct AtRestCheck {
    /// Every PVC in scope uses an encrypting StorageClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_classes: Option<StorageClassEncryption>,
    /// The API server encrypts Secrets in etcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretEncryption>,
}

/// What makes a StorageClass encrypting: all `requiredParameters` present with
/// these exact values in `parameters`, or a provisioner on `allowedProvisioners`.
/// A PVC without `storageClassName` uses the default StorageClass (annotation
/// `storageclass.kubernetes.io/is-default-class: "true"`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.requiredParameters) > 0 || size(self.allowedProvisioners) > 0").message("set requiredParameters or allowedProvisioners"))]
pub struct StorageClassEncryption {
    /// StorageClass `parameters` that must all be present with these values,
    /// for example `encrypted: "true"` (AWS EBS CSI). At most 50.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 50))]
    pub required_parameters: BTreeMap<String, String>,
    /// Provisioners that always encrypt (for example `pd.csi.storage.gke.io`). At most 100.
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(min = 1, max = 253)))]
    pub allowed_provisioners: Vec<String>,
}

/// Evidence that the API server encrypts Secrets at rest (Kubernetes "Encrypting
/// Confidential Data at Rest"). Verified evidence, in order: a kube-apiserver
/// mirror pod in `kube-system` with `--encryption-provider-config`; or the API
/// server's `apiserver_storage_transformation_operations_total` with
/// `transformation_type="to_storage"` and a non-empty `transformer_prefix`
/// (`k8s:enc:aescbc:v1:…`). Without either, `attestation` (managed clusters whose
/// provider encrypts etcd) makes the control compliant as Attested.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretEncryption {
    /// A statement for managed control planes, e.g. "EKS envelope encryption
    /// with KMS key arn:aws:kms:…", with who and when (evidence `Attested`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

/// Over-privileged RBAC (Kubernetes "Using RBAC Authorization", "Role Based
/// Access Control Good Practices"). Each option reports one kind of grant to
/// subjects outside the allow-list, with its own reason: `clusterAdmin` (on
/// by default) the admin roles, `riskyGrants` each privilege-escalation risk
/// of the good-practices page. Aggregated ClusterRoles are judged by their
/// aggregated rules; offline, the built-in ClusterRoles of Kubernetes v1.36
/// are known without being in the input.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.clusterAdmin) || self.clusterAdmin || (has(self.riskyGrants) && size(self.riskyGrants) > 0) || (has(self.secretsReadClusterWide) && self.secretsReadClusterWide) || (has(self.escalationVerbs) && self.escalationVerbs) || (has(self.anonymousBindings) && self.anonymousBindings) || (has(self.allAuthenticatedBindings) && self.allAuthenticatedBindings) || (has(self.wildcardRules) && self.wildcardRules)").message("with clusterAdmin false, set at least one other option (riskyGrants, anonymousBindings, allAuthenticatedBindings, wildcardRules, ...): this check would check nothing"))]
pub struct RbacCheck {
    /// Subjects allowed to hold admin roles, in addition to group `system:masters`
    /// and the built-in `system:` components (see `allowSystemSubjects`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub allowed_subjects: Vec<SubjectMatcher>,
    /// Allow the built-in control-plane identities their built-in roles:
    /// users `system:kube-controller-manager`, `system:kube-scheduler`,
    /// `system:kube-proxy`, `system:apiserver`, `system:node:…`, group
    /// `system:nodes`, and ServiceAccounts of `kube-system` (also as
    /// `system:serviceaccount:kube-system:…` or
    /// `system:serviceaccounts:kube-system`), each only where its binding
    /// names a `system:` role of the Kubernetes bootstrap policy (so a
    /// kube-system ServiceAccount bound to `cluster-admin`, Helm 2's Tiller
    /// pattern, is reported). Never `system:anonymous`,
    /// `system:unauthenticated`, `system:authenticated`,
    /// `system:serviceaccounts` or ServiceAccounts of other namespaces.
    /// Default true.
    #[serde(default = "default_true")]
    pub allow_system_subjects: bool,
    /// Report subjects bound to `cluster-admin` or to a role granting `*` verbs
    /// on `*` resources in the `*` or core group (reason `AdminBoundToSubject`).
    /// Default true; set it false in a Control about something else.
    #[serde(default = "default_true")]
    pub cluster_admin: bool,
    /// Privilege-escalation risks to report, each a reason of its own (see
    /// `RiskyGrant`). At most one of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 11))]
    pub risky_grants: Vec<RiskyGrant>,
    /// Report `get`/`list`/`watch` on Secrets granted cluster-wide
    /// (ClusterRoleBinding), reason `SecretsReadClusterWide`: the same as
    /// `SecretsRead` in `riskyGrants`.
    #[serde(default)]
    pub secrets_read_cluster_wide: bool,
    /// Report any binding to `system:anonymous` or `system:unauthenticated`,
    /// reason `AnonymousBinding` (except the bootstrap
    /// `system:public-info-viewer` binding while its role grants only `get` on
    /// the health and version URLs).
    #[serde(default)]
    pub anonymous_bindings: bool,
    /// Report any binding to every authenticated identity (groups
    /// `system:authenticated`, `system:serviceaccounts`), reason
    /// `AllAuthenticatedBinding`, except the bootstrap bindings that do so
    /// while they are as built in (`system:basic-user`, `system:discovery`,
    /// `system:public-info-viewer`, `system:service-account-issuer-discovery`).
    /// On managed clusters "authenticated" can mean any account of the
    /// provider (RBAC Good Practices).
    #[serde(default)]
    pub all_authenticated_bindings: bool,
    /// Report `*` in verbs or resources of roles, except the built-in
    /// `cluster-admin` and roles named `system:…`.
    #[serde(default)]
    pub wildcard_rules: bool,
    /// Report bound roles granting the escalation verbs `bind`/`escalate` on
    /// roles or clusterroles, or `impersonate` on users, groups,
    /// serviceaccounts, uids or userextras — by name or through `*` — in one
    /// reason, `EscalationVerbs` (`Bind`, `Escalate` and `Impersonate` in
    /// `riskyGrants` report them one by one).
    #[serde(default)]
    pub escalation_verbs: bool,
}

/// A privilege-escalation risk of the Kubernetes "Role Based Access Control
/// Good Practices" page, reported when a subject outside the allow-list is
/// granted it (by name or through `*` verbs, resources or API groups).
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum RiskyGrant {
    /// `get`, `list` or `watch` on all Secrets, cluster-wide: every credential
    /// of the cluster (reason `SecretsReadClusterWide`).
    SecretsRead,
    /// Creating or changing (`create`, `update`, `patch`) pods or
    /// pod-managing workloads (Deployments, StatefulSets, DaemonSets,
    /// ReplicaSets, ReplicationControllers, Jobs, CronJobs), `pods/exec`,
    /// `pods/attach` or ephemeral containers, cluster-wide: mount any Secret or
    /// ServiceAccount, or run a privileged pod; a pod template or a pod's image
    /// changed in place runs new code as surely as a new pod (reason
    /// `WorkloadCreationClusterWide`).
    WorkloadCreation,
    /// Creating PersistentVolumes: a hostPath volume reaches the node's
    /// filesystem (reason `PersistentVolumeCreation`).
    PersistentVolumeCreation,
    /// Any access to `nodes/proxy`: the kubelet API, exec into every pod of the
    /// node, around audit and admission (reason `NodeProxyAccess`).
    NodeProxy,
    /// `escalate` on Roles or ClusterRoles: write a role with more than one
    /// holds (reason `EscalateVerb`).
    Escalate,
    /// `bind` on Roles or ClusterRoles: bind any role, cluster-admin included;
    /// also `bind` narrowed by `resourceNames` to a ClusterRole that is
    /// admin-equivalent or holds one of these risks, when held through a
    /// ClusterRoleBinding (that role in every namespace). Narrowed to named
    /// roles through a RoleBinding it is the delegation pattern of the Good
    /// Practices page and is not reported (reason `BindVerb`).
    Bind,
    /// `impersonate` on users, groups, ServiceAccounts, uids or userextras: act
    /// as anyone (reason `ImpersonateVerb`).
    Impersonate,
    /// Creating CertificateSigningRequests together with approving them
    /// (`certificatesigningrequests/approval` and `approve` on `signers`): a
    /// client certificate for any identity (reason `CertificateSigning`).
    CertificateSigning,
    /// Creating `serviceaccounts/token` cluster-wide: a token of any
    /// ServiceAccount (reason `TokenRequestClusterWide`).
    TokenRequest,
    /// Creating, changing or deleting admission webhooks or
    /// ValidatingAdmissionPolicies and their bindings: read or change every
    /// object admitted, or remove the guards (reason `AdmissionControl`).
    AdmissionWebhooks,
    /// Changing Namespaces (`update`, `patch`): their labels decide Pod
    /// Security Admission and NetworkPolicy selection; through a RoleBinding,
    /// the binding's own namespace (reason `NamespaceModification`).
    NamespaceModification,
}

/// An RBAC subject pattern (`rbac.authorization.k8s.io/v1` Subject).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind != 'ServiceAccount' || has(self.__namespace__)").message("a ServiceAccount entry needs its namespace: without it, anyone who can create a ServiceAccount of that name in any namespace would be allowed"))]
#[x_kube(validation = Rule::new("self.kind == 'ServiceAccount' || !has(self.__namespace__)").message("namespace applies to ServiceAccount entries only"))]
pub struct SubjectMatcher {
    /// Subject kind.
    pub kind: SubjectKind,
    /// Exact name, or a prefix followed by `*` (for example `ci-*`).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// For ServiceAccounts, and required for them: the namespace (exact). An
    /// entry for `system:serviceaccount:<ns>:<name>` as a User, or for a
    /// ServiceAccount subject without namespace in a RoleBinding (the
    /// binding's namespace), matches the same ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// RBAC subject kinds.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    /// A user name as authenticated.
    User,
    /// A group name.
    Group,
    /// A namespaced ServiceAccount.
    ServiceAccount,
}

/// Velero backups (`velero.io/v1`). Every in-scope namespace is covered by a
/// Schedule that is enabled (phase `Enabled`, not paused) and includes it (listed
/// or `*`, not excluded); the newest Backup of that schedule (label
/// `velero.io/schedule-name`) with phase `Completed` has a `completionTimestamp`
/// within `maxAge`; the BackupStorageLocation it writes to is `Available`.
/// `Schedule.status.lastBackup` is set when a backup starts, not when it
/// succeeds, so it is never taken as evidence.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupCheck {
    /// Maximum age of the newest Completed backup, as a Go duration (`26h`).
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub max_age: String,
    /// A1.3: require a Restore with phase `Completed` finished within this Go
    /// duration (for example `720h`), proving that restores are tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub restore_tested_within: Option<String>,
    /// Also require, for every PVC in scope, a `snapshot.storage.k8s.io/v1`
    /// VolumeSnapshot with `status.readyToUse: true` created within `maxAge`.
    #[serde(default)]
    pub volume_snapshots: bool,
}

/// Availability of workloads (A1.1 capacity, A1.2 recovery). Deployments and
/// StatefulSets in scope have at least `minReplicas` replicas, a
/// PodDisruptionBudget selecting their pods, and a readiness probe on every
/// container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityCheck {
    /// Minimum `spec.replicas` (1–1000, default 2; an omitted `replicas` is 1).
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Require a PodDisruptionBudget selecting the workload's pods (default true).
    #[serde(default = "default_true")]
    pub require_pod_disruption_budget: bool,
    /// Require a readiness probe on every container (default true; init
    /// containers are exempt).
    #[serde(default = "default_true")]
    pub require_readiness_probes: bool,
}

fn default_true() -> bool {
    true
}

fn default_min_replicas() -> i32 {
    2
}

/// The observed state of a Control, written by the operator with server-side
/// apply (field manager `soc2-operator`). Small by design: counts, at most
/// 100 violations, and evidence.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ControlStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The verdict in one word, for `kubectl get controls`: `Compliant`,
    /// `NonCompliant`, `Unknown` (the evidence the check needs cannot be seen),
    /// `InvalidSpec`, or `NotEvaluated` (the inputs cannot be watched). The
    /// `Compliant` condition carries the same with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<StatusVerdict>,
    /// `Ready`: the spec is valid and was evaluated. `Compliant`: the cluster
    /// satisfies the check (`Unknown` when it cannot be told). Standard
    /// `metav1.Condition`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Counts of the last evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The first violations, sorted by namespace, kind, name and reason; at
    /// most 100. `summary.violations` has the true count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// True when `violations` was cut to 100 entries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub violations_truncated: bool,
    /// Objects (or requirements, kind `Control`) whose compliance could not be
    /// determined, with the reason; at most 100. `summary.undetermined` has
    /// the true count. Any of them makes the verdict Unknown unless there are
    /// violations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undetermined: Vec<Violation>,
    /// True when `undetermined` was cut to 100 entries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undetermined_truncated: bool,
    /// What the verdict rests on, where the check has evidence (for example which
    /// source proved Secret encryption, or the newest successful backup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// A Control's verdict as shown in `status.verdict`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusVerdict {
    /// Every claim holds, on evidence at least as strong as required.
    Compliant,
    /// At least one violation, or a required provider is missing.
    NonCompliant,
    /// No violation was seen, but the evidence the check needs cannot be seen
    /// or is weaker than `spec.minimumEvidence`.
    Unknown,
    /// The spec cannot be evaluated (`Ready=False`, reason `InvalidSpec`).
    InvalidSpec,
    /// The inputs cannot be watched (`Ready=False`, reason `WatchFailed`).
    NotEvaluated,
}

/// Most violations kept in `status.violations`; keeps the object far from etcd's
/// 1.5 MiB limit.
pub const MAX_STATUS_VIOLATIONS: usize = 100;

/// Counts of one evaluation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Objects (and namespaces) the check looked at.
    pub resources_checked: i64,
    /// All violations found, including those cut from `status.violations`.
    pub violations: i64,
    /// All undetermined findings, including those cut from
    /// `status.undetermined`.
    #[serde(default)]
    pub undetermined: i64,
    /// When the evaluation ran (RFC 3339).
    pub last_evaluation_time: Time,
}

/// One object that violates the control.
#[derive(
    KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// The object's namespace; absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's kind (for example `Namespace`, `ClusterRoleBinding`).
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The object's apiVersion (for example `rbac.authorization.k8s.io/v1`).
    pub api_version: String,
    /// Why it violates, in CamelCase (for example `MissingDefaultDenyIngress`).
    pub reason: String,
    /// A human-readable explanation.
    pub message: String,
}

/// A piece of evidence behind a verdict: which claim of the control it
/// supports, where it came from and how strong it is.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The claim it supports, e.g. "Secrets are encrypted at rest". A control
    /// is Compliant only when every claim it makes has evidence at least as
    /// strong as `spec.minimumEvidence`.
    #[serde(default)]
    pub claim: String,
    /// Where it came from, in CamelCase (for example `EncryptionProviderConfigFlag`,
    /// `APIServerMetrics`, `Attestation`, `VeleroBackup`).
    pub source: String,
    /// How strong it is: `Verified`, `Configured` or `Attested`.
    pub verification: Verification,
    /// What the evidence says.
    pub message: String,
    /// For `Attested` evidence: who attested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attested_by: Option<String>,
    /// For `Attested` evidence: when (RFC 3339 date or date-time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attested_at: Option<String>,
}

/// How strong a piece of evidence is, strongest first.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Verification {
    /// Cluster state, read by the operator, that proves the property itself
    /// (for example the API server's own count of Secrets written through an
    /// encrypting provider).
    Verified,
    /// A setting, read by the operator, that should produce the property but
    /// does not prove it (a flag, a StorageClass parameter, an
    /// EncryptionConfiguration, a NetworkPolicy a network plugin enforces).
    Configured,
    /// A person's statement in the Control spec, with who and when; not
    /// verified.
    Attested,
}

impl Verification {
    /// Whether this evidence is at least as strong as `minimum`.
    pub fn satisfies(self, minimum: Verification) -> bool {
        self.rank() >= minimum.rank()
    }

    /// 2 for `Verified`, 1 for `Configured`, 0 for `Attested`.
    pub fn rank(self) -> u8 {
        match self {
            Verification::Verified => 2,
            Verification::Configured => 1,
            Verification::Attested => 0,
        }
    }
}
