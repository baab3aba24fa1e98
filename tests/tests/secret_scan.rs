//! The whole-run secret scan (`scripts/secret-scan.py`) finds what it must:
//! a ledger value planted in a log, in any of the forms it looks for, is
//! reported by file and line without the value; a clean run passes; a scan
//! with no ledger fails rather than passing on nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const PASSWORD: &str = "correct horse battery staple 7Qx";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib3QifQ.c2lnbmF0dXJl";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/secret-scan.py")
}

fn scan(ledger: &Path, paths: &[&Path]) -> (Option<i32>, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new("python3")
        .arg(script())
        .arg("--ledger")
        .arg(ledger)
        .args(paths)
        .output()
        .expect("python3 runs the scan");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code(), text)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, text).expect("write");
}

fn ledger(dir: &Path) -> PathBuf {
    let path = dir.join("ledger");
    write(
        &path,
        &format!("totp-seed\t{SEED}\npassword\t{PASSWORD}\ntoken\t{TOKEN}\nrecovery-code\tAB12\n"),
    );
    path
}

#[test]
fn a_planted_secret_is_found_by_file_and_line_and_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = ledger(dir.path());
    let run = dir.path().join("run");
    write(
        &run.join("clean.log"),
        "started\nrenewed, expires in 300 s\n",
    );
    write(
        &run.join("sidecar/leaky.log"),
        &format!("one\ntwo {PASSWORD} three\n{{\"token\":\"{TOKEN}\"}}\n"),
    );
    // The seed's raw bytes in base64 ("Hello!..." for this seed).
    write(
        &run.join("audit.log"),
        "{\"seed\":\"SGVsbG8h3q2+70hlbGxvId6tvu8=\"}\n",
    );

    let (code, out) = scan(&ledger, &[&run]);
    assert_eq!(code, Some(1), "{out}");
    for want in [
        "leaky.log:2: password",
        "leaky.log:3: token",
        "audit.log:1: totp-seed",
        "FOUND 3 secret values in 2 files",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    for secret in [SEED, PASSWORD, TOKEN, "SGVsbG8h3q2+70hlbGxvId6tvu8="] {
        assert!(!out.contains(secret), "the scan printed a secret:\n{out}");
    }
    assert!(!out.contains("clean.log"), "{out}");
}

#[test]
fn a_clean_run_passes_and_short_values_are_counted_not_matched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = ledger(dir.path());
    let run = dir.path().join("run");
    // "AB12" (4 characters) is left out: it would match by chance.
    write(
        &run.join("clean.log"),
        "AB12 is a code shape, not a secret here\n",
    );
    let (code, out) = scan(&ledger, &[&run]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 shorter than 8 left out"), "{out}");
    assert!(out.contains("no secret found"), "{out}");
}

#[test]
fn a_scan_with_no_ledger_no_files_or_a_missing_file_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    write(&run.join("a.log"), "x\n");
    let (code, out) = scan(&dir.path().join("missing"), &[&run]);
    assert_eq!(code, Some(2), "{out}");
    let ledger = ledger(dir.path());
    let (code, out) = scan(&ledger, &[&dir.path().join("missing.log")]);
    assert_eq!(code, Some(2), "{out}");
    // A missing file beside present ones (an audit log never written).
    let (code, out) = scan(&ledger, &[&run, &dir.path().join("audit.log")]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("does not exist"), "{out}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("dir");
    let (code, out) = scan(&ledger, &[&empty]);
    assert_eq!(code, Some(2), "{out}");
}
