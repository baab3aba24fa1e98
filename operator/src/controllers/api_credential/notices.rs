//! Events for what a pass did beyond condition transitions: requests made
//! with annotations carried out (or refused, with why).

use kube::Resource;
use kube::runtime::events::{Event, EventType};
use otpilot_api::ApiCredential;

use super::certificate::ClientCertificate;
use crate::context::Context;

/// An Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
}

/// The Event for a renew request carried out (or not applicable).
pub fn renewal(request: &str, certificate: Option<&ClientCertificate>) -> Notice {
    match certificate {
        Some(cert) => {
            let serial = otpilot_pki::certificate_info(&cert.chain_pem)
                .map(|i| i.serial)
                .unwrap_or_default();
            Notice {
                type_: EventType::Normal,
                reason: otpilot_api::conditions::reasons::CERTIFICATE_RENEWED,
                note: format!(
                    "renew request {request:?}: issued a new client certificate (serial {serial}, \
                     valid until {}); the runtime Secret holds it",
                    cert.not_after
                ),
            }
        }
        None => Notice {
            type_: EventType::Warning,
            reason: otpilot_api::conditions::reasons::RENEW_NOT_APPLICABLE,
            note: format!(
                "renew request {request:?}: spec.clientCertificate is not set, so there is no \
                 client certificate to renew"
            ),
        },
    }
}

pub async fn publish(ctx: &Context, obj: &ApiCredential, notices: &[Notice]) {
    for notice in notices {
        let event = Event {
            type_: notice.type_,
            reason: notice.reason.to_owned(),
            note: Some(notice.note.clone()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::warn!(%error, reason = notice.reason, "failed to publish an Event");
        }
    }
}

/// The Warning for a vendor clock that drifted beyond the threshold.
pub fn clock_skew(offset_seconds: i64) -> Notice {
    Notice {
        type_: EventType::Warning,
        reason: otpilot_api::conditions::reasons::CLOCK_SKEW,
        note: format!(
            "the vendor's clock is {offset_seconds} s off this node's (its Date headers; more \
             than {} s): codes are computed on the vendor's time so logins still work, but fix \
             NTP on the node, or tell the vendor",
            super::status::CLOCK_SKEW_WARN_SECONDS
        ),
    }
}
