//! What the dependency graph must not contain, read from `cargo tree` of the
//! checked-in Cargo.lock (offline: the registry is warm once the workspace
//! has built). `rsa` carries RUSTSEC-2023-0071 (the Marvin timing attack, no
//! fixed version): jsonwebtoken's RustCrypto backend brought it in, so the
//! workspace builds jsonwebtoken without a backend and the simulator signs
//! its HS256 tokens on ring. `cargo deny check bans` (scripts/test.sh)
//! refuses `rsa` too; this test names the shipped binaries explicitly.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Crates whose presence in the graph is a finding.
const FORBIDDEN: &[&str] = &["rsa"];

/// The crate names of `cargo tree <args>` run at the workspace root.
fn tree(args: &[&str]) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args(["tree", "--offline", "--locked", "--prefix", "none"])
        .args(["--format", "{p}"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn assert_clean(what: &str, names: &BTreeSet<String>, must_contain: &[&str]) {
    // A tree that printed nothing useful must not pass as "nothing forbidden".
    for name in must_contain {
        assert!(
            names.contains(*name),
            "{what}: {name} missing from {names:?}"
        );
    }
    let found: Vec<_> = FORBIDDEN
        .iter()
        .filter(|name| names.contains(**name))
        .collect();
    assert!(found.is_empty(), "{what} depends on {found:?}");
}

#[test]
fn shipped_binaries_do_not_depend_on_rsa() {
    let names = tree(&[
        "-e",
        "normal",
        "-p",
        "otpilot-operator",
        "-p",
        "otpilot-sidecar",
    ]);
    assert_clean(
        "operator and sidecar",
        &names,
        &["otpilot-operator", "otpilot-sidecar", "ring"],
    );
    let cli = tree(&["-e", "normal", "-p", "kubectl-otpilot"]);
    assert_clean("kubectl-otpilot", &cli, &["kubectl-otpilot", "ring"]);
}

#[test]
fn no_workspace_crate_depends_on_rsa_even_in_tests() {
    // The simulator and the tests run on CI machines and developer laptops:
    // no advisory is ignored for them either.
    let names = tree(&["--workspace", "-e", "normal,build,dev"]);
    assert_clean(
        "the workspace",
        &names,
        &["otpilot-sim", "jsonwebtoken", "proptest"],
    );
}
