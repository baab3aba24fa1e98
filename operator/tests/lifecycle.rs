//! Production manners: one leader among replicas, a lost Lease stops the
//! process, SIGTERM stops it cleanly, and deletion honours deletionPolicy.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use otpilot_tests::{TestCluster, TestNamespace};
use support::*;

async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn enrollment_lines(operator: &Operator) -> usize {
    operator
        .log_text()
        .lines()
        .filter(|l| l.contains("\"message\":\"enrollment\""))
        .count()
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_when_it_dies() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("leader").await.expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;

    let mut first = Operator::start(ns.name()).await;
    eventually(
        "the first operator leads",
        Duration::from_secs(30),
        async || first.is_leader().await,
    )
    .await;
    let second = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;
    wait_for_ready(&ns, "bot", &first).await;
    assert!(
        !second.is_leader().await,
        "two leaders at once:\n{}\n---\n{}",
        first.log_text(),
        second.log_text()
    );
    assert!(enrollment_lines(&first) > 0);
    assert_eq!(enrollment_lines(&second), 0, "the standby acted");

    first.kill();
    eventually(
        "the standby takes over",
        Duration::from_secs(30),
        async || second.is_leader().await,
    )
    .await;
    // The new leader looks at the credential and finds it enrolled.
    eventually(
        "the new leader reconciles",
        Duration::from_secs(30),
        async || enrollment_lines(&second) > 0,
    )
    .await;
    login_with_secrets(&ns, "bot").await;
}

#[tokio::test]
async fn a_leader_that_loses_its_lease_stops_with_an_error() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("lease-lost").await.expect("namespace");
    let mut operator = Operator::start(ns.name()).await;
    eventually("the operator leads", Duration::from_secs(30), async || {
        operator.is_leader().await
    })
    .await;
    // Another replica took the Lease (e.g. after a long GC pause of ours).
    let now = jiff::Timestamp::now();
    let patch = serde_json::json!({ "spec": {
        "holderIdentity": "someone-else",
        "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(now),
        "leaseDurationSeconds": 60,
    }});
    ns.api::<Lease>()
        .patch(
            "otpilot-operator",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("take the Lease");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = operator.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the operator kept running without its Lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.success(), "exit status {status}");
    assert!(
        operator.log_text().contains("leadership lost"),
        "{}",
        operator.log_text()
    );
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_releases_the_lease() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("sigterm").await.expect("namespace");
    let mut operator = Operator::start(ns.name()).await;
    eventually("the operator leads", Duration::from_secs(30), async || {
        operator.is_leader().await
    })
    .await;
    let status = operator.terminate();
    assert!(
        status.success(),
        "exit status {status}\n{}",
        operator.log_text()
    );
    let lease = ns
        .api::<Lease>()
        .get("otpilot-operator")
        .await
        .expect("lease");
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert!(
        holder.as_deref().is_none_or(str::is_empty),
        "lease still held by {holder:?}"
    );
}

async fn gone<K>(api: &kube::Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    matches!(api.get_opt(name).await, Ok(None))
}

async fn delete_and_wait(ns: &TestNamespace) {
    ns.api::<ApiCredential>()
        .delete("bot", &DeleteParams::default())
        .await
        .expect("delete");
    let credentials = ns.api::<ApiCredential>();
    eventually(
        "the ApiCredential is gone",
        Duration::from_secs(60),
        async || gone(&credentials, "bot").await,
    )
    .await;
    let secrets = ns.api::<Secret>();
    eventually(
        "its Secrets are garbage-collected",
        Duration::from_secs(60),
        async || gone(&secrets, "bot-runtime").await && gone(&secrets, "bot-recovery").await,
    )
    .await;
}

#[tokio::test]
async fn deletion_with_policy_disable_turns_mfa_off_at_the_vendor() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("delete-disable")
        .await
        .expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Disable"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
    let values = secret_values(&ns, "bot").await;
    let admin = sim.admin().expect("admin");
    assert!(admin.account(USERNAME).await.expect("account").enrolled);

    delete_and_wait(&ns).await;
    let account = admin.account(USERNAME).await.expect("account");
    assert!(!account.enrolled, "MFA is off at the vendor");
    assert_no_secret_leaks(&ns, &operator, &values).await;
}

