//! The CRD upgrade path (charts/otpilot/README.md, "Upgrading"): Helm
//! installs `crds/` once and never upgrades it. Objects created under the
//! CRDs of an earlier version (those of commit e2b16ef, the last one CI
//! accepted before the multi-tenant work: `tests/fixtures/crds-e2b16ef.yaml`)
//! keep working when this operator runs on those old CRDs (a `helm upgrade`
//! without the CRD step), and after the documented
//! `kubectl apply --server-side --force-conflicts -f crds/`: still Ready, no
//! new enrollment, and the new rules hold for the old objects.
//! A control plane of the test's own: the shared one keeps current CRDs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// kubectl from the control-plane cache (built by the script, which
/// answers at once when warm).
fn kubectl() -> PathBuf {
    let out = Command::new(repo().join("scripts/build-control-plane.sh"))
        .output()
        .expect("scripts/build-control-plane.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("kubectl")
}

fn run_kubectl(kubeconfig: &str, args: &[&str]) {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn enrolled_again(operator: &Operator) -> Vec<String> {
    operator
        .log_text()
        .lines()
        .filter(|l| l.contains("\"message\":\"enrollment\"") && !l.contains("AlreadyEnrolled"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn credentials_of_the_previous_crds_stay_ready_through_the_crd_upgrade() {
    let (plane, cluster) = PrivateControlPlane::up_without_crds().await;
    let kubeconfig = plane.kubeconfig().to_owned();
    let old = repo().join("operator/tests/fixtures/crds-e2b16ef.yaml");
    // As `helm install` of the earlier chart put them.
    run_kubectl(&kubeconfig, &["create", "-f", old.to_str().expect("path")]);
    run_kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
    );

    let ns = cluster.namespace("crd-upgrade").await.expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Retain"),
    )
    .await;

    // `helm upgrade` alone: this operator on the old CRDs.
    let operator = Operator::start_on(&kubeconfig, ns.name(), "otpilot-operator", &[]).await;
    wait_for_ready(&ns, "bot", &operator).await;
    let seed = runtime_seed(&ns, "bot").await;
    drop(operator);

    // The documented CRD step, then the operator again.
    run_kubectl(
        &kubeconfig,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            repo().join("crds").to_str().expect("path"),
        ],
    );
    run_kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
    );
    let operator = Operator::start_on(&kubeconfig, ns.name(), "otpilot-operator", &[]).await;
    // A new pass on the upgraded schema (the annotation is a change the
    // controller sees), still Ready.
    let credentials = ns.api::<ApiCredential>();
    credentials
        .patch(
            "bot",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"metadata": {"annotations": {"example.com/touched": "1"}}}),
            ),
        )
        .await
        .expect("an ordinary edit of an old object passes the new schema");
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_for_ready(&ns, "bot", &operator).await;
    assert_eq!(runtime_seed(&ns, "bot").await, seed, "the seed is kept");
    assert_eq!(
        enrolled_again(&operator),
        Vec::<String>::new(),
        "no new enrollment"
    );
    login_with_secrets(&ns, "bot").await;

    // The new rules apply to the old object: its vendor is fixed now.
    let moved = credentials
        .patch(
            "bot",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"baseUrl": "https://elsewhere.example"}})),
        )
        .await;
    assert!(
        moved.is_err_and(|e| e
            .to_string()
            .contains("cannot change once the credential is enrolled")),
        "the upgraded CRD's vendor lock holds for a credential created before it"
    );
}
