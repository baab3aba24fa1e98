//! Recording a vendor's answer through a Kubernetes API outage. Some
//! answers come once (goaxr's recovery codes arrive only with the enroll
//! answer): giving up on the first failed write would lose them although
//! the process is alive and holds them. So the write is retried while the
//! API server is unreachable or overloaded, for up to [`GIVE_UP_AFTER`];
//! a refusal (4xx) is returned at once, as a retry would get it again.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::secrets::SecretsError;

/// Longer than a kube-apiserver restart; the Lease (if it cannot be
/// renewed meanwhile) stops the process sooner.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(90);

/// Whether a failed write may succeed if simply tried again (pure): no
/// answer from the API server, or a 5xx / 429 one.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

fn secrets_error_is_transient(error: &SecretsError) -> bool {
    match error {
        SecretsError::Read { source, .. } | SecretsError::Write { source, .. } => {
            is_transient(source)
        }
    }
}

/// Runs `write` until it succeeds, fails for good, or [`GIVE_UP_AFTER`]
/// has passed.
pub async fn retrying<F, Fut>(credential: &str, write: F) -> Result<(), SecretsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), SecretsError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .with_total_delay(Some(GIVE_UP_AFTER));
    write
        .retry(backoff)
        .when(secrets_error_is_transient)
        .notify(|error, wait| {
            tracing::warn!(
                credential,
                %error,
                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "failed to record the vendor's answer; retrying"
            );
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("test", "Test").with_code(code),
        ))
    }

    #[test]
    fn only_failures_a_retry_can_cure_are_retried() {
        let cases = [
            (api(500), true),
            (api(503), true),
            (api(504), true),
            (api(429), true),
            (api(400), false),
            (api(403), false),
            (api(404), false),
            (api(409), false),
            (api(422), false),
            (
                kube::Error::Service(Box::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                ))),
                true,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(is_transient(&error), expected, "{error}");
        }
    }
}
