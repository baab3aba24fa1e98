//! The sidecar's inputs: the operator's runtime Secret volume and the
//! user's password / API key / secret value files, read as the kubelet lays them out, and
//! turned into an engine ready to log in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use otpilot_api::api_credential::EnrollmentState;
use otpilot_api::runtime_secret::{RuntimeBundle, RuntimeSecretError, keys};
use otpilot_profile::{
    ClientError, ClientIdentity, CodeTimer, Engine, HttpSettings, Inputs, LoadError, Profile,
    TotpError, TotpKey, TotpParams,
};
use secrecy::{ExposeSecret, SecretString};

/// The kubelet's link to the current set of files in a Secret volume.
pub const DATA_LINK: &str = "..data";

/// Where the inputs are.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The mounted `<name>-runtime` Secret.
    pub runtime_dir: PathBuf,
    /// A file holding the password (a key of the user's Secret), for
    /// vendors whose profile uses one.
    pub password_file: Option<PathBuf>,
    /// A file holding the API key, when the vendor needs one.
    pub api_key_file: Option<PathBuf>,
    /// Files holding the profile's further secret values, by name.
    pub secret_value_files: Vec<(String, PathBuf)>,
}

/// The bytes of every input, as read. Compared with the previous read to
/// notice a change; never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RawInputs {
    runtime: BTreeMap<String, Vec<u8>>,
    password: Option<Vec<u8>>,
    api_key: Option<Vec<u8>>,
    secret_values: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for RawInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawInputs")
            .field("runtime_keys", &self.runtime.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why the inputs could not be used. Names files and keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("failed to read {what} at {path}: {source}")]
    /// A file could not be read.
    Read {
        /// What the file holds (never its content).
        what: &'static str,
        /// The file.
        path: PathBuf,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
    #[error("failed to parse the runtime Secret: {0}")]
    /// The runtime Secret is malformed.
    Bundle(#[from] RuntimeSecretError),
    #[error("failed to read the {what} file: it is not UTF-8 text")]
    /// A file is not UTF-8.
    NotUtf8 {
        /// What the file holds.
        what: &'static str,
    },
    #[error("failed to read the secret value file {path}: {source}")]
    /// A `--secret-value` file could not be read.
    ReadSecretValue {
        /// The file.
        path: PathBuf,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
    #[error("failed to read the secret value file for {name}: it is not UTF-8 text")]
    /// A `--secret-value` file is not UTF-8.
    SecretValueNotUtf8 {
        /// The value's name.
        name: String,
    },
    #[error("failed to use --secret-value: {0}; fix the name")]
    /// A `--secret-value` name the profile does not declare.
    UnknownSecretValue(String),
    #[error("failed to load the profile from runtime Secret key profile.yaml: {0}")]
    /// The profile in the runtime Secret does not load.
    Profile(#[from] LoadError),
    #[error("failed to use the TOTP secret from runtime Secret key totp-secret: {0}")]
    /// The TOTP secret or parameters are unusable.
    Totp(#[from] TotpError),
    #[error("failed to build the HTTPS client from the runtime Secret's certificates: {0}")]
    /// The HTTPS client could not be built.
    Client(#[from] ClientError),
}

/// Reads every input file.
pub fn read(sources: &Sources) -> Result<RawInputs, InputError> {
    let runtime = read_secret_dir(&sources.runtime_dir).map_err(|source| InputError::Read {
        what: "the runtime Secret directory",
        path: sources.runtime_dir.clone(),
        source,
    })?;
    let password = sources
        .password_file
        .as_deref()
        .map(|p| read_file(p, "the password file"))
        .transpose()?;
    let api_key = sources
        .api_key_file
        .as_deref()
        .map(|p| read_file(p, "the API key file"))
        .transpose()?;
    let mut secret_values = BTreeMap::new();
    for (name, path) in &sources.secret_value_files {
        let bytes = std::fs::read(path).map_err(|source| InputError::ReadSecretValue {
            path: path.clone(),
            source,
        })?;
        secret_values.insert(name.clone(), bytes);
    }
    Ok(RawInputs {
        runtime,
        password,
        api_key,
        secret_values,
    })
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|source| InputError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// The files of a Secret volume, by key. With the kubelet's layout the
/// `..data` link is resolved once and every file read from the directory it
/// names, so a rotation in the middle of a read cannot mix two sets.
/// A plain directory (a local run) is read as is; names starting with `.`
/// are skipped either way.
pub fn read_secret_dir(dir: &Path) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let link = dir.join(DATA_LINK);
    let source = match std::fs::canonicalize(&link) {
        Ok(resolved) => resolved,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => dir.to_owned(),
        Err(e) => return Err(e),
    };
    let mut data = BTreeMap::new();
    for entry in std::fs::read_dir(&source)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if !std::fs::metadata(&path)?.is_file() {
            continue;
        }
        data.insert(name, std::fs::read(&path)?);
    }
    Ok(data)
}

/// A secret file's text without the line end an editor or `echo` adds.
fn secret_text(bytes: &[u8], what: &'static str) -> Result<SecretString, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|_| InputError::NotUtf8 { what })?;
    Ok(SecretString::from(text.trim_end_matches(['\n', '\r'])))
}

/// The secret values' texts, by name, each as [`secret_text`] reads it.
fn secret_value_texts(
    raw: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, SecretString>, InputError> {
    raw.iter()
        .map(|(name, bytes)| {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| InputError::SecretValueNotUtf8 { name: name.clone() })?;
            Ok((
                name.clone(),
                SecretString::from(text.trim_end_matches(['\n', '\r'])),
            ))
        })
        .collect()
}

/// Everything a session needs, built from one consistent set of inputs.
pub struct Prepared {
    /// Where enrollment stands: a sidecar logs in only when `Enrolled`.
    pub enrollment_state: EnrollmentState,
    /// The profile's name, for logs.
    pub profile_name: String,
    /// The vendor's base URL, without a trailing `/`.
    pub base_url: String,
    /// The engine, on the process's shared code timer.
    pub engine: Arc<Engine>,
    /// What the flows run with (the TOTP key included when enrolled).
    pub inputs: Inputs,
    /// The client the proxy forwards with (same certificates as the engine).
    pub proxy_client: reqwest::Client,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("enrollment_state", &self.enrollment_state)
            .field("profile_name", &self.profile_name)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// How the HTTP clients are built.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// One whole login / refresh request.
    pub engine_request: Duration,
    /// One whole proxied request (large bodies take time).
    pub proxy_request: Duration,
    /// Directly, or through an HTTP proxy (`--egress-proxy`).
    pub egress: otpilot_profile::Egress,
}

/// Parses the inputs and builds the engine. The runtime Secret's
/// `last-code-step` is marked used on `timer`, so no code of that step or an
/// earlier one is ever sent.
pub fn prepare(
    raw: &RawInputs,
    timer: &Arc<CodeTimer>,
    client: &ClientSettings,
) -> Result<Prepared, InputError> {
    let bundle = RuntimeBundle::from_data(&raw.runtime)?;
    let password = raw
        .password
        .as_deref()
        .map(|p| secret_text(p, "password"))
        .transpose()?;
    let api_key = raw
        .api_key
        .as_deref()
        .map(|k| secret_text(k, "API key"))
        .transpose()?;
    let secret_values = secret_value_texts(&raw.secret_values)?;
    let profile = Profile::from_yaml(keys::PROFILE, &bundle.profile_yaml)?;
    if let Some(problem) = profile.undeclared_secret_value(secret_values.keys().map(String::as_str))
    {
        return Err(InputError::UnknownSecretValue(problem));
    }
    let identity = match (&bundle.tls_crt, &bundle.tls_key) {
        (Some(crt), Some(key)) => Some(ClientIdentity {
            cert_chain_pem: crt.clone(),
            key_pem: key.clone(),
        }),
        _ => None,
    };
    let settings = client.egress.apply(HttpSettings {
        client_identity: identity,
        server_ca_pem: bundle.server_ca.clone(),
        request_timeout: client.engine_request,
        ..HttpSettings::default()
    });
    let proxy_settings = HttpSettings {
        request_timeout: client.proxy_request,
        ..settings.clone()
    };
    let engine =
        Engine::new(Arc::new(profile), &bundle.base_url, settings)?.with_timer(Arc::clone(timer));
    let proxy_client = otpilot_profile::http::build_client(&proxy_settings)?;
    let totp = match &bundle.totp {
        Some(stored) => {
            let params = TotpParams {
                algorithm: stored.params.algorithm,
                digits: stored.params.digits,
                period: stored.params.period,
            };
            params.validate()?;
            let key = TotpKey::from_base32(stored.secret.expose_secret(), params)?;
            if let Some(step) = bundle.last_code_step {
                timer.mark_used(&key, step);
            }
            Some(key)
        }
        None => None,
    };
    let inputs = Inputs {
        username: Some(bundle.username.clone()),
        password,
        api_key,
        secret_values,
        totp,
        variables: bundle.variables.clone(),
        ..Inputs::default()
    };
    Ok(Prepared {
        enrollment_state: bundle.enrollment_state,
        profile_name: bundle.profile_name.clone(),
        base_url: bundle.base_url.trim_end_matches('/').to_owned(),
        engine: Arc::new(engine),
        inputs,
        proxy_client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Writes `files` the way the kubelet does: a timestamped directory, a
    /// `..data` link to it and one link per key.
    fn kubelet_write(dir: &Path, stamp: &str, files: &[(&str, &str)]) {
        let real = dir.join(format!("..{stamp}"));
        std::fs::create_dir(&real).expect("mkdir");
        for (k, v) in files {
            std::fs::write(real.join(k), v).expect("write");
            let link = dir.join(k);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(format!("{DATA_LINK}/{k}"), &link).expect("key link");
            }
        }
        let tmp = dir.join("..data_tmp");
        symlink(format!("..{stamp}"), &tmp).expect("data link");
        std::fs::rename(&tmp, dir.join(DATA_LINK)).expect("swap");
    }

    #[test]
    fn a_kubelet_volume_is_read_through_its_data_link_and_sees_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        kubelet_write(dir.path(), "2026_01_01", &[("a", "one"), ("b", "two")]);
        let first = read_secret_dir(dir.path()).expect("read");
        assert_eq!(first.get("a").map(Vec::as_slice), Some(&b"one"[..]));
        assert_eq!(first.len(), 2, "the .. entries are not keys");
        kubelet_write(dir.path(), "2026_01_02", &[("a", "uno"), ("b", "two")]);
        let second = read_secret_dir(dir.path()).expect("read");
        assert_eq!(second.get("a").map(Vec::as_slice), Some(&b"uno"[..]));
    }

    #[test]
    fn a_plain_directory_is_read_as_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("k"), "v").expect("write");
        std::fs::write(dir.path().join(".hidden"), "x").expect("write");
        let data = read_secret_dir(dir.path()).expect("read");
        assert_eq!(data.keys().collect::<Vec<_>>(), vec!["k"]);
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline_only() {
        let s = secret_text(b" pass word \r\n", "password").expect("utf8");
        assert_eq!(s.expose_secret(), " pass word ");
        assert!(secret_text(&[0xff], "password").is_err());
    }

    #[test]
    fn a_credential_without_a_password_needs_no_password_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("k"), "v").expect("write");
        let sources = Sources {
            runtime_dir: dir.path().to_owned(),
            password_file: None,
            api_key_file: None,
            secret_value_files: Vec::new(),
        };
        let raw = read(&sources).expect("read without a password file");
        assert!(raw.password.is_none());

        let missing = Sources {
            password_file: Some(dir.path().join("absent")),
            ..sources
        };
        let err = read(&missing).expect_err("a named password file must exist");
        assert!(err.to_string().contains("the password file"), "{err}");
    }
}
