//! One pass over an ApiCredential: its client certificate, its references,
//! the enrollment or re-enrollment at the vendor, and the runtime Secret
//! rewritten from the current spec. What it found becomes conditions in
//! `apply` (mod.rs).

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::conditions::{ENROLLED, reasons};
use otpilot_api::labels;
use otpilot_profile::{Engine, HttpSettings};

use super::{
    certificate, dereference, enrollment, failure, notices, recovery_vendor, reenroll, requests,
    secrets, status, withdraw,
};
use crate::conditions::Desired;
use crate::context::Context;
use recovery_vendor::Vendor;

/// The HTTPS settings for this credential's vendor.
pub fn engine_settings(resolved: &dereference::Resolved, ctx: &Context) -> HttpSettings {
    ctx.egress.apply(HttpSettings {
        request_timeout: ctx.vendor_timeout,
        server_ca_pem: resolved.server_ca.clone(),
        client_identity: resolved.client_certificate.as_ref().map(|c| {
            otpilot_profile::ClientIdentity {
                cert_chain_pem: c.chain_pem.clone(),
                key_pem: c.key_pem.clone(),
            }
        }),
        ..HttpSettings::default()
    })
}

/// The outcome of one pass, before it becomes conditions.
pub struct Pass {
    pub certificate: Desired,
    pub certificate_not_after: Option<jiff::Timestamp>,
    /// When the certificate is renewed: the latest moment to look again.
    pub renew_at: Option<jiff::Timestamp>,
    pub enrolled: Desired,
    pub retry: Option<(bool, Option<Duration>)>,
    /// Annotation requests carried out by this pass, for status.
    pub handled_renew: Option<String>,
    pub handled_reenroll: Option<String>,
    /// The vendor's clock against ours, when this pass called the vendor.
    pub clock_offset_ms: Option<i64>,
    /// Events for what the pass did beyond condition transitions.
    pub notices: Vec<notices::Notice>,
}

