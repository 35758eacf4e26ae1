//! Fixtures and workloads of the benign corpus (root_benign.rs).

pub mod fixture;
pub mod roles;
