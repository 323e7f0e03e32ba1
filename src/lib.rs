//! jobvisor: Kubernetes `batch/v1` Jobs on one Linux host, as supervised processes.
//!
//! Data flows one way: file → [`manifest`] → [`store`] → [`controller`] (pure decisions)
//! → [`runtime`] (processes, logs) → status → [`server`] (the API). [`daemon`] is the only
//! place that wires them together; [`cli`] talks to the daemon over [`proto`].
#![warn(clippy::unwrap_used)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod controller;
pub mod daemon;
pub mod images;
pub mod manifest;
pub mod printers;
pub mod proto;
pub mod quantity;
pub mod runtime;
pub mod schedule;
pub mod server;
pub mod store;
pub mod trust;
pub mod watch;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
