//! Image provenance — TSC CC8.1 (changes are authorized, tested and approved
//! before implementation): what runs comes from the approved pipeline.
//!
//! Rule: every container (init containers included) of the Deployments,
//! StatefulSets and DaemonSets in scope uses an image whose reference starts with one of
//! `allowedRegistries` and, with `requireDigest`, is pinned by digest
//! (`…@sha256:<64 hex>`), so that a tag cannot be moved under a running service.
use super::workloads::{self, Workload};
use crate::api::ImageProvenanceCheck;
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{Context, Family, InvalidSpec, Locality, Outcome, list_some, member};

/// The `imageProvenance` check family.
pub struct ImageProvenance;

impl Family for ImageProvenance {
    member!(image_provenance: ImageProvenanceCheck = "imageProvenance");

    fn evidence(_spec: &ImageProvenanceCheck) -> &'static str {
        "Container images of Deployments, StatefulSets and DaemonSets"
    }

    /// Kinds read: Deployment, StatefulSet, DaemonSet.
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
            .filter(|(_, i)| {
                !spec
                    .allowed_registries
                    .iter()
                    .any(|r| i.starts_with(r.as_str()))
            })
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

/// Evaluates the images of every Deployment, StatefulSet and DaemonSet in scope.
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
    cx.each_namespace(&mut out, |ns, out| {
        for w in workloads::in_namespace(cx, ns) {
            check(spec, w, out);
        }
    });
    Ok(out)
}
