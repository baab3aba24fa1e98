//! Backup and restore (docs/operations.md, "Backup and restore"): the seed
//! and recovery codes live only in the credential's two Secrets. Taken as
//! `kubectl get -o yaml` takes them, stripped of what ties them to the old
//! objects, restored into a cluster with no operator and no credential, they
//! bring the credential back Ready without a new enrollment.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};
use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use otpilot_tests::TestCluster;
use support::*;

/// What the documented restore step removes from a backed-up Secret: the
/// identity of the old object (uid, resourceVersion, creation time, field
/// managers) and its owner reference, which names a credential that no
/// longer exists; left in, the garbage collector deletes the restored Secret.
fn restorable(backup: &Secret) -> Secret {
    let mut secret = backup.clone();
    let meta = &mut secret.metadata;
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.managed_fields = None;
    meta.owner_references = None;
    secret
}

#[tokio::test]
async fn secrets_restored_from_a_backup_bring_the_credential_back_without_enrolling() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("restore").await.expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let mut operator = Operator::start(ns.name()).await;
    let bot = credential("bot", "conduit", &sim.base_url(), "Retain");
    create_credential(&ns, &bot).await;
    wait_for_ready(&ns, "bot", &operator).await;
    let seed = runtime_seed(&ns, "bot").await;
    let admin = sim.admin().expect("admin");
    let enrolled = admin.account(USERNAME).await.expect("account");
    assert_eq!(enrolled.totp_secret_base32.as_deref(), Some(seed.as_str()));
    let codes_left = enrolled.recovery_codes_left;

    // The backup.
    let secrets = ns.api::<Secret>();
    let backup = [
        secrets.get("bot-runtime").await.expect("runtime"),
        secrets.get("bot-recovery").await.expect("recovery"),
    ];

    // Disaster: the operator is gone, and so are the credential and (by
    // garbage collection) its Secrets.
    operator.terminate();
    let credentials = ns.api::<ApiCredential>();
    credentials
        .delete("bot", &DeleteParams::default())
        .await
        .expect("delete the credential");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while secrets
        .get_opt("bot-runtime")
        .await
        .expect("read")
        .is_some()
        || secrets
            .get_opt("bot-recovery")
            .await
            .expect("read")
            .is_some()
        || credentials.get_opt("bot").await.expect("read").is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the credential and its Secrets go"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The restore: Secrets first, then the credential, then the operator.
    for secret in &backup {
        secrets
            .create(&PostParams::default(), &restorable(secret))
            .await
            .expect("restore a Secret");
    }
    create_credential(&ns, &bot).await;
    let operator = Operator::start(ns.name()).await;
    let ready = wait_for_ready(&ns, "bot", &operator).await;

    assert_eq!(
        runtime_seed(&ns, "bot").await,
        seed,
        "the restored seed is kept"
    );
    let after = admin.account(USERNAME).await.expect("account");
    assert_eq!(
        after.totp_secret_base32.as_deref(),
        Some(seed.as_str()),
        "no new enrollment at the vendor"
    );
    assert_eq!(
        after.recovery_codes_left, codes_left,
        "no recovery code spent"
    );
    let log = operator.log_text();
    let actions: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"message\":\"enrollment\""))
        .collect();
    assert!(
        !actions.is_empty() && actions.iter().all(|l| l.contains("AlreadyEnrolled")),
        "the operator found the credential enrolled: {actions:?}"
    );
    login_with_secrets(&ns, "bot").await;

    // The operator adopts the restored Secrets: deleting the credential
    // takes them along again.
    let uid = ready.uid().expect("uid");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let owned = [
            secrets.get("bot-runtime").await.expect("runtime"),
            secrets.get("bot-recovery").await.expect("recovery"),
        ];
        if owned
            .iter()
            .all(|s| s.owner_references().iter().any(|o| o.uid == uid))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restored Secrets are owned by the new credential"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
