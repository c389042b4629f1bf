//! End-to-end tests on a real local control plane. All of them live in this one
//! test binary so a small machine runs one control plane, shared by every test
//! (see `support`).

mod admission;
mod builtin_rbac;
mod chart;
mod control_plane;
mod operator;
mod prometheus;
mod report;
mod smoke;
mod support;
