//! The credential's client certificate: issued by its ClientCA, kept in the
//! runtime Secret (`tls.crt` / `tls.key`), renewed `renewBefore` its expiry
//! or as soon as the ClientCA's key changed. When the ClientCA refuses the
//! credential (its namespace is no longer allowed, or what it asks for is
//! outside the issuance policy), the key and certificate issued before are
//! withdrawn from the runtime Secret ([`super::withdraw`]).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::api_credential::ClientCertificateSpec;
use otpilot_api::client_ca::ClientCA;
use otpilot_api::conditions::{CERTIFICATE_READY, reasons};
use otpilot_api::runtime_secret::RuntimeBundle;
use otpilot_pki::{Renewal, Requester, check_policy, renewal};
use secrecy::SecretString;

use crate::conditions::Desired;
use crate::context::Context;
use crate::controllers::client_ca;

/// A client certificate in use. `Debug` shows no key.
#[derive(Clone)]
pub struct ClientCertificate {
    pub chain_pem: String,
    pub key_pem: SecretString,
    pub not_after: Timestamp,
    pub renew_at: Option<Timestamp>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("not_after", &self.not_after)
            .field("renew_at", &self.renew_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("failed to find ClientCA {0}: create it, or fix spec.clientCertificate.caRef")]
    CaNotFound(String),
    #[error("failed to use ClientCA {name}: it is not ready ({message})")]
    CaNotReady { name: String, message: String },
    #[error(
        "failed to use ClientCA {ca}: namespace {namespace} is not in its \
         spec.allowedNamespaces; a cluster admin must add it there"
    )]
    NamespaceNotAllowed { ca: String, namespace: String },
    #[error(
        "failed to use ClientCA {ca}: {violation}; change spec.clientCertificate, or a \
         cluster admin must widen the ClientCA's spec.issuancePolicy"
    )]
    CertificateNotAllowed { ca: String, violation: String },
    #[error("failed to use ClientCA {ca}: {message}")]
    CaInvalid { ca: String, message: String },
    #[error("failed to issue the client certificate: {0}")]
    Issue(String),
    #[error("failed to read ClientCA {name}: {source}")]
    Kubernetes {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl CertificateError {
    pub fn reason(&self) -> &'static str {
        match self {
            CertificateError::CaNotFound(_) => reasons::CA_NOT_FOUND,
            CertificateError::CaNotReady { .. } | CertificateError::Kubernetes { .. } => {
                reasons::CA_NOT_READY
            }
            CertificateError::NamespaceNotAllowed { .. } => reasons::NAMESPACE_NOT_ALLOWED,
            CertificateError::CertificateNotAllowed { .. } => reasons::CERTIFICATE_NOT_ALLOWED,
            CertificateError::CaInvalid { .. } => reasons::CA_INVALID,
            CertificateError::Issue(_) => reasons::ISSUE_FAILED,
        }
    }

    pub fn condition(&self) -> Desired {
        Desired::failed(CERTIFICATE_READY, self.reason(), self.to_string())
    }

    /// Whether the ClientCA itself refuses the credential (a decision of its
    /// spec, not a passing failure): the certificate it issued before must
    /// not stay in use.
    pub fn withdraws(&self) -> bool {
        matches!(
            self,
            CertificateError::NamespaceNotAllowed { .. }
                | CertificateError::CertificateNotAllowed { .. }
        )
    }
}

/// Whether to keep the stored certificate or issue a new one (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep { renew_at: Timestamp },
    Issue,
}

pub fn decide(
    stored: Option<(Timestamp, Timestamp)>,
    issued_by_current_ca: bool,
    renew_before: Duration,
    renewal_requested: bool,
    now: Timestamp,
) -> Decision {
    match stored {
        _ if renewal_requested => Decision::Issue,
        Some((not_before, not_after)) if issued_by_current_ca => {
            match renewal(not_before, not_after, renew_before, now) {
                Renewal::Valid { renew_at } => Decision::Keep { renew_at },
                Renewal::RenewNow { .. } | Renewal::Expired => Decision::Issue,
            }
        }
        _ => Decision::Issue,
    }
}

