//! A credential's factors never follow an edited vendor, with the operator
//! running as a process: once enrolled, the API server refuses an edit of
//! `spec.baseUrl` or `spec.serverCa` (the CRD's CEL rule); the recovery
//! Secret records which vendor issued the recovery codes, and a code is
//! never spent against another one.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use otpilot_tests::{TestCluster, TestNamespace};
use support::*;

const ISSUER_KEY: &str = "recovery-codes-issuer";

/// A valid base32 secret the vendor never saw.
const WRONG_SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

async fn patch_spec(ns: &TestNamespace, spec: serde_json::Value) -> Result<(), (u16, String)> {
    let patch = serde_json::json!({ "spec": spec });
    match ns
        .api::<ApiCredential>()
        .patch("bot", &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err((status.code, status.message)),
        Err(other) => Err((0, other.to_string())),
    }
}

fn issuer(recovery: &std::collections::BTreeMap<String, Vec<u8>>) -> serde_json::Value {
    let text = recovery.get(ISSUER_KEY).unwrap_or_else(|| {
        panic!(
            "no {ISSUER_KEY} in the recovery Secret: {:?}",
            recovery.keys()
        )
    });
    serde_json::from_slice(text).expect("the issuer record is JSON")
}

#[tokio::test]
async fn an_enrolled_credentials_vendor_cannot_be_edited_and_its_codes_name_their_issuer() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("vendor-fixed").await.expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;
    wait_for_ready(&ns, "bot", &operator).await;

    let edits = [
        (
            "another host",
            serde_json::json!({ "baseUrl": "https://attacker.example/v1" }),
        ),
        (
            "another path",
            serde_json::json!({ "baseUrl": format!("{}/other", sim.base_url()) }),
        ),
        (
            "another CA",
            serde_json::json!({ "serverCa": { "name": "attacker-ca", "key": "ca.crt" } }),
        ),
        ("no CA", serde_json::json!({ "serverCa": null })),
    ];
    for (what, spec) in edits {
        match patch_spec(&ns, spec).await {
            Err((422, message)) => assert!(
                message.contains("cannot change once the credential is enrolled")
                    && message.contains("create a new ApiCredential"),
                "{what}: {message}"
            ),
            other => panic!("{what}: the edit was not refused by the API server: {other:?}"),
        }
    }
    // Other fields stay editable.
    patch_spec(&ns, serde_json::json!({ "variables": { "poke": "1" } }))
        .await
        .expect("an edit of another field is accepted");

    let recorded = issuer(&secret_data(&ns, "bot-recovery").await);
    assert_eq!(recorded["baseUrl"], sim.base_url().as_str(), "{recorded}");
    assert!(
        recorded["serverCaSha256"]
            .as_str()
            .is_some_and(|h| h.len() == 64),
        "{recorded}"
    );
    sim.shutdown().await;
}

async fn codes_left_at_vendor(sim: &otpilot_sim::SimHandle) -> usize {
    sim.admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account")
        .recovery_codes_left
}

async fn corrupt_seed(ns: &TestNamespace) {
    let patch = serde_json::json!({ "stringData": { "totp-secret": WRONG_SEED } });
    ns.api::<Secret>()
        .patch(
            "bot-runtime",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("corrupt the runtime Secret's seed");
}

#[tokio::test]
async fn recovery_codes_issued_by_another_vendor_are_not_spent() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("vendor-codes").await.expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;
    wait_for_ready(&ns, "bot", &operator).await;
    let values = secret_values(&ns, "bot").await;
    let before = codes_left_at_vendor(&sim).await;
    assert!(before > 0, "the vendor issued recovery codes");
    let old_seed = runtime_seed(&ns, "bot").await;

    // The codes in the Secret say another vendor issued them (as after an
    // edit of baseUrl the CRD did not refuse, e.g. before an upgrade).
    let elsewhere = serde_json::json!({ "baseUrl": "https://vendor-before.example/v1" });
    let patch = serde_json::json!({ "stringData": { ISSUER_KEY: elsewhere.to_string() } });
    ns.api::<Secret>()
        .patch(
            "bot-recovery",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("record another issuer");

    // The vendor now refuses the stored seed: a recovery code would be next.
    let refused = |c: &ApiCredential| {
        condition(c, "Enrolled") == Some(("False".into(), "RecoveryVendorMismatch".into()))
    };
    corrupt_seed(&ns).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let c = ns.api::<ApiCredential>().get("bot").await.expect("get");
        if refused(&c) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no RecoveryVendorMismatch: {:?}\n{}",
            c.status,
            operator.log_text()
        );
        // A pass that read the Secret before the edit may write the old seed back.
        if runtime_seed(&ns, "bot").await == old_seed {
            corrupt_seed(&ns).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let c = wait_for(
        &ns,
        "bot",
        Duration::from_secs(5),
        &operator,
        "mismatch",
        refused,
    )
    .await;
    let message = c
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == "Enrolled"))
        .map(|x| x.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("were issued by another vendor")
            && message.contains("https://vendor-before.example/v1"),
        "{message}"
    );
    assert_eq!(codes_left_at_vendor(&sim).await, before, "no code spent");
    let recovery = secret_data(&ns, "bot-recovery").await;
    let stored = String::from_utf8(recovery["recovery-codes"].clone()).expect("text");
    assert_eq!(
        stored.lines().filter(|l| !l.trim().is_empty()).count(),
        before
    );

    let mut values = values;
    values.push(WRONG_SEED.to_owned());
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}
