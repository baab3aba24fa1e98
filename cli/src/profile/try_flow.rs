//! `kubectl otpilot profile try`: one flow, step by step, against a vendor
//! or the simulator, keeping what later flows need in the state file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use otpilot_api::api_credential::TotpOverrides;
use otpilot_profile::{
    Checkpoint, ClientIdentity, Engine, FlowKind, FlowRun, HttpSettings, Inputs, Profile,
};
use secrecy::{ExposeSecret, SecretString};

use super::outcome::{finish, value_of};
use super::report::{Extracted, step_line};
use super::source;
use super::state::{State, StoredTotp, from_unix_seconds};
use crate::args::{FlowArg, TryArgs};

pub fn flow_kind(flow: FlowArg) -> FlowKind {
    match flow {
        FlowArg::Enroll => FlowKind::Enroll,
        FlowArg::Login => FlowKind::Login,
        FlowArg::Refresh => FlowKind::Refresh,
        FlowArg::RecoveryLogin => FlowKind::RecoveryLogin,
        FlowArg::Disable => FlowKind::Disable,
    }
}

/// A secret from a file, without the trailing newline editors add.
fn read_secret(path: &Path, what: &str) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    Ok(SecretString::from(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

/// The `--secret-value` files' texts, each a name the profile declares:
/// a value the profile never uses is a mistake worth stopping for.
fn secret_values(
    args: &TryArgs,
    profile: &Profile,
) -> anyhow::Result<BTreeMap<String, SecretString>> {
    if let Some(problem) =
        profile.undeclared_secret_value(args.secret_values.iter().map(|(name, _)| name.as_str()))
    {
        bail!("--secret-value: {problem}");
    }
    args.secret_values
        .iter()
        .map(|(name, path)| {
            Ok((
                name.clone(),
                read_secret(path, &format!("{name} secret value"))?,
            ))
        })
        .collect()
}

/// `name=value` pairs of `--var`.
pub fn parse_vars(vars: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    vars.iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => Ok((k.to_owned(), val.to_owned())),
            _ => bail!("--var {v:?}: expected NAME=VALUE"),
        })
        .collect()
}

fn settings(args: &TryArgs) -> anyhow::Result<HttpSettings> {
    let server_ca_pem = args
        .server_ca
        .as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --server-ca {}", p.display()))
        })
        .transpose()?;
    let client_identity = match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => Some(ClientIdentity {
            cert_chain_pem: std::fs::read_to_string(cert)
                .with_context(|| format!("cannot read --client-cert {}", cert.display()))?,
            key_pem: read_secret(key, "client key")?,
        }),
        _ => None,
    };
    Ok(HttpSettings {
        server_ca_pem,
        client_identity,
        ..HttpSettings::default()
    })
}

