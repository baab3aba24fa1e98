//! Every long-running task of the sidecar (input reload, session, local
//! API, admin listener, proxy) runs under a [`Supervisor`]. None of them
//! ends on its own before shutdown: one that returns or panics means the
//! sidecar no longer does its job (a dead session task serves its last
//! token until it expires, then 503s forever). So the first such exit is
//! logged with its cause, counted in `otpilot_sidecar_task_exits_total`,
//! turns `/healthz` red, and ends the process with a non-zero status: the
//! kubelet restarts the container.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::TaskLabels;
use crate::state::Shared;

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It returned after it was asked to stop: its normal end.
    Stopped,
    /// It returned `Ok`: a loop that should run until shutdown stopped.
    Returned,
    /// It returned an error (its text: I/O and bind errors, never a secret).
    Failed(String),
    /// It panicked (the panic's message, which the default panic hook has
    /// already printed; the code panics with no secret in a message).
    Panicked(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Stopped => f.write_str("stopped as asked"),
            Outcome::Returned => f.write_str("returned before shutdown"),
            Outcome::Failed(error) => write!(f, "failed: {error}"),
            Outcome::Panicked(message) => write!(f, "panicked: {message}"),
        }
    }
}

/// A task that ended, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The task's name (`reload`, `session`, `api`, `admin`, `proxy`).
    pub task: &'static str,
    /// How it ended.
    pub outcome: Outcome,
}

/// Spawns tasks and reports each one's end.
pub struct Supervisor {
    spawner: Spawner,
    rx: mpsc::UnboundedReceiver<Exit>,
}

/// Spawns supervised tasks from anywhere (the shared session spawns the
/// holder's tasks while it runs).
#[derive(Clone)]
pub struct Spawner {
    tx: mpsc::UnboundedSender<Exit>,
    running: Arc<AtomicUsize>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// No task yet.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            spawner: Spawner {
                tx,
                running: Arc::new(AtomicUsize::new(0)),
            },
            rx,
        }
    }

    /// What spawns this supervisor's tasks.
    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    /// Runs `work` as task `task`: see [`Spawner::spawn`].
    pub fn spawn<F>(&self, task: &'static str, cancel: &CancellationToken, work: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.spawner.spawn(task, cancel, work);
    }

    /// The next task to end unasked (pending forever when none does).
    pub async fn next_exit(&mut self) -> Exit {
        loop {
            // `self.spawner` keeps the channel open: `None` never comes.
            let Some(exit) = self.rx.recv().await else {
                return std::future::pending().await;
            };
            self.spawner.running.fetch_sub(1, Ordering::SeqCst);
            if exit.outcome != Outcome::Stopped {
                return exit;
            }
        }
    }

    /// After shutdown was asked for: waits up to `grace` for every task to
    /// end, logging those that failed. Whether all ended in time.
    pub async fn drain(&mut self, grace: Duration) -> bool {
        tokio::time::timeout(grace, async {
            while self.spawner.running.load(Ordering::SeqCst) > 0 {
                let Some(exit) = self.rx.recv().await else {
                    return;
                };
                self.spawner.running.fetch_sub(1, Ordering::SeqCst);
                if !matches!(exit.outcome, Outcome::Stopped | Outcome::Returned) {
                    tracing::error!(task = exit.task, cause = %exit.outcome, "task failed while shutting down");
                }
            }
        })
        .await
        .is_ok()
    }
}

