//! The optional token file, for applications that read files: replaced
//! atomically (a temporary file in the same directory, then a rename), so a
//! reader sees the old token or the new one, never half of one. Mode 0600
//! by default; an injected Pod's app containers run as other users, so the
//! webhook asks for 0644 in the Pod's own in-memory volume, which only the
//! Pod's containers mount.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the token file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("failed to write the token file {path}: {source}")]
pub struct TokenFileError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The default mode: readable by the owner only.
pub const DEFAULT_MODE: u32 = 0o600;

/// Parses an octal mode for the token file: the owner must read it, nobody
/// may execute it, and only the owner may write it.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .map_err(|_| format!("{text:?} is not an octal file mode such as 0600"))?;
    if mode & !0o644 != 0 || mode & 0o400 == 0 {
        return Err(format!(
            "{text}: the token file must be readable by its owner and neither executable nor writable by others (e.g. 0600, 0640, 0644)"
        ));
    }
    Ok(mode)
}

/// Writes `contents` to `path` atomically, with `mode`.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TokenFileError> {
    let err = |source| TokenFileError {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "token".to_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // Exactly `mode`, whatever the umask; set before the token is in it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_token_file_is_replaced_whole_and_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        write_atomically(&path, b"first", DEFAULT_MODE).expect("write");
        write_atomically(&path, b"second", DEFAULT_MODE).expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }

    #[test]
    fn a_requested_mode_is_applied_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        write_atomically(&path, b"t", 0o644).expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn only_safe_token_file_modes_are_accepted() {
        let cases = [
            ("0600", Some(0o600)),
            ("600", Some(0o600)),
            ("0640", Some(0o640)),
            ("0644", Some(0o644)),
            ("0o444", Some(0o444)),
            ("0666", None),
            ("0700", None),
            ("0044", None),
            ("rw", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_mode(text).ok(), want, "{text}");
        }
    }
}
