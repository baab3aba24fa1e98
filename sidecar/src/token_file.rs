//! The optional token file, for applications that read files: replaced
//! atomically (a temporary file in the same directory, then a rename), so a
//! reader sees the old token or the new one, never half of one; mode 0600.

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

/// Writes `contents` to `path` atomically, readable by the owner only.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), TokenFileError> {
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
        write_atomically(&path, b"first").expect("write");
        write_atomically(&path, b"second").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
