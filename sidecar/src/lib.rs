//! otpilot-sidecar: logs in to a vendor with TOTP, refreshes the token
//! before it expires, and serves it on 127.0.0.1 — as `GET /token` and as
//! an authenticating reverse proxy.
//!
//! Modules by concern: `policy` decides (pure), `session` drives the
//! engine, `inputs`/`reload` read the mounted Secrets, `state` holds the
//! current token, `api` and `proxy` serve, `sharing` shares one session
//! among replicas, `supervise` watches every task, `run` wires them together.

#![warn(missing_docs)]

pub mod admission;
pub mod api;
pub mod cli;
pub mod inputs;
pub mod metrics;
pub mod policy;
pub mod presentation;
pub mod probe;
pub mod proxy;
pub mod reload;
pub mod run;
pub mod session;
pub mod sharing;
pub mod state;
pub mod supervise;
pub mod token_file;
