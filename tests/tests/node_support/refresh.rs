//! `spec.token.refreshBefore` on the node: it reaches the injected sidecar and sets its
//! renewal.

use std::time::Duration;

use serde_json::json;

use super::CREDENTIAL;
use super::health::{create, injected_pod, sidecar_spec};
use super::workloads::SIDECAR;

/// `spec.token.refreshBefore` reaches the injected sidecar (`--refresh-before`) and sets its
/// renewal: 20 s tokens with a 4 s lead are renewed 15–16 s after they were obtained, where the
/// default lead (at most half the life) renews at 10 s. Read from the sidecar's "new token" log
/// line (its schedule, not a clock), then the renewal itself is awaited.
pub async fn refresh_before_case() {
    let world = super::world_with(
        "refresh-before",
        super::Setup {
            access_token_lifetime: Some(Duration::from_secs(20)),
            ..super::Setup::audd(super::LONG_LIVED)
        },
    )
    .await;
    let ns = &world.ns;
    let patch = json!({"spec": {"token": {"refreshBefore": "4s"}}});
    ns.api::<otpilot_api::ApiCredential>()
        .patch(
            CREDENTIAL,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("set spec.token.refreshBefore");
    create(ns, &injected_pod("renewing", &[])).await;
    let pod = otpilot_tests::node::wait_for_pod(
        ns,
        "renewing",
        "Running and Ready",
        Duration::from_secs(180),
        super::workloads::all_ready,
    )
    .await;
    let args = sidecar_spec(&pod)
        .args
        .clone()
        .unwrap_or_default()
        .join(" ");
    assert!(args.contains("--refresh-before 4"), "{args}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let tokens = loop {
        let log = otpilot_tests::node::container_log(ns, "renewing", SIDECAR).await;
        let tokens: Vec<(u64, u64)> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "new token")
            .filter_map(|v| Some((v["expires_in_s"].as_u64()?, v["next_in_ms"].as_u64()?)))
            .collect();
        if tokens.len() >= 2 {
            break tokens;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no renewal within 60 s:\n{log}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    println!("  new tokens (life s, next renewal in ms): {tokens:?}");
    let (life_s, next_in_ms) = tokens[0];
    let life_ms = life_s * 1000;
    // A lead of 4 s plus up to a quarter of jitter; the logged life is rounded down.
    assert!(
        (life_ms.saturating_sub(5000)..=life_ms + 1000 - 4000).contains(&next_in_ms),
        "renewal scheduled {next_in_ms} ms after a token of {life_s} s, not 4 s before its end"
    );
}