pub async fn run(args: &TryArgs) -> anyhow::Result<()> {
    let profile: Arc<Profile> = source::load_arg(&args.profile).map_err(anyhow::Error::new)?;
    let flow = flow_kind(args.flow);
    if !profile.has_flow(flow) {
        let flows: Vec<&str> = FlowKind::ALL
            .into_iter()
            .filter(|f| profile.has_flow(*f))
            .map(FlowKind::as_str)
            .collect();
        bail!(
            "{flow}: the profile has no such flow (it has {})",
            flows.join(", ")
        );
    }
    let engine = Engine::new(profile.clone(), &args.base_url, settings(args)?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut state = match &args.state {
        Some(path) => State::read(path)?,
        None => State::new(),
    };
    if let Some(url) = &state.base_url
        && url != &args.base_url
    {
        bail!(
            "the state file belongs to {url}, not {}: use another --state file per vendor account",
            args.base_url
        );
    }
    state.base_url = Some(args.base_url.clone());
    let totp = state.totp.as_ref().map(StoredTotp::to_key).transpose()?;
    if let (Some(key), Some(step)) = (&totp, state.last_code_step) {
        // The code of that step was sent by an earlier run: never again.
        engine.timer().mark_used(key, step);
    }
    let inputs = Inputs {
        username: args.username.clone(),
        password: args
            .password_file
            .as_deref()
            .map(|p| read_secret(p, "password"))
            .transpose()?,
        api_key: args
            .api_key_file
            .as_deref()
            .map(|p| read_secret(p, "API key"))
            .transpose()?,
        totp,
        totp_overrides: TotpOverrides {
            period: args.totp_period,
            ..TotpOverrides::default()
        },
        variables: parse_vars(&args.vars)?,
        secret_values: secret_values(args, &profile)?,
        ..Inputs::default()
    };
    let mut run = open(&engine, flow, &inputs, &mut state)?;
    let total = profile.flow(flow).map_or(0, |f| f.steps.len());
    let steps = profile
        .flow(flow)
        .map(|f| f.steps.clone())
        .unwrap_or_default();
    let mut ran = 0;
    loop {
        if args.max_steps.is_some_and(|max| ran >= max) && !run.is_done() {
            save_checkpoint(&mut state, &run, &profile);
            save(args, &state)?;
            let next = if flow == FlowKind::Enroll && args.state.is_some() {
                "; the state file keeps the enrollment's progress: run --flow enroll again to continue"
            } else {
                ""
            };
            println!("Stopped after {ran} step(s) as asked (--max-steps){next}.");
            return Ok(());
        }
        let result = run.step().await;
        let checkpoint = run.checkpoint().clone();
        if let Some(step) = checkpoint.last_code_step {
            state.last_code_step = Some(step);
        }
        match result {
            Ok(Some(report)) => {
                ran += 1;
                let extracted = report
                    .extracted
                    .iter()
                    .map(|name| Extracted {
                        name: name.clone(),
                        // Instants (an expiry) are no secret, and show whether
                        // the profile reads them right.
                        value: (args.show_secrets || checkpoint.times.contains_key(name))
                            .then(|| value_of(&checkpoint, name)),
                    })
                    .collect::<Vec<_>>();
                let step = steps.get(report.index).cloned().unwrap_or_default();
                println!("{}", step_line(total, &step, &report, &extracted));
                save_checkpoint(&mut state, &run, &profile);
                save(args, &state)?;
            }
            Ok(None) => break,
            Err(e) => {
                save_checkpoint(&mut state, &run, &profile);
                save(args, &state)?;
                let resume = if flow == FlowKind::Enroll && args.state.is_some() {
                    "; the state file keeps the enrollment's progress: fix the cause and run \
                     --flow enroll again to resume"
                } else {
                    ""
                };
                bail!("{e}{resume}");
            }
        }
    }
    finish(args, run, &mut state, flow)?;
    save(args, &state)
}

fn save(args: &TryArgs, state: &State) -> anyhow::Result<()> {
    match &args.state {
        Some(path) => state.write(path),
        None => Ok(()),
    }
}

/// An enrollment in progress is kept in the state, to resume; other flows
/// start over (they change nothing at the vendor that a rerun undoes).
fn save_checkpoint(state: &mut State, run: &FlowRun<'_>, profile: &Profile) {
    if run.flow() == FlowKind::Enroll && !run.is_done() {
        let record = run.checkpoint().to_record(profile);
        state.interrupted_enroll = Some(record.expose_secret().to_owned());
    }
}

/// Starts the flow, or resumes an interrupted enrollment.
fn open<'e>(
    engine: &'e Engine,
    flow: FlowKind,
    inputs: &Inputs,
    state: &mut State,
) -> anyhow::Result<FlowRun<'e>> {
    let fresh = |values: BTreeMap<String, SecretString>, times| Checkpoint {
        flow,
        next_step: 0,
        values,
        totp: None,
        recovery_codes: None,
        times,
        last_code_step: state.last_code_step,
    };
    let run = match flow {
        FlowKind::Enroll => match state.interrupted_enroll.take() {
            Some(record) => {
                let checkpoint =
                    Checkpoint::from_record(&record, engine.profile()).map_err(|e| {
                        anyhow::anyhow!(
                            "{e}; remove interruptedEnroll from the state file to start over"
                        )
                    })?;
                println!(
                    "Resuming the interrupted enrollment at step {} of {}.",
                    checkpoint.next_step + 1,
                    engine.profile().flow(flow).map_or(0, |f| f.steps.len())
                );
                engine.resume(checkpoint, inputs)
            }
            None => engine.start(flow, inputs),
        },
        FlowKind::Login | FlowKind::Disable => engine.start(flow, inputs),
        FlowKind::Refresh => {
            let Some(session) = &state.session else {
                bail!(
                    "no session in the state file: run --flow login first (with the same --state)"
                );
            };
            let mut values = BTreeMap::new();
            values.insert(
                "access_token".to_owned(),
                SecretString::from(session.access_token.clone()),
            );
            if let Some(r) = &session.refresh_token {
                values.insert("refresh_token".to_owned(), SecretString::from(r.clone()));
            }
            let times = session
                .refresh_expires_at
                .map(|t| BTreeMap::from([("refresh_expires_at".to_owned(), from_unix_seconds(t))]))
                .unwrap_or_default();
            engine.resume(fresh(values, times), inputs)
        }
        FlowKind::RecoveryLogin => {
            let Some(code) = state.recovery_codes.first() else {
                bail!(
                    "no recovery code in the state file: run --flow enroll first (with the same --state)"
                );
            };
            let values =
                BTreeMap::from([("recovery_code".to_owned(), SecretString::from(code.clone()))]);
            engine.resume(fresh(values, BTreeMap::new()), inputs)
        }
    };
    run.map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_are_name_value_pairs() {
        let ok = parse_vars(&["org=acme".into(), "empty=".into(), "eq=a=b".into()]).expect("ok");
        assert_eq!(ok.get("org").map(String::as_str), Some("acme"));
        assert_eq!(ok.get("empty").map(String::as_str), Some(""));
        assert_eq!(ok.get("eq").map(String::as_str), Some("a=b"));
        for bad in ["novalue", "=x"] {
            assert!(parse_vars(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
