//! Typed views of what the checks read beyond k8s-openapi's types: compact
//! views of the kinds that carry a pod spec ([`compact`]), and the
//! third-party resources: Velero
//! (`velero.io/v1`), CSI VolumeSnapshots (`snapshot.storage.k8s.io/v1`) and the
//! Gateway API (`gateway.networking.k8s.io/v1`).
//!
//! Only the fields the checks need are modelled; every field is optional and
//! unknown fields are ignored, so an unusual object never fails to load.
//! Timestamps are kept as strings and parsed by the checks, which report an
//! unparsable value instead of dropping the object.
pub mod compact;
pub mod encryption_config;
pub mod gateway;
pub mod velero;
pub mod volume_snapshot;
