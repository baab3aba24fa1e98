//! `kubectl otpilot renew` and `reenroll`: set the request annotation
//! (value: now, RFC 3339), wait until the operator records the same value
//! in status, and print what it did.

use std::io::{BufRead as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use otpilot_api::ApiCredential;
use otpilot_api::labels::{REENROLL_ANNOTATION, RENEW_CERTIFICATE_ANNOTATION};
use otpilot_api::runtime_secret::keys;

use crate::args::{ReenrollArgs, RequestArgs};
use crate::kube_client;
use crate::status::{self, EventLine};

/// Which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Renew,
    Reenroll,
}

impl Request {
    pub fn annotation(self) -> &'static str {
        match self {
            Self::Renew => RENEW_CERTIFICATE_ANNOTATION,
            Self::Reenroll => REENROLL_ANNOTATION,
        }
    }

    /// The value the operator last handled, from status.
    pub fn handled(self, credential: &ApiCredential) -> Option<&str> {
        let status = credential.status.as_ref()?;
        match self {
            Self::Renew => status.handled_renew_request.as_deref(),
            Self::Reenroll => status.handled_reenroll_request.as_deref(),
        }
    }
}

/// What the credential looked like, before or after: public facts only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub certificate_serial: Option<String>,
    pub certificate_not_after: Option<String>,
    pub enrollment: Option<String>,
    pub recovery_codes_remaining: Option<u32>,
    pub ready: Option<(String, String)>,
}

pub async fn renew(args: &RequestArgs) -> anyhow::Result<String> {
    request(Request::Renew, args).await
}

pub async fn reenroll(args: &ReenrollArgs) -> anyhow::Result<String> {
    if !args.yes && !confirm(&args.request)? {
        bail!("not confirmed; nothing was changed (pass --yes to skip the question)");
    }
    request(Request::Reenroll, &args.request).await
}

/// Asks on the terminal; a closed stdin answers no.
fn confirm(args: &RequestArgs) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(
        err,
        "Re-enroll ApiCredential {}: the operator enrolls a new TOTP secret at the vendor \
         and the old one stops working. Continue? [y/N] ",
        args.name
    )?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

