//! `kubectl otpilot ca export`: a ClientCA's certificate for a vendor.

use anyhow::{Context as _, bail};
use kube::Api;
use otpilot_api::ClientCA;

use crate::kube_client;

/// The PEM (for stdout) and the fingerprint line (for stderr).
pub struct Export {
    pub pem: String,
    pub fingerprint_line: String,
}

pub async fn export(name: &str, kube: &crate::args::KubeArgs) -> anyhow::Result<Export> {
    let cluster = kube_client::connect(kube).await?;
    let ca = Api::<ClientCA>::all(cluster.client)
        .get_opt(name)
        .await
        .with_context(|| format!("cannot read ClientCA {name}"))?
        .with_context(|| format!("ClientCA {name} not found"))?;
    exported(
        name,
        ca.status.as_ref().and_then(|s| s.certificate.as_deref()),
    )
}

/// What to print for a ClientCA whose status holds `certificate`.
pub fn exported(name: &str, certificate: Option<&str>) -> anyhow::Result<Export> {
    let Some(pem) = certificate.filter(|p| !p.trim().is_empty()) else {
        bail!(
            "ClientCA {name} has no certificate in its status yet: \
             see `kubectl describe clientca {name}` for why it is not Ready"
        );
    };
    let info = otpilot_pki::certificate_info(pem)
        .with_context(|| format!("ClientCA {name}'s status.certificate cannot be read"))?;
    let mut pem = pem.to_owned();
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    Ok(Export {
        pem,
        fingerprint_line: format!(
            "SHA-256 fingerprint: {} (subject {}, expires {})",
            info.fingerprint_sha256, info.subject, info.not_after
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_bad_certificate_is_explained() {
        for (certificate, words) in [
            (None, "no certificate in its status yet"),
            (Some(""), "no certificate in its status yet"),
            (Some("not pem"), "cannot be read"),
        ] {
            let err = exported("vendors", certificate).err().expect("refused");
            assert!(format!("{err:#}").contains(words), "{err:#}");
        }
    }
}
