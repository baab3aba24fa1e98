//! ClusterMfaProfile: validates each profile with the engine's loader and
//! sets its `Valid` condition (message = the loader's error list).
//!
//! A ClusterMfaProfile named like a built-in profile (audd, goaxr, ...) is
//! never used: ApiCredentials naming it get the built-in, so a cluster-wide
//! object cannot silently change how every credential of that vendor talks to
//! it. Its `Valid` condition is False with reason `ShadowsBuiltinProfile`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use otpilot_api::conditions::{VALID, reasons};
use otpilot_api::{ClusterMfaProfile, ClusterMfaProfileSpec, ClusterMfaProfileStatus};
use otpilot_profile::{Profile, builtin};
use tokio_util::sync::CancellationToken;

use crate::conditions::{self, Desired};
use crate::context::Context;
use otpilot_api::conditions::reasons::SHADOWS_BUILTIN;

const CONTROLLER: &str = "clustermfaprofile";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write the status of ClusterMfaProfile {name}: {source}")]
    WriteStatus {
        name: String,
        #[source]
        source: kube::Error,
    },
}

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let api: Api<ClusterMfaProfile> = Api::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                crate::controllers::stream_errors::log(CONTROLLER, &error);
            }
        })
        .await;
}

/// The `Valid` condition for a profile (pure).
pub fn validity(name: &str, spec: &ClusterMfaProfileSpec) -> Desired {
    if builtin::names().any(|b| b == name) {
        return Desired::failed(
            VALID,
            SHADOWS_BUILTIN,
            format!(
                "'{name}' is the name of a built-in profile: ApiCredentials with profile '{name}' \
                 use the built-in one, never this object. Rename this ClusterMfaProfile and point \
                 the ApiCredentials that should use it at the new name"
            ),
        );
    }
    match Profile::from_spec(name, spec.profile.clone()) {
        Ok(_) => Desired::ok(
            VALID,
            reasons::PROFILE_ACCEPTED,
            "the profile passed load-time validation",
        ),
        Err(error) if error.is_template_too_expensive() => {
            Desired::failed(VALID, reasons::TEMPLATE_TOO_EXPENSIVE, error.to_string())
        }
        Err(error) => Desired::failed(VALID, reasons::PROFILE_INVALID, error.to_string()),
    }
}

async fn reconcile(obj: Arc<ClusterMfaProfile>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciled(CONTROLLER);
    let name = obj.name_any();
    // Validation renders every template once with sample values: bounded
    // by fuel, but kept off the async workers that also serve the webhook.
    let desired = {
        let (name, spec) = (name.clone(), obj.spec.clone());
        [tokio::task::spawn_blocking(move || validity(&name, &spec))
            .await
            .unwrap_or_else(|_| {
                Desired::failed(
                    VALID,
                    reasons::PROFILE_INVALID,
                    "validating the profile failed unexpectedly",
                )
            })]
    };
    let previous = obj
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Time(jiff::Timestamp::now());
    let status = ClusterMfaProfileStatus {
        conditions: conditions::merge(&previous, &desired, obj.metadata.generation, &now),
        observed_generation: obj.metadata.generation,
    };
    if obj.status.as_ref() != Some(&status) {
        let changed = conditions::transitions(&previous, &desired);
        let api: Api<ClusterMfaProfile> = Api::all(ctx.client.clone());
        super::apply_status(
            &api,
            &name,
            serde_json::to_value(&status).unwrap_or_default(),
        )
        .await
        .map_err(|source| Error::WriteStatus {
            name: name.clone(),
            source,
        })?;
        super::publish_transitions(&ctx, obj.as_ref(), &changed).await;
    }
    Ok(Action::await_change())
}

fn error_policy(_obj: Arc<ClusterMfaProfile>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "ClusterMfaProfile reconcile failed");
    ctx.metrics.reconcile_failed(
        CONTROLLER,
        otpilot_api::conditions::reasons::KUBERNETES_ERROR,
    );
    Action::requeue(Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of_builtin(name: &str) -> ClusterMfaProfileSpec {
        let profile = builtin::get(name).expect("built in");
        ClusterMfaProfileSpec {
            profile: profile.spec().clone(),
        }
    }

    #[test]
    fn a_sound_profile_is_valid() {
        let d = validity("acme", &spec_of_builtin("goaxr"));
        assert!(d.ok, "{d:?}");
        assert_eq!(d.reason, "ProfileAccepted");
    }

    #[test]
    fn a_profile_with_a_builtin_name_is_refused_and_says_to_rename_it() {
        let d = validity("goaxr", &spec_of_builtin("goaxr"));
        assert!(!d.ok);
        assert_eq!(d.reason, "ShadowsBuiltinProfile");
        assert!(d.message.contains("Rename"), "{}", d.message);
    }

    #[test]
    fn an_inconsistent_profile_is_invalid_with_the_loaders_errors() {
        let mut spec = spec_of_builtin("goaxr");
        spec.profile.login.steps.clear();
        let d = validity("acme", &spec);
        assert!(!d.ok);
        assert_eq!(d.reason, "ProfileInvalid");
        assert!(d.message.starts_with("acme"), "{}", d.message);
    }

    #[test]
    fn a_template_over_its_budget_makes_the_profile_invalid_with_its_own_reason() {
        let mut spec = spec_of_builtin("goaxr");
        spec.profile.login.steps[0].path = "/{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}\
            {{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
            .into();
        let d = validity("acme", &spec);
        assert!(!d.ok);
        assert_eq!(d.reason, "TemplateTooExpensive");
        assert!(d.message.contains("login.steps[0].path"), "{}", d.message);
    }
}
