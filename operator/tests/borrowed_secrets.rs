//! A credential cannot borrow another credential's Secrets, with the
//! operator running as a process: naming another credential's recovery,
//! runtime or session Secret, a ClientCA's key, or any Secret otpilot
//! labels, as a password, API key or secret value is refused with the
//! condition reason ForbiddenSecret before anything is sent to the vendor,
//! whatever the Secret is called.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{ObjectMeta, PostParams};
use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use otpilot_tests::TestCluster;
use support::*;

fn message(c: &ApiCredential, type_: &str) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == type_))
        .map(|x| x.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn otpilots_own_secrets_are_refused_as_inputs_whatever_their_name() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("borrowed").await.expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    // The ClientCA's key Secret lives in the operator's namespace, here the
    // test's own.
    let (ca, _) = create_client_ca(&cluster, &ns, &operator).await;
    create_credential(
        &ns,
        &credential("victim", "goaxr", &sim.base_url(), "Retain"),
    )
    .await;
    let victim = wait_for_ready(&ns, "victim", &operator).await;

    let secrets = ns.api::<Secret>();
    // A session Secret stripped of its labels: still owned by the victim.
    let owner = victim.controller_owner_ref(&()).expect("owner reference");
    let session = Secret {
        metadata: ObjectMeta {
            name: Some("victim-session".into()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([(
            "refresh-token".into(),
            "rt-victim".into(),
        )])),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &session)
        .await
        .expect("create the session Secret");
    // An innocent name, otpilot's label.
    let labelled = Secret {
        metadata: ObjectMeta {
            name: Some("vendor-settings".into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".into(),
                "otpilot".into(),
            )])),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([("password".into(), "pw".into())])),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &labelled)
        .await
        .expect("create the labelled Secret");

    let ca_key = format!("{ca}-ca-key");
    let cases = [
        (
            "recovery",
            "passwordSecretRef",
            "victim-recovery",
            "recovery-codes",
            "otpilot's recovery Secret",
        ),
        (
            "runtime",
            "passwordSecretRef",
            "victim-runtime",
            "totp-secret",
            "otpilot's runtime Secret",
        ),
        (
            "session",
            "apiKeySecretRef",
            "victim-session",
            "refresh-token",
            "owned by ApiCredential victim",
        ),
        (
            "cakey",
            "passwordSecretRef",
            ca_key.as_str(),
            "tls.key",
            "otpilot's ca-key Secret",
        ),
        (
            "labelled",
            "apiKeySecretRef",
            "vendor-settings",
            "password",
            "managed by otpilot",
        ),
    ];
    for (name, field, secret, key, _) in &cases {
        let mut thief = credential(&format!("thief-{name}"), "goaxr", &sim.base_url(), "Retain");
        let reference = otpilot_api::common::SecretKeyRef {
            name: (*secret).to_owned(),
            key: (*key).to_owned(),
        };
        match *field {
            "passwordSecretRef" => thief.spec.password_secret_ref = Some(reference),
            _ => thief.spec.api_key_secret_ref = Some(reference),
        }
        create_credential(&ns, &thief).await;
    }
    for (name, field, secret, _, why) in &cases {
        let thief = format!("thief-{name}");
        let refused = wait_for(
            &ns,
            &thief,
            Duration::from_secs(60),
            &operator,
            "Enrolled reason ForbiddenSecret",
            |c| {
                condition(c, "Enrolled")
                    .is_some_and(|(s, r)| s == "False" && r == "ForbiddenSecret")
            },
        )
        .await;
        let msg = message(&refused, "Enrolled");
        assert!(
            msg.contains(&format!("refused Secret {secret} (spec.{field})")) && msg.contains(why),
            "{thief}: {msg}"
        );
        assert_eq!(
            condition(&refused, "Ready").map(|(s, _)| s),
            Some("False".to_owned()),
            "{thief}"
        );
        assert!(
            refused.status.as_ref().and_then(|s| s.enrollment)
                != Some(otpilot_api::api_credential::EnrollmentState::Enrolled)
        );
    }
    // Nothing of the thieves reached the vendor: the victim's enrollment is
    // the only one, and it still logs in.
    login_with_secrets(&ns, "victim").await;

    let mut values = secret_values(&ns, "victim").await;
    values.push("rt-victim".to_owned());
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}
