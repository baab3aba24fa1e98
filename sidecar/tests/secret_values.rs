//! Vendor secrets beyond the password and the API key, against the sidecar
//! process: Conduit with client validation on gets its `clientsecret` from
//! `--secret-value client_secret=FILE`, a mounted Secret key that is
//! reloaded like the password file, and the value never shows in the
//! output or the metrics.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use otpilot_sim::Vendor;

const CLIENT_ID: &str = "otpilot-app-3";
const CLIENT_SECRET: &str = "cs-Lq7Vw2Zk9Pn4Rt8Xb";
const WRONG_CLIENT_SECRET: &str = "cs-WRONG-Hs5Jd3Fg6Ka";

/// Waits until `/readyz` is 503 with a reason containing `needle`.
async fn wait_reason(sidecar: &Sidecar, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = sidecar.status("/readyz").await;
        if status == 503 && body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no 503 saying {needle:?} (last {status}: {body}); output:\n{}",
            sidecar.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conduit_client_secret_comes_from_a_reloaded_secret_value_file() {
    let v = vendor(
        "conduit",
        Vendor::Conduit,
        VendorOptions {
            client: Some((CLIENT_ID, CLIENT_SECRET)),
            ..VendorOptions::default()
        },
    )
    .await;
    let mut mounts = Mounts::new(&v.bundle());
    let user_data = |client_secret: &str| {
        BTreeMap::from([
            ("password".to_owned(), format!("{PASSWORD}\n").into_bytes()),
            ("api-key".to_owned(), API_KEY.as_bytes().to_vec()),
            (
                "client-secret".to_owned(),
                format!("{client_secret}\n").into_bytes(),
            ),
        ])
    };
    // A wrong client secret first: the vendor refuses every call.
    mounts.user.write(&user_data(WRONG_CLIENT_SECRET));
    let mut args = mounts.args();
    args.push("--secret-value".into());
    args.push(format!(
        "client_secret={}",
        mounts.user.key_path("client-secret").display()
    ));
    let sidecar = Sidecar::spawn(&args);
    let reason = wait_reason(&sidecar, "invalid_client").await;
    assert!(!reason.contains(WRONG_CLIENT_SECRET), "{reason}");

    // The right one, rotated in as the kubelet does: ready without a restart.
    mounts.user.write(&user_data(CLIENT_SECRET));
    let token = sidecar.wait_ready(Duration::from_secs(30)).await;
    assert!(!token.token.is_empty());

    let mut secrets = v.secrets.clone();
    secrets.push(WRONG_CLIENT_SECRET.to_owned());
    secrets.push(token.token);
    sidecar.assert_no_secret_leaked(&secrets).await;
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_value_the_profile_does_not_use_is_refused_by_name() {
    let v = vendor("conduit", Vendor::Conduit, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let mut args = mounts.args();
    args.push("--secret-value".into());
    args.push(format!(
        "clientsecret={}",
        mounts.user.key_path("password").display()
    ));
    let sidecar = Sidecar::spawn(&args);
    let reason = wait_reason(
        &sidecar,
        "no secret value named 'clientsecret' (it uses client_secret)",
    )
    .await;
    assert!(reason.contains("--secret-value"), "{reason}");
    sidecar.assert_no_secret_leaked(&v.secrets).await;
    v.sim.shutdown().await;
}
