//! Image provenance — TSC CC8.1 (changes are authorized, tested and approved
//! before implementation): what runs comes from the approved pipeline.
//!
//! Rule: every container (init containers included) of every pod-creating
//! object in scope (see [`super::workloads`]) uses an image whose reference starts with one of
//! `allowedRegistries` and, with `requireDigest`, is pinned by digest
//! (`…@sha256:<64 hex>`), so that a tag cannot be moved under a running service.
use super::workloads::{self, Workload};
use crate::api::{ImageProvenanceCheck, Verification};
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{
    Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, list_some, member,
};

/// The image references in pod templates.
pub static IMAGE_REFERENCES: EvidenceKind = EvidenceKind {
    claim: "Workloads run images from the approved pipeline",
    source: "ContainerImage",
    verification: Verification::Verified,
    proves: "the registry and digest of every container image the pod specs in scope name (workloads, Jobs, CronJobs, bare Pods)",
    does_not_prove: "what a tag points to now (only a digest pins content), or that the image passed review before it reached the registry",
};

/// The `imageProvenance` check family.
pub struct ImageProvenance;

impl Family for ImageProvenance {
    member!(image_provenance: ImageProvenanceCheck = "imageProvenance");

    fn evidence_kinds(_spec: &ImageProvenanceCheck) -> Vec<&'static EvidenceKind> {
        vec![&IMAGE_REFERENCES]
    }

    /// Kinds read: Deployment, StatefulSet, DaemonSet, ReplicaSet,
    /// ReplicationController, CronJob, Job, Pod.
    fn kinds(_spec: &ImageProvenanceCheck) -> KindSet {
        workloads::kinds()
    }

    /// How far a change reaches: a workload (or a Namespace) only its own
    /// namespace's findings.
    fn locality(_spec: &ImageProvenanceCheck, kind: Kind) -> Locality {
        workloads::locality(kind)
    }

    fn evaluate(spec: &ImageProvenanceCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        evaluate(spec, cx)
    }
}

/// The image reference as the container runtime resolves it: one without a
/// registry host (a first component with `.` or `:`, or `localhost`) is on
/// `docker.io`, and a one-word repository is in `library/` — `nginx` is
/// `docker.io/library/nginx` (distribution/reference `ParseNormalizedNamed`).
pub fn normalize_image(image: &str) -> String {
    let host = image
        .split_once('/')
        .map(|(first, _)| first)
        .filter(|f| f.contains('.') || f.contains(':') || *f == "localhost");
    match host {
        Some(_) => image.to_owned(),
        None if image.contains('/') => format!("docker.io/{image}"),
        None => format!("docker.io/library/{image}"),
    }
}

/// Whether `image` comes from `registry`, an allowed prefix such as
/// `registry.example.com/` or `registry.example.com/team`: the image,
/// normalized ([`normalize_image`]) or as written, starts with it at a path
/// boundary, so `registry.example.com` does not allow
/// `registry.example.com.evil.io/x`.
pub fn from_registry(image: &str, registry: &str) -> bool {
    let prefix = registry.trim_end_matches('/');
    if prefix.is_empty() {
        return false;
    }
    // After a repository path, `:` starts a tag; after a bare host it would
    // start another port, that is another registry.
    let tag_ok = prefix.contains('/');
    let within = |i: &str| {
        i.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(['/', '@']) || (tag_ok && rest.starts_with(':'))
        })
    };
    within(image) || within(&normalize_image(image))
}

/// Whether `image` is pinned by a sha256 digest.
pub fn pinned(image: &str) -> bool {
    image
        .rsplit_once("@sha256:")
        .is_some_and(|(_, d)| d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit()))
}

fn check(spec: &ImageProvenanceCheck, w: Workload, out: &mut Outcome) {
    out.resources_checked += 1;
    let images: Vec<(&str, &str)> = w
        .all_containers()
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or("")))
        .collect();
    if !spec.allowed_registries.is_empty() {
        let foreign: Vec<String> = images
            .iter()
            .filter(|(_, i)| !spec.allowed_registries.iter().any(|r| from_registry(i, r)))
            .map(|(c, i)| format!("{c}={i}"))
            .collect();
        if !foreign.is_empty() {
            out.violations.push(w.violation(
                "UnapprovedRegistry",
                format!(
                    "image(s) from outside the allowed registries: {}",
                    list_some(&foreign, 5)
                ),
            ));
        }
    }
    if spec.require_digest {
        let unpinned: Vec<String> = images
            .iter()
            .filter(|(_, i)| !pinned(i))
            .map(|(c, i)| format!("{c}={i}"))
            .collect();
        if !unpinned.is_empty() {
            out.violations.push(w.violation(
                "ImageNotPinned",
                format!("image(s) not pinned by digest: {}", list_some(&unpinned, 5)),
            ));
        }
    }
}

/// Evaluates the images of every pod-creating object in scope.
///
/// # Errors
/// [`InvalidSpec`] when neither `allowedRegistries` nor `requireDigest` is set.
fn evaluate(spec: &ImageProvenanceCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    if spec.allowed_registries.is_empty() && !spec.require_digest {
        return Err(InvalidSpec::new(
            "spec.check.imageProvenance",
            "set allowedRegistries, requireDigest, or both",
        ));
    }
    let mut out = Outcome::default();
    out.evidence.push(IMAGE_REFERENCES.evidence(
        "Container images of the workloads, Jobs, CronJobs and bare Pods of each namespace in scope"
            .into(),
    ));
    cx.each_namespace(&mut out, |ns, out| {
        for w in workloads::in_namespace(cx, ns) {
            check(spec, w, out);
        }
    });
    Ok(out)
}
