//! flowgate: Postgres-backed durable workflows with a live gateway.
//!
//! ```text
//! producer ──► Postgres rows ──► notify ──────────────────────► notify::listener (1 conn)
//! (HTTP producer API | SQL functions)   own writes: notify::notifier     │ reconnect ⇒ resync
//!                                        wakes the local hub directly     ▼
//! browser / curl ◄── http (SSE, long-poll, JSON) ◄── hub (one DB read per note per topic)
//! ```
//!
//! Modules in flow order: [`ids`] (validated names) → [`store`] (rows) → [`notify`]
//! (wake-ups between processes) → [`hub`] (in-process fan-out) → [`http`] (the API), with
//! [`app`] wiring them together.
//!
//! Workflows: [`runtime`] runs registered workflows durably (recorded steps, queues,
//! executors and recovery) and produces the events, streams and messages above; [`demo`]
//! holds the demo workflows; [`client`] drives a server over HTTP, and [`tail`] is the
//! `run` / `tail` commands on top of it. [`lifecycle`] removes what outlived its retention.
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod dbos;
pub mod demo;
pub mod durable;
pub mod error;
pub mod http;
pub mod hub;
pub mod ids;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod private_pg;
pub mod runtime;
pub mod store;
pub mod tags;
pub mod tail;
pub mod telemetry;

pub use app::{start, RunningApp};
pub use config::Config;
