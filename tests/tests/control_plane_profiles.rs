//! The built-in profiles are ordinary `ClusterMfaProfile` specs: each one
//! goes through the real API server's schema unchanged (nothing pruned,
//! nothing rejected), which is what lets a user add a vendor with YAML alone.

use kube::api::{Api, ObjectMeta, PostParams};
use otpilot_api::profile::ProfileSpec;
use otpilot_api::{ClusterMfaProfile, ClusterMfaProfileSpec};
use otpilot_tests::TestCluster;

#[tokio::test]
async fn every_builtin_profile_round_trips_as_a_cluster_mfa_profile() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let api: Api<ClusterMfaProfile> = Api::all(cluster.client());
    let suffix = format!("{:08x}", rand::random::<u32>());
    for (name, yaml) in otpilot_profile::builtin::SOURCES {
        let profile: ProfileSpec = serde_saphyr::from_str(yaml)
            .unwrap_or_else(|error| panic!("built-in profile {name} parses: {error}"));
        let object = ClusterMfaProfile {
            metadata: ObjectMeta {
                name: Some(format!("{name}-{suffix}")),
                ..ObjectMeta::default()
            },
            spec: ClusterMfaProfileSpec { profile },
            status: None,
        };
        let created = api
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|error| panic!("API server rejected built-in profile {name}: {error}"));
        let as_sent = serde_json::to_value(&object.spec).expect("serialize");
        let as_stored = serde_json::to_value(&created.spec).expect("serialize");
        pretty_assertions::assert_eq!(
            as_stored,
            as_sent,
            "the schema pruned or changed fields of built-in profile {name}"
        );
    }
}
