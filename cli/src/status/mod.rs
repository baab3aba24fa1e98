//! `kubectl otpilot status`: the credential, its Events and the pods that
//! hold its shared session, rendered by [`render`].

mod next_step;
mod render;

pub use render::{EventLine, SessionHolder, StatusReport, render_text};

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;
use otpilot_api::ApiCredential;
use otpilot_api::labels;

use crate::args::{OutputFormat, StatusArgs};
use crate::kube_client;

/// How many Events to show, newest last.
const RECENT_EVENTS: usize = 10;

pub async fn run(args: &StatusArgs) -> anyhow::Result<String> {
    let cluster = kube_client::connect(&args.kube).await?;
    let report = fetch(&cluster.client, &cluster.namespace, &args.name).await?;
    Ok(match args.output {
        OutputFormat::Text => render_text(&report),
        OutputFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        OutputFormat::Yaml => serde_saphyr::to_string(&report)?,
    })
}

pub async fn fetch(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<StatusReport> {
    let credential = Api::<ApiCredential>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .with_context(|| format!("cannot read ApiCredential {namespace}/{name}"))?
        .with_context(|| format!("ApiCredential {namespace}/{name} not found"))?;
    let events = recent_events(client, namespace, name).await?;
    let holders = session_holders(client, namespace, name).await?;
    Ok(StatusReport::new(&credential, namespace, events, holders))
}

async fn recent_events(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Vec<EventLine>> {
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind=ApiCredential,involvedObject.name={name}"
    ));
    let list = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .context("cannot list Events")?;
    let mut lines: Vec<EventLine> = list.items.into_iter().map(event_line).collect();
    lines.sort_by_key(|l| l.at);
    let skip = lines.len().saturating_sub(RECENT_EVENTS);
    Ok(lines.split_off(skip))
}

fn event_line(e: Event) -> EventLine {
    // Events published through events.k8s.io carry microseconds; older
    // ones whole seconds.
    let at = e
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0));
    let time = at.map(|t| {
        t.round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Second)
                .mode(jiff::RoundMode::Trunc),
        )
        .unwrap_or(t)
        .to_string()
    });
    let count = e
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(e.count)
        .unwrap_or(1);
    EventLine {
        time,
        at,
        type_: e.type_.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        message: e.message.unwrap_or_default(),
        count,
    }
}

/// Leases labelled with the credential: where pods share one session, the
/// holder is the pod that logs in for the others.
async fn session_holders(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Vec<SessionHolder>> {
    let params = ListParams::default().labels(&format!("{}={name}", labels::CREDENTIAL));
    let list = Api::<Lease>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .context("cannot list Leases")?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|lease| {
            let holder = lease.spec?.holder_identity.filter(|h| !h.is_empty())?;
            Some(SessionHolder {
                lease: lease.metadata.name.unwrap_or_default(),
                holder,
            })
        })
        .collect())
}
