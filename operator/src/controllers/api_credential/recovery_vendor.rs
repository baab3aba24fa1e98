//! Recovery codes are spent only against the vendor that issued them. The
//! `<name>-recovery` Secret records that vendor (its base URL and the
//! SHA-256 of the server CA the credential trusted, if any) under key
//! `recovery-codes-issuer` when new codes are stored; before a code is
//! spent, the vendor the credential names now is compared with it.
//!
//! Codes stored before this record existed (an upgrade): the vendor at the
//! first pass that finds codes without a record is recorded as their
//! issuer. Safe as far as `spec.baseUrl` did not change between enrollment
//! and that pass: from the same upgrade on, the CRD refuses such an edit
//! once the credential is enrolled, so the record only has to survive the
//! window before it, which no code is spent in (the first pass records it
//! before any vendor call).
//!
//! The record has a field manager of its own: the recovery Secret's other
//! writes (server-side apply of the keys they own) leave it alone.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::labels;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::secrets::{self, SecretsError};

/// Key of the recovery Secret holding the issuing vendor (JSON, no secret).
pub const ISSUER_KEY: &str = "recovery-codes-issuer";

/// The field manager of [`ISSUER_KEY`].
const ISSUER_MANAGER: &str = "otpilot-recovery-issuer";

/// Who a vendor is, as far as its recovery codes are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vendor {
    /// `spec.baseUrl`.
    pub base_url: String,
    /// Hex SHA-256 of the server CA bundle (trimmed PEM text), when the
    /// credential names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca_sha256: Option<String>,
}

impl Vendor {
    /// The vendor `base_url` and `server_ca` (PEM) name.
    pub fn of(base_url: &str, server_ca: Option<&str>) -> Self {
        Vendor {
            base_url: base_url.to_owned(),
            server_ca_sha256: server_ca.map(|pem| {
                Sha256::digest(pem.trim().as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }),
        }
    }

    /// The record's text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// May a stored recovery code be sent to `current`? (pure)
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The codes' issuer is the current vendor.
    Same,
    /// No record: the codes are older than the record (see the module doc).
    Unrecorded,
    /// Another vendor issued them; the text says what differs.
    Differs(String),
}

/// Decides from the recorded text (`None`: no record) and the current vendor.
pub fn verdict(recorded: Option<&str>, current: &Vendor) -> Verdict {
    let Some(text) = recorded else {
        return Verdict::Unrecorded;
    };
    let Ok(issuer) = serde_json::from_str::<Vendor>(text) else {
        return Verdict::Differs(format!(
            "key {ISSUER_KEY} of the recovery Secret cannot be read, so the vendor that issued \
             the codes is unknown"
        ));
    };
    if issuer.base_url != current.base_url {
        return Verdict::Differs(format!(
            "the codes were issued by {} but spec.baseUrl is now {}",
            issuer.base_url, current.base_url
        ));
    }
    if issuer.server_ca_sha256 != current.server_ca_sha256 {
        return Verdict::Differs(
            "the codes were issued while the credential trusted another server CA (spec.serverCa)"
                .to_owned(),
        );
    }
    Verdict::Same
}

/// Records `vendor` as the issuer of the codes in the recovery Secret.
pub async fn record(
    api: &Api<Secret>,
    credential: &ApiCredential,
    vendor: &Vendor,
) -> Result<(), SecretsError> {
    let secret = secrets::owned_secret(
        credential,
        labels::recovery_secret_name(&credential.name_any()),
        labels::kinds::RECOVERY,
        [(ISSUER_KEY.to_owned(), vendor.to_text().into_bytes())].into(),
    );
    let name = secret.metadata.name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(&secret).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("apiVersion".into(), "v1".into());
        obj.insert("kind".into(), "Secret".into());
    }
    api.patch(
        &name,
        &PatchParams::apply(ISSUER_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| SecretsError::Write { name, source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    #[test]
    fn codes_go_only_to_the_vendor_that_issued_them() {
        let issuer = Vendor::of("https://api.vendor.example/v1", None);
        let with_ca = Vendor::of("https://api.vendor.example/v1", Some(CA));
        let cases: &[(&str, Option<String>, &Vendor, Verdict)] = &[
            ("no record", None, &issuer, Verdict::Unrecorded),
            (
                "same vendor",
                Some(issuer.to_text()),
                &issuer,
                Verdict::Same,
            ),
            (
                "same CA, other line endings",
                Some(with_ca.to_text()),
                &Vendor::of("https://api.vendor.example/v1", Some(&format!("\n{CA}\n"))),
                Verdict::Same,
            ),
            (
                "another host",
                Some(issuer.to_text()),
                &Vendor::of("https://attacker.example/v1", None),
                Verdict::Differs(
                    "the codes were issued by https://api.vendor.example/v1 but spec.baseUrl is \
                     now https://attacker.example/v1"
                        .into(),
                ),
            ),
            (
                "a CA added",
                Some(issuer.to_text()),
                &with_ca,
                Verdict::Differs(
                    "the codes were issued while the credential trusted another server CA \
                     (spec.serverCa)"
                        .into(),
                ),
            ),
            (
                "another CA",
                Some(with_ca.to_text()),
                &Vendor::of("https://api.vendor.example/v1", Some("other")),
                Verdict::Differs(
                    "the codes were issued while the credential trusted another server CA \
                     (spec.serverCa)"
                        .into(),
                ),
            ),
        ];
        for (what, recorded, current, want) in cases {
            assert_eq!(&verdict(recorded.as_deref(), current), want, "{what}");
        }
        assert!(matches!(
            verdict(Some("not json"), &issuer),
            Verdict::Differs(m) if m.contains("cannot be read")
        ));
    }
}