impl Spawner {
    /// Runs `work` as task `task`. Returning `Ok` once `cancel` is
    /// cancelled is its normal end; any other end, panics included, is
    /// reported by [`Supervisor::next_exit`].
    pub fn spawn<F>(&self, task: &'static str, cancel: &CancellationToken, work: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let work = failpoint::wrap(task, work);
        let handle = tokio::spawn(work);
        let tx = self.tx.clone();
        let cancel = cancel.clone();
        self.running.fetch_add(1, Ordering::SeqCst);
        // A second task awaits the first: a panic unwinds only the first.
        tokio::spawn(async move {
            let outcome = match handle.await {
                Ok(Ok(())) if cancel.is_cancelled() => Outcome::Stopped,
                Ok(Ok(())) => Outcome::Returned,
                Ok(Err(error)) => Outcome::Failed(error),
                Err(join) => match join.try_into_panic() {
                    Ok(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
                    Err(_) => Outcome::Failed("the task was cancelled".to_owned()),
                },
            };
            let _ = tx.send(Exit { task, outcome });
        });
    }
}

/// Records `exit` as the end of the sidecar's life: `/healthz` fails, the
/// task is counted, and the cause is logged. The description, for the
/// process's exit error.
pub fn record_exit(shared: &Shared, exit: &Exit) -> String {
    let description = format!("task {} {}", exit.task, exit.outcome);
    shared.set_failed_task(description.clone());
    shared
        .metrics
        .task_exits
        .get_or_create(&TaskLabels { task: exit.task })
        .inc();
    tracing::error!(
        task = exit.task,
        cause = %exit.outcome,
        "a supervised task ended; exiting so the container restarts"
    );
    description
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A fault for tests: `OTPILOT_FAILPOINT=sidecar-task-panic:<task>` makes
/// that task's work stop and the task panic, after
/// `OTPILOT_FAILPOINT_AFTER_MS` (default 0), so a test sees what a real
/// bug would do. Compiled only into debug builds (which the tests and the
/// real-node images use); a release build, the one the published image
/// holds, has no failpoint and ignores the variables.
mod failpoint {
    use std::future::Future;

    /// The variable's value prefix.
    #[cfg(debug_assertions)]
    const PREFIX: &str = "sidecar-task-panic:";

    #[cfg(debug_assertions)]
    pub(super) fn wrap<F>(
        task: &'static str,
        work: F,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let armed = std::env::var("OTPILOT_FAILPOINT")
            .ok()
            .and_then(|v| v.strip_prefix(PREFIX).map(|t| t == task))
            .unwrap_or(false);
        if !armed {
            return Box::pin(work);
        }
        let after = std::env::var("OTPILOT_FAILPOINT_AFTER_MS")
            .ok()
            .and_then(|ms| ms.parse::<u64>().ok())
            .unwrap_or(0);
        Box::pin(async move {
            tokio::select! {
                result = work => result,
                () = tokio::time::sleep(std::time::Duration::from_millis(after)) => {
                    tracing::warn!(failpoint = %format!("{PREFIX}{task}"), "failpoint reached");
                    panic!("failpoint {PREFIX}{task}")
                }
            }
        })
    }

    #[cfg(not(debug_assertions))]
    #[inline(always)]
    pub(super) fn wrap<F>(_task: &'static str, work: F) -> F {
        work
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_way_a_task_ends_is_reported_with_its_name() {
        let mut supervisor = Supervisor::new();
        let running = CancellationToken::new();
        let stopped = CancellationToken::new();
        stopped.cancel();
        supervisor.spawn("stopped as asked", &stopped, async { Ok(()) });
        supervisor.spawn("returns", &running, async { Ok(()) });
        supervisor.spawn("fails", &running, async {
            Err("bind: address in use".to_owned())
        });
        supervisor
            .spawner()
            .spawn("panics", &stopped, async { panic!("boom") });
        let mut exits = Vec::new();
        for _ in 0..3 {
            exits.push(supervisor.next_exit().await);
        }
        exits.sort_by_key(|e| e.task);
        assert_eq!(
            exits,
            vec![
                Exit {
                    task: "fails",
                    outcome: Outcome::Failed("bind: address in use".to_owned())
                },
                Exit {
                    task: "panics",
                    outcome: Outcome::Panicked("boom".to_owned())
                },
                Exit {
                    task: "returns",
                    outcome: Outcome::Returned
                },
            ]
        );
        assert!(supervisor.drain(Duration::from_millis(10)).await);
    }

    #[tokio::test]
    async fn drain_gives_up_after_the_grace_period() {
        let mut supervisor = Supervisor::new();
        supervisor.spawn("forever", &CancellationToken::new(), std::future::pending());
        assert!(!supervisor.drain(Duration::from_millis(20)).await);
    }

    #[test]
    fn a_recorded_exit_fails_healthz_and_is_counted_by_task() {
        let shared = Shared::new();
        let description = record_exit(
            &shared,
            &Exit {
                task: "session",
                outcome: Outcome::Panicked("boom".to_owned()),
            },
        );
        assert_eq!(description, "task session panicked: boom");
        assert_eq!(shared.failed_task().as_deref(), Some(&description));
        let text = shared.metrics.encode().expect("metrics");
        assert!(
            text.contains(r#"otpilot_sidecar_task_exits_total{task="session"} 1"#),
            "{text}"
        );
    }
}