/// Runs one pass; never fails: what went wrong is in the returned conditions.
pub async fn enroll(obj: &ApiCredential, ctx: &Context, namespace: &str) -> Pass {
    let mut pass = Pass {
        certificate: status::certificate_not_required(),
        certificate_not_after: None,
        renew_at: None,
        enrolled: status::enrolled_ok(),
        retry: None,
        handled_renew: None,
        handled_reenroll: None,
        clock_offset_ms: None,
        notices: Vec::new(),
    };
    let failed =
        |mut pass: Pass, reason: &'static str, message: String, retry_after, person: bool| {
            pass.enrolled = Desired::failed(ENROLLED, reason, message);
            pass.retry = Some((person, retry_after));
            pass
        };
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let stored = match secrets::read(&secrets_api, &obj.name_any()).await {
        Ok(s) => s,
        Err(e) => {
            return failed(
                pass,
                otpilot_api::conditions::reasons::KUBERNETES_ERROR,
                e.to_string(),
                None,
                false,
            );
        }
    };
    if let Err(e) = super::adopt::adopt(&secrets_api, obj, &stored.unowned).await {
        return failed(
            pass,
            otpilot_api::conditions::reasons::KUBERNETES_ERROR,
            format!("failed to adopt the credential's restored Secrets: {e}"),
            None,
            false,
        );
    }
    let renew_request = requests::pending(
        obj.annotations()
            .get(labels::RENEW_CERTIFICATE_ANNOTATION)
            .map(String::as_str),
        &[obj
            .status
            .as_ref()
            .and_then(|s| s.handled_renew_request.as_deref())],
    )
    .map(str::to_owned);
    let mut client_certificate = None;
    if let Some(spec) = &obj.spec.client_certificate {
        match certificate::ensure(
            ctx,
            obj,
            spec,
            stored.runtime.as_ref(),
            renew_request.is_some(),
            jiff::Timestamp::now(),
        )
        .await
        {
            Ok(cert) => {
                pass.certificate =
                    status::certificate_issued(&spec.ca_ref, cert.not_after, cert.renew_at);
                pass.certificate_not_after = Some(cert.not_after);
                pass.renew_at = cert.renew_at;
                client_certificate = Some(cert);
            }
            Err(e) => {
                pass.certificate = e.condition();
                if e.withdraws() {
                    match withdraw::withdraw(ctx, obj).await {
                        Ok(true) => pass.notices.push(withdraw::withdrawn_notice(&e)),
                        Ok(false) => {}
                        // Tried again on the next pass, which fails the same way.
                        Err(error) => tracing::warn!(
                            credential = obj.name_any(),
                            %error,
                            "failed to remove the client certificate from the runtime Secret"
                        ),
                    }
                }
                return failed(
                    pass,
                    reasons::CA_NOT_READY,
                    "waiting for the client certificate (see CertificateReady)".into(),
                    None,
                    false,
                );
            }
        }
    }
    let mut resolved = match dereference::resolve(&ctx.client, namespace, &obj.spec).await {
        Ok(r) => r,
        Err(e) => return failed(pass, e.reason(), e.to_string(), None, false),
    };
    resolved.client_certificate = client_certificate;
    if !stored.recovery_codes.is_empty() && stored.recovery_issuer.is_none() {
        // Codes from before the issuer was recorded: the vendor now is
        // taken as their issuer, before any vendor call (see recovery_vendor).
        let issuer = Vendor::of(&obj.spec.base_url, resolved.server_ca.as_deref());
        if let Err(e) = recovery_vendor::record(&secrets_api, obj, &issuer).await {
            return failed(pass, reasons::KUBERNETES_ERROR, e.to_string(), None, false);
        }
    }
    let engine = match Engine::new(
        resolved.profile.clone(),
        &obj.spec.base_url,
        engine_settings(&resolved, ctx),
    ) {
        Ok(e) => e.with_timer(ctx.timer.clone()),
        Err(e) => return failed(pass, reasons::INVALID_SECRET, e.to_string(), None, true),
    };
    let result = reenroll::ensure(ctx, obj, &resolved, &engine, &secrets_api, &stored).await;
    // Known when this pass talked to the vendor.
    pass.clock_offset_ms = engine.clock_offset_ms();
    match result {
        Ok(outcome) => {
            // Rewrite the runtime Secret from the current spec (base URL,
            // profile, variables may have changed), keeping the seed.
            if let Ok(now) = secrets::read(&secrets_api, &obj.name_any()).await
                && let Some(runtime) = &now.runtime
            {
                pass.enrolled = status::enrolled_with_codes(
                    now.recovery_codes.len(),
                    engine
                        .profile()
                        .has_flow(otpilot_profile::FlowKind::RecoveryLogin),
                );
                let bundle = enrollment::runtime_bundle(
                    obj,
                    &resolved,
                    runtime.totp.clone(),
                    runtime.last_code_step,
                );
                if let Err(e) = secrets::write_runtime(&secrets_api, obj, &bundle).await {
                    return failed(
                        pass,
                        otpilot_api::conditions::reasons::KUBERNETES_ERROR,
                        e.to_string(),
                        None,
                        false,
                    );
                }
            }
            pass.handled_reenroll = outcome.handled;
            pass.notices.extend(outcome.notice);
            if let Some(request) = renew_request {
                pass.notices.push(notices::renewal(
                    &request,
                    resolved.client_certificate.as_ref(),
                ));
                pass.handled_renew = Some(request);
            }
            pass
        }
        Err(e) => {
            let reason = e.reason_with(engine.profile());
            ctx.metrics.enrollment_finished(reason);
            failed(
                pass,
                reason,
                failure::message(&e, reason),
                e.retry_after(),
                // Not retried fast: repeating a refused password can lock
                // the account out, and only a person can fix it.
                e.needs_a_person() || failure::refused_input(reason),
            )
        }
    }
}
