//! Typed views of the third-party resources the checks read: Velero
//! (`velero.io/v1`), CSI VolumeSnapshots (`snapshot.storage.k8s.io/v1`) and the
//! Gateway API (`gateway.networking.k8s.io/v1`).
//!
//! Only the fields the checks need are modelled; every field is optional and
//! unknown fields are ignored, so an unusual object never fails to load.
//! Timestamps are kept as strings and parsed by the checks, which report an
//! unparsable value instead of dropping the object.
pub mod encryption_config;
pub mod gateway;
pub mod velero;
pub mod volume_snapshot;