async fn request(kind: Request, args: &RequestArgs) -> anyhow::Result<String> {
    let cluster = kube_client::connect(&args.kube).await?;
    let api = Api::<ApiCredential>::namespaced(cluster.client.clone(), &cluster.namespace);
    let name = &args.name;
    let before_credential = api
        .get_opt(name)
        .await
        .with_context(|| format!("cannot read ApiCredential {}/{name}", cluster.namespace))?
        .with_context(|| format!("ApiCredential {}/{name} not found", cluster.namespace))?;
    let before = snapshot(&cluster.client, &cluster.namespace, &before_credential).await;
    let requested = jiff::Timestamp::now();
    let value = requested.to_string();
    let patch = serde_json::json!({ "metadata": { "annotations": { kind.annotation(): value } } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("cannot annotate ApiCredential {name}"))?;
    eprintln!(
        "Requested: {}={value}; waiting for the operator (up to {}s)…",
        kind.annotation(),
        args.timeout
    );
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let after_credential = loop {
        let current = api
            .get(name)
            .await
            .context("cannot read the ApiCredential")?;
        if kind.handled(&current) == Some(value.as_str()) {
            break current;
        }
        if Instant::now() >= deadline {
            bail!(
                "the operator has not acted on {}={value} within {}s \
                 (status.{} is {:?}); is it running? The request stays and is honoured when it does",
                kind.annotation(),
                args.timeout,
                match kind {
                    Request::Renew => "handledRenewRequest",
                    Request::Reenroll => "handledReenrollRequest",
                },
                kind.handled(&current).unwrap_or("unset"),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let after = snapshot(&cluster.client, &cluster.namespace, &after_credential).await;
    let report = status::fetch(&cluster.client, &cluster.namespace, name).await?;
    let text = outcome(kind, &before, &after, &report.events, requested);
    if let Some(warning) = refusal(&report.events, &value) {
        // What it did, then why the request was not carried out.
        print!("{text}");
        bail!("the operator did not carry out the request: {warning}");
    }
    Ok(text)
}

/// A Warning Event about this request (the operator names the request's
/// value in it), e.g. ReenrollUnsupported.
pub fn refusal(events: &[EventLine], value: &str) -> Option<String> {
    events
        .iter()
        .find(|e| e.type_ == "Warning" && e.message.contains(value))
        .map(|e| format!("{}: {}", e.reason, e.message))
}

async fn snapshot(client: &kube::Client, namespace: &str, c: &ApiCredential) -> Snapshot {
    let status = c.status.clone().unwrap_or_default();
    let runtime = status.secrets.as_ref().and_then(|s| s.runtime.clone());
    let serial = match runtime {
        Some(secret) => certificate_serial(client, namespace, &secret).await,
        None => None,
    };
    Snapshot {
        certificate_serial: serial,
        certificate_not_after: status.certificate_not_after.map(|t| t.0.to_string()),
        enrollment: status.enrollment.map(|e| format!("{e:?}")),
        recovery_codes_remaining: status.recovery_codes_remaining,
        ready: status
            .conditions
            .iter()
            .find(|c| c.type_ == otpilot_api::conditions::READY)
            .map(|c| (c.status.clone(), c.reason.clone())),
    }
}

/// The serial of the client certificate in the runtime Secret (only its
/// public `tls.crt` is read).
async fn certificate_serial(
    client: &kube::Client,
    namespace: &str,
    secret: &str,
) -> Option<String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(secret)
        .await
        .ok()??;
    let pem = secret.data?.remove(keys::TLS_CRT)?;
    let pem = String::from_utf8(pem.0).ok()?;
    otpilot_pki::certificate_info(&pem).ok().map(|i| i.serial)
}

fn or_dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".to_owned())
}

/// What the operator did, from the snapshots before and after and the
/// Events since the request was made (`since`).
pub fn outcome(
    kind: Request,
    before: &Snapshot,
    after: &Snapshot,
    events: &[EventLine],
    since: jiff::Timestamp,
) -> String {
    let mut out = String::new();
    match kind {
        Request::Renew => {
            out.push_str("The operator handled the renew request.\n");
            let changed = after.certificate_serial != before.certificate_serial;
            out.push_str(&format!(
                "  Certificate serial: {} (was {}){}\n",
                or_dash(&after.certificate_serial),
                or_dash(&before.certificate_serial),
                if changed {
                    ""
                } else {
                    " — unchanged: see the Events and conditions"
                }
            ));
            out.push_str(&format!(
                "  Not after:          {} (was {})\n",
                or_dash(&after.certificate_not_after),
                or_dash(&before.certificate_not_after)
            ));
        }
        Request::Reenroll => {
            out.push_str("The operator handled the re-enroll request.\n");
            out.push_str(&format!(
                "  Enrollment:         {} (was {})\n",
                or_dash(&after.enrollment),
                or_dash(&before.enrollment)
            ));
            out.push_str(&format!(
                "  Recovery codes:     {} left (was {})\n",
                or_dash(&after.recovery_codes_remaining),
                or_dash(&before.recovery_codes_remaining)
            ));
        }
    }
    if let Some((status, reason)) = &after.ready {
        out.push_str(&format!("  Ready:              {status} ({reason})\n"));
    }
    let recent: Vec<&EventLine> = events
        .iter()
        .filter(|e| e.at.is_some_and(|t| t >= since))
        .collect();
    if !recent.is_empty() {
        out.push_str("Events since the request:\n");
        for e in recent {
            out.push_str(&format!("  {} {}: {}\n", e.type_, e.reason, e.message));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn event(time: &str, reason: &str) -> EventLine {
        EventLine {
            time: Some(time.into()),
            at: time.parse().ok(),
            type_: "Normal".into(),
            reason: reason.into(),
            message: "m".into(),
            count: 1,
        }
    }

    #[test]
    fn a_warning_naming_the_request_is_a_refusal() {
        let mut refused = event("2026-01-02T00:00:01Z", "ReenrollUnsupported");
        refused.type_ = "Warning".into();
        refused.message =
            "re-enroll request \"R1\" not carried out: reset MFA at the vendor".into();
        let mut other = event("2026-01-02T00:00:01Z", "VendorUnreachable");
        other.type_ = "Warning".into();
        let cases = [
            (vec![refused.clone()], "R1", true),
            (vec![refused], "R2", false),
            (vec![other], "R1", false),
            (
                vec![event("2026-01-02T00:00:01Z", "Reenrolled")],
                "R1",
                false,
            ),
        ];
        for (events, value, want) in cases {
            assert_eq!(
                refusal(&events, value).is_some(),
                want,
                "{events:?} {value}"
            );
        }
    }

    #[test]
    fn the_outcome_compares_before_and_after() {
        let before = Snapshot {
            certificate_serial: Some("0A".into()),
            certificate_not_after: Some("2026-01-01T00:00:00Z".into()),
            enrollment: Some("Enrolled".into()),
            recovery_codes_remaining: Some(3),
            ready: Some(("True".into(), "Reconciled".into())),
        };
        let after = Snapshot {
            certificate_serial: Some("0B".into()),
            certificate_not_after: Some("2026-02-01T00:00:00Z".into()),
            recovery_codes_remaining: Some(10),
            ..before.clone()
        };
        let events = [
            event("2026-01-01T00:00:00Z", "Old"),
            event("2026-01-02T00:00:01Z", "Issued"),
        ];
        let cases = [
            (
                Request::Renew,
                &after,
                "The operator handled the renew request.\n  \
                 Certificate serial: 0B (was 0A)\n  \
                 Not after:          2026-02-01T00:00:00Z (was 2026-01-01T00:00:00Z)\n  \
                 Ready:              True (Reconciled)\n\
                 Events since the request:\n  Normal Issued: m\n",
            ),
            (
                Request::Renew,
                &before,
                "The operator handled the renew request.\n  \
                 Certificate serial: 0A (was 0A) — unchanged: see the Events and conditions\n  \
                 Not after:          2026-01-01T00:00:00Z (was 2026-01-01T00:00:00Z)\n  \
                 Ready:              True (Reconciled)\n\
                 Events since the request:\n  Normal Issued: m\n",
            ),
            (
                Request::Reenroll,
                &after,
                "The operator handled the re-enroll request.\n  \
                 Enrollment:         Enrolled (was Enrolled)\n  \
                 Recovery codes:     10 left (was 3)\n  \
                 Ready:              True (Reconciled)\n\
                 Events since the request:\n  Normal Issued: m\n",
            ),
        ];
        for (kind, after, want) in cases {
            assert_eq!(
                outcome(
                    kind,
                    &before,
                    after,
                    &events,
                    "2026-01-02T00:00:00Z".parse().expect("time")
                ),
                want
            );
        }
    }
}
