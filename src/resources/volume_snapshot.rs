//! CSI `snapshot.storage.k8s.io/v1` VolumeSnapshot (kubernetes-csi/external-snapshotter).
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// `VolumeSnapshot.spec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshot",
    namespaced,
    status = "VolumeSnapshotStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSpec {
    /// What is snapshotted.
    #[serde(default)]
    pub source: VolumeSnapshotSource,
}

/// `VolumeSnapshot.spec.source`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSource {
    /// The PVC (same namespace) to snapshot.
    #[serde(default)]
    pub persistent_volume_claim_name: Option<String>,
}

/// `VolumeSnapshot.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotStatus {
    /// True when the snapshot can be used to restore a volume.
    #[serde(default)]
    pub ready_to_use: Option<bool>,
    /// When the storage system took the snapshot (RFC 3339).
    #[serde(default)]
    pub creation_time: Option<String>,
}
