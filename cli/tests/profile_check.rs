//! `kubectl otpilot profile check`: the engine's load-time validation with
//! file, line and field path, for bare profiles and ClusterMfaProfile
//! manifests, and an exit status for CI.

mod support;

use support::*;

const AUDD: &str = include_str!("../../profile/profiles/audd.yaml");

fn manifest(profile: &str) -> String {
    let indented: String = profile.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: otpilot.dev/v1alpha1\nkind: ClusterMfaProfile\nmetadata:\n  name: acme\nspec:\n{indented}"
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[tokio::test]
async fn good_profiles_and_manifests_pass() {
    let dir = tempfile::tempdir().expect("dir");
    let bare = dir.path().join("audd.yaml");
    let wrapped = dir.path().join("acme-profile.yaml");
    std::fs::write(&bare, AUDD).expect("write");
    std::fs::write(&wrapped, manifest(AUDD)).expect("write");
    let run = cli(
        &["profile", "check", path_str(&bare), path_str(&wrapped)],
        &[],
    )
    .await;
    run.assert_ok();
    assert!(
        run.stdout.contains("audd.yaml: ok (flows: enroll, login"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("acme-profile.yaml: ok"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn broken_profiles_fail_with_file_line_and_path() {
    let dir = tempfile::tempdir().expect("dir");
    // A value no step defines: found by validation after parsing.
    let undefined = AUDD.replacen("{{ totp }}", "{{ otp }}", 1);
    // A method that does not exist: found while parsing.
    let bad_method = manifest(&AUDD.replacen("method: POST", "method: FETCH", 1));
    let files = [
        (
            "undefined.yaml",
            undefined.clone(),
            line_of(&undefined, "{{ otp }}"),
            "otp",
        ),
        (
            "bad-method.yaml",
            bad_method.clone(),
            line_of(&bad_method, "FETCH"),
            "spec.enroll.steps[0].method",
        ),
    ];
    let mut paths = Vec::new();
    for (name, text, _, _) in &files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        paths.push(path);
    }
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, AUDD).expect("write");
    let mut args = vec!["profile", "check", path_str(&good)];
    args.extend(paths.iter().map(|p| path_str(p)));
    let run = cli(&args, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.contains("good.yaml: ok"),
        "the good file is still reported"
    );
    for ((name, _, line, words), path) in files.iter().zip(&paths) {
        let prefix = format!("{}:{line}:", path.display());
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(words)),
            "{name}: expected a line starting {prefix} naming {words}:\n{}",
            run.stdout
        );
    }
}
