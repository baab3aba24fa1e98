//! The shared chart install. Every case installs it with the settings it needs; a case that
//! changes a setting rolls the operator Deployment, and the next case's install puts the
//! chart's defaults back (another rollout). So the cases that change a setting cost a rollout
//! each way, and the others cost nothing.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use otpilot_tests::TestCluster;
use otpilot_tests::node::{RELEASE_NAMESPACE, install_chart_with};

/// `helm upgrade --install` with `values` (the chart's defaults for the rest), then waits
/// until no operator Pod of an earlier rollout is left: helm waits for the new Pods only,
/// and an old one could still answer the webhook with the old settings.
pub async fn install(cluster: &TestCluster, values: &[&str]) {
    let started = Instant::now();
    install_chart_with(values);
    let pods = Api::<Pod>::namespaced(cluster.client(), RELEASE_NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = pods
            .list(&ListParams::default())
            .await
            .expect("list operator Pods")
            .items;
        let templates: std::collections::BTreeSet<_> = listed
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref()?.get("pod-template-hash"))
            .collect();
        let terminating = listed
            .iter()
            .any(|p| p.metadata.deletion_timestamp.is_some());
        if templates.len() <= 1 && !terminating {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "operator Pods of an earlier rollout still there after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = started.elapsed();
    // An install with nothing to change takes about a second; longer means new operator Pods.
    if took > Duration::from_secs(3) {
        println!(
            "chart installed with {values:?}: new operator Pods Ready in {} s",
            took.as_secs()
        );
    }
}