#[tokio::test]
async fn deletion_with_policy_retain_leaves_mfa_on_at_the_vendor() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("delete-retain").await.expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Retain"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;

    delete_and_wait(&ns).await;
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(account.enrolled, "MFA stays on at the vendor");
}

fn finalizers(credential: &ApiCredential) -> Vec<String> {
    credential.metadata.finalizers.clone().unwrap_or_default()
}

#[tokio::test]
async fn a_retain_credential_has_no_finalizer_so_its_namespace_deletes_without_the_operator() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("retain-nsdel").await.expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let mut operator = Operator::start(ns.name()).await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Retain"),
    )
    .await;
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_eq!(
        finalizers(&ready),
        Vec::<String>::new(),
        "Retain: nothing to do on delete"
    );

    // The operator uninstalled first, as happens: the namespace still goes.
    operator.terminate();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(cluster.client());
    namespaces
        .delete(ns.name(), &DeleteParams::default())
        .await
        .expect("delete namespace");
    eventually(
        "the namespace is gone without the operator",
        Duration::from_secs(90),
        async || gone(&namespaces, ns.name()).await,
    )
    .await;
}

#[tokio::test]
async fn a_cleanup_finalizer_on_a_retain_credential_is_removed() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("retain-release")
        .await
        .expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    // As an earlier version (or a policy since changed to Retain) left it,
    // next to someone else's finalizer, which must stay.
    let mut old = credential("bot", "conduit", &sim.base_url(), "Retain");
    old.metadata.finalizers = Some(vec![
        otpilot_api::labels::CLEANUP_FINALIZER.to_owned(),
        "example.com/keep".to_owned(),
    ]);
    create_credential(&ns, &old).await;
    let operator = Operator::start(ns.name()).await;
    wait_for_ready(&ns, "bot", &operator).await;
    let credentials = ns.api::<ApiCredential>();
    eventually(
        "the otpilot finalizer is removed, the other kept",
        Duration::from_secs(30),
        async || {
            let current = credentials.get("bot").await.expect("get");
            finalizers(&current) == ["example.com/keep"]
        },
    )
    .await;
    credentials
        .patch(
            "bot",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("drop the test's own finalizer");
}

#[tokio::test]
async fn a_disable_deletion_that_cannot_reach_the_vendor_ends_when_the_policy_becomes_retain() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("disable-wayout")
        .await
        .expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Disable"),
    )
    .await;
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_eq!(
        finalizers(&ready),
        [otpilot_api::labels::CLEANUP_FINALIZER],
        "Disable: MFA is turned off on delete, under the finalizer"
    );

    // The vendor is gone for good: the disable cannot succeed.
    sim.shutdown().await;
    let credentials = ns.api::<ApiCredential>();
    credentials
        .delete("bot", &DeleteParams::default())
        .await
        .expect("delete");
    let events = ns.api::<k8s_openapi::api::core::v1::Event>();
    eventually(
        "a DisableFailed Warning Event says why deletion waits",
        Duration::from_secs(60),
        async || {
            events
                .list(&Default::default())
                .await
                .expect("list Events")
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("DisableFailed")
                        && e.type_.as_deref() == Some("Warning")
                        && e.message.as_deref().is_some_and(|m| {
                            m.contains("VendorUnreachable") && m.contains("deletionPolicy")
                        })
                })
        },
    )
    .await;
    assert!(
        !gone(&credentials, "bot").await,
        "deletion waits for the vendor while the policy is Disable"
    );

    // The documented way out: give up turning MFA off.
    credentials
        .patch(
            "bot",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"deletionPolicy": "Retain"}})),
        )
        .await
        .expect("switch to Retain");
    eventually(
        "the ApiCredential is gone",
        Duration::from_secs(60),
        async || gone(&credentials, "bot").await,
    )
    .await;
}
