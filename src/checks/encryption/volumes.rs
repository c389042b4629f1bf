//! Encryption at rest of persistent volumes: the StorageClass of each PVC.
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;

use super::{DEFAULT_CLASS_ANNOTATIONS, STORAGE_CLASSES};
use crate::api::StorageClassEncryption;
use crate::snapshot::{BETA_CLASS_ANNOTATION, PROVISIONED_BY_ANNOTATION, name_of};
use crate::vocabulary::{Context, InvalidSpec, Outcome, violation};

fn is_default_class(sc: &StorageClass) -> bool {
    sc.metadata.annotations.as_ref().is_some_and(|a| {
        DEFAULT_CLASS_ANNOTATIONS
            .iter()
            .any(|k| a.get(*k).map(String::as_str) == Some("true"))
    })
}

fn class_encrypts(spec: &StorageClassEncryption, sc: &StorageClass) -> bool {
    let params_ok = !spec.required_parameters.is_empty()
        && spec.required_parameters.iter().all(|(k, v)| {
            sc.parameters
                .as_ref()
                .and_then(|p| p.get(k))
                .is_some_and(|have| have == v)
        });
    params_ok || spec.allowed_provisioners.contains(&sc.provisioner)
}

/// PVCs in scope and the StorageClasses they use.
pub(super) fn storage_classes(
    spec: &StorageClassEncryption,
    cx: &Context,
    out: &mut Outcome,
) -> Result<(), InvalidSpec> {
    if spec.required_parameters.is_empty() && spec.allowed_provisioners.is_empty() {
        return Err(InvalidSpec::new(
            "spec.check.encryption.atRest.storageClasses",
            "set requiredParameters or allowedProvisioners",
        ));
    }
    let classes = cx.objects::<StorageClass>().in_namespace("");
    out.resources_checked += classes.len() as u64;
    // Several defaults: Kubernetes uses the most recently created one, and
    // among equally recent ones the first by name (pkg/volume/util
    // GetDefaultClass).
    let default = classes
        .iter()
        .filter(|c| is_default_class(c))
        .max_by_key(|c| {
            (
                c.metadata.creation_timestamp.clone().map(|t| t.0),
                std::cmp::Reverse(name_of(c.as_ref()).to_owned()),
            )
        });
    let encrypting: Vec<&str> = classes
        .iter()
        .filter(|c| class_encrypts(spec, c))
        .map(|c| name_of(c.as_ref()))
        .collect();
    if !encrypting.is_empty() {
        out.evidence.push(STORAGE_CLASSES.evidence(format!(
            "encrypting StorageClasses: {}",
            encrypting.join(", ")
        )));
    }
    cx.each_namespace(out, |ns, out| {
        for pvc in cx.objects::<PersistentVolumeClaim>().in_namespace(ns) {
            out.resources_checked += 1;
            let finding = static_volume(cx, pvc).or_else(|| check_pvc(spec, classes, default, pvc));
            match finding {
                Some(Finding::Violation(reason, message)) => {
                    out.violations
                        .push(violation(pvc.as_ref(), reason, message));
                }
                Some(Finding::Undetermined(reason, message)) => {
                    out.undetermined
                        .push(violation(pvc.as_ref(), reason, message));
                }
                None => {}
            }
        }
    });
    Ok(())
}

/// A PVC bound to a PersistentVolume that was not dynamically provisioned
/// (no `pv.kubernetes.io/provisioned-by`): an administrator made the volume,
/// and its StorageClass name is only a label for binding ("A PV of a
/// particular class can only be bound to PVCs requesting that class"), so the
/// class does not tell how it is encrypted.
fn static_volume(cx: &Context, pvc: &PersistentVolumeClaim) -> Option<Finding> {
    let name = pvc.spec.as_ref()?.volume_name.as_deref()?;
    let pv = cx.objects::<PersistentVolume>().get("", name)?;
    let dynamic = pv
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(PROVISIONED_BY_ANNOTATION));
    (!dynamic).then(|| {
        Finding::Undetermined(
            "StaticVolume",
            format!(
                "bound to PersistentVolume {name}, which was not dynamically provisioned (no {PROVISIONED_BY_ANNOTATION} annotation): its encryption no StorageClass tells"
            ),
        )
    })
}

/// What is wrong, or cannot be told, about one PVC.
enum Finding {
    /// It is not on an encrypting class.
    Violation(&'static str, String),
    /// Its encryption cannot be seen.
    Undetermined(&'static str, String),
}

/// Whether `pvc` is on an encrypting StorageClass: `None` when it is.
fn check_pvc(
    spec: &StorageClassEncryption,
    classes: &[Arc<StorageClass>],
    default: Option<&Arc<StorageClass>>,
    pvc: &PersistentVolumeClaim,
) -> Option<Finding> {
    // The beta annotation still wins over spec.storageClassName.
    let requested = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
        .map(String::as_str)
        .or_else(|| {
            pvc.spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref())
        });
    let class = match requested {
        Some("") => {
            return Some(Finding::Undetermined(
                "StaticVolume",
                "storageClassName is \"\": it binds to a statically provisioned PersistentVolume, whose encryption no StorageClass tells".into(),
            ));
        }
        Some(name) => classes.iter().find(|c| name_of(c.as_ref()) == name),
        None => default,
    };
    match class {
        None => Some(Finding::Violation(
            "UnknownStorageClass",
            match requested {
                Some(name) => format!("StorageClass {name:?} does not exist"),
                None => "no storageClassName and no default StorageClass".into(),
            },
        )),
        Some(c) if !class_encrypts(spec, c) => Some(Finding::Violation(
            "UnencryptedStorageClass",
            format!(
                "StorageClass {} (provisioner {}) neither has the required parameters nor an allowed provisioner",
                name_of(c.as_ref()),
                c.provisioner
            ),
        )),
        Some(_) => None,
    }
}
