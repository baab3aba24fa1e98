//! Test support for otpilot's cross-crate and control-plane tests.
//!
//! The control plane (etcd + kube-apiserver + kube-controller-manager on
//! loopback) is started once per test run by `scripts/test.sh` (or by hand
//! with `scripts/control-plane.sh up`), which exports
//! `OTPILOT_TEST_KUBECONFIG`. Each test gets a fresh namespace. The variable
//! is deliberately not `KUBECONFIG`: tests must never reach a real cluster by
//! accident.

#![warn(missing_docs)]

pub mod artifacts;
pub mod cluster;
pub mod node;
pub mod refusal;
pub mod tinyproxy;
pub mod webhook;

pub use cluster::{TestCluster, TestNamespace};

/// The minor release of the API server `cluster` talks to (`1.29.15` -> 29).
pub async fn server_minor(cluster: &TestCluster) -> u32 {
    let version = cluster
        .client()
        .apiserver_version()
        .await
        .expect("GET /version");
    version
        .minor
        .trim_end_matches('+')
        .parse()
        .expect("numeric minor")
}
