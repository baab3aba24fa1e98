//! Helpers shared by the integration tests: the `openssl` command line and
//! files in a temporary directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use otpilot_api::common::CertificateSubject;

/// Runs `openssl` with `args` in `dir` and returns (success, stdout + stderr).
/// Fails the test, saying what to install, when openssl is not on the PATH.
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "failed to run `openssl` ({error}): these tests check certificates with the \
                 openssl command line; install OpenSSL 3 (e.g. `apt-get install openssl`)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs openssl and fails the test with its output unless it succeeds.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {} failed:\n{text}", args.join(" "));
    text
}

/// A scratch directory that is removed at the end of the test.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).expect("read test file")
    }
}

/// The PEM blocks of `pem`, each with its BEGIN/END lines.
pub fn pem_blocks(pem: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in pem.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

pub fn subject(common_name: &str) -> CertificateSubject {
    CertificateSubject {
        common_name: common_name.into(),
        organizations: vec!["otpilot tests".into()],
        organizational_units: vec!["pki".into()],
    }
}
