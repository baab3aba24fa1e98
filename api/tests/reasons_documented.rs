//! Every condition and Event reason has a section in
//! docs/troubleshooting.md, so a person who meets one finds what it means
//! and what to do.

#[test]
fn every_reason_has_a_troubleshooting_section() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/troubleshooting.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/troubleshooting.md");
    let missing: Vec<&str> = otpilot_api::conditions::reasons::ALL
        .iter()
        .copied()
        .filter(|reason| !doc.contains(&format!("### `{reason}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md has no `### `Reason`` section for: {}",
        missing.join(", ")
    );
}