pub async fn ensure(
    ctx: &Context,
    credential: &ApiCredential,
    spec: &ClientCertificateSpec,
    stored: Option<&RuntimeBundle>,
    renewal_requested: bool,
    now: Timestamp,
) -> Result<ClientCertificate, CertificateError> {
    let cas: Api<ClientCA> = Api::all(ctx.client.clone());
    let ca = cas
        .get_opt(&spec.ca_ref)
        .await
        .map_err(|source| CertificateError::Kubernetes {
            name: spec.ca_ref.clone(),
            source,
        })?
        .ok_or_else(|| CertificateError::CaNotFound(spec.ca_ref.clone()))?;
    let namespace = credential.namespace().unwrap_or_default();
    let listed = ca
        .spec
        .allowed_namespaces
        .as_ref()
        .is_some_and(|a| a.names.contains(&namespace));
    let allowed = listed || {
        let labels = if ca
            .spec
            .allowed_namespaces
            .as_ref()
            .is_some_and(|a| a.selector.is_some())
        {
            let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
            namespaces
                .get_opt(&namespace)
                .await
                .map_err(|source| CertificateError::Kubernetes {
                    name: spec.ca_ref.clone(),
                    source,
                })?
                .and_then(|n| n.metadata.labels)
                .unwrap_or_default()
        } else {
            Default::default()
        };
        ca.spec
            .allows_namespace(&namespace, &labels)
            .map_err(|e| CertificateError::CaInvalid {
                ca: spec.ca_ref.clone(),
                message: e.to_string(),
            })?
    };
    if !allowed {
        return Err(CertificateError::NamespaceNotAllowed {
            ca: spec.ca_ref.clone(),
            namespace,
        });
    }
    let name = credential.name_any();
    let requester = Requester {
        namespace: &namespace,
        name: &name,
    };
    let policy = ca.spec.issuance_policy.as_ref();
    let not_allowed =
        |violation: otpilot_pki::PolicyViolation| CertificateError::CertificateNotAllowed {
            ca: spec.ca_ref.clone(),
            violation: violation.to_string(),
        };
    let validity = spec
        .duration
        .parse()
        .map_err(|e| CertificateError::Issue(format!("spec.clientCertificate.duration: {e}")))?;
    check_policy(policy, &spec.subject, validity, requester).map_err(not_allowed)?;
    let material = client_ca::load_material(ctx, &ca, now).await.map_err(|e| {
        CertificateError::CaNotReady {
            name: spec.ca_ref.clone(),
            message: e.to_string(),
        }
    })?;
    let renew_before = spec
        .renew_before
        .parse()
        .map_err(|e| CertificateError::Issue(format!("spec.clientCertificate.renewBefore: {e}")))?;

    let existing = stored.and_then(|r| Some((r.tls_crt.clone()?, r.tls_key.clone()?)));
    if let Some((crt, key)) = &existing
        && let Ok(info) = otpilot_pki::certificate_info(crt)
    {
        // A certificate issued before the policy (or before it narrowed)
        // is replaced by one the policy allows.
        let ours = material.has_issued(crt).unwrap_or(false)
            && stored_within_policy(policy, crt, info.not_before, info.not_after, requester);
        if let Decision::Keep { renew_at } = decide(
            Some((info.not_before, info.not_after)),
            ours,
            renew_before,
            renewal_requested,
            now,
        ) {
            return Ok(ClientCertificate {
                chain_pem: crt.clone(),
                key_pem: key.clone(),
                not_after: info.not_after,
                renew_at: Some(renew_at),
            });
        }
    }
    let issued = otpilot_pki::issue_client_certificate(
        &material,
        &spec.subject,
        spec.key_algorithm,
        validity,
        now,
    )
    .map_err(|e| CertificateError::Issue(e.to_string()))?;
    tracing::info!(
        credential = credential.name_any(),
        serial = issued.serial,
        not_after = %issued.not_after,
        "issued a client certificate"
    );
    let renew_at = match renewal(issued.not_before, issued.not_after, renew_before, now) {
        Renewal::Valid { renew_at } => Some(renew_at),
        _ => None,
    };
    Ok(ClientCertificate {
        chain_pem: issued.chain_pem,
        key_pem: issued.key_pem,
        not_after: issued.not_after,
        renew_at,
    })
}

/// Whether a stored certificate's subject and lifetime are within `policy`.
fn stored_within_policy(
    policy: Option<&otpilot_api::client_ca::IssuancePolicy>,
    crt: &str,
    not_before: Timestamp,
    not_after: Timestamp,
    requester: Requester<'_>,
) -> bool {
    if policy.is_none() {
        return true;
    }
    let Ok(subject) = otpilot_pki::certificate_subject(crt) else {
        return false;
    };
    // Issued certificates start CLOCK_SKEW_ALLOWANCE early: not part of
    // the duration that was asked for.
    let lifetime = Duration::from_secs(
        u64::try_from(not_before.duration_until(not_after).as_secs()).unwrap_or(0),
    )
    .saturating_sub(otpilot_pki::CLOCK_SKEW_ALLOWANCE);
    check_policy(policy, &subject, lifetime, requester).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("valid")
    }

    #[test]
    fn a_certificate_is_kept_until_its_renewal_time_and_reissued_for_a_new_ca() {
        let before = Duration::from_secs(100);
        let fresh = Some((at(0), at(1000)));
        let cases = [
            ("none stored", None, true, false, at(10), Decision::Issue),
            (
                "fresh",
                fresh,
                true,
                false,
                at(10),
                Decision::Keep { renew_at: at(900) },
            ),
            ("requested", fresh, true, true, at(10), Decision::Issue),
            ("renewal time", fresh, true, false, at(900), Decision::Issue),
            ("expired", fresh, true, false, at(2000), Decision::Issue),
            ("other CA", fresh, false, false, at(10), Decision::Issue),
        ];
        for (name, stored, ours, requested, now, want) in cases {
            assert_eq!(decide(stored, ours, before, requested, now), want, "{name}");
        }
    }
}
