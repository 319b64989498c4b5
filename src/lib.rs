//! flowgate: Postgres-backed durable workflows with a live gateway.
//!
//! ```text
//! producer ──► Postgres rows ──► notify ──────────────────────► notify::listener (1 conn)
//! (HTTP producer API | SQL functions)   own writes: notify::notifier     │ reconnect ⇒ resync
//!                                        wakes the local hub directly     ▼
//! browser / curl ◄── http (SSE, long-poll, JSON) ◄── hub (one DB read per note per topic)
//! ```
//!
//! Modules in layers; a module uses only modules of lower layers, and the `layering` test
//! (`cargo test layering`) fails on any `crate::` path in `src/` that breaks this table:
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 0 | `ids` `error` `note` `config` `metrics` `term` `private_pg` `every` | names, errors, wake-up notes, settings, terminal output, periodic ticks |
//! | 1 | `tags` `telemetry` | run tags, logging |
//! | 2 | `store` | every table: runs, events, streams, messages, Durable Streams, a DBOS schema |
//! | 3 | `replica` | reads from streaming standbys: freshness rules, the WAL fence, the probe |
//! | 4 | `hub` | in-process fan-out: one database read per note per topic |
//! | 5 | `notify` | wake-ups between processes: the LISTEN connection, the notifier, group commit |
//! | 6 | `runtime` `lifecycle` `dbos` `auth` | workflows, retention, the DBOS source, keys and tokens |
//! | 7 | `http` | the API: server, access checks, SSE, every route, the Durable Streams protocol |
//! | 8 | `app` `demo` `client` | wiring a process together, demo workflows, an HTTP client |
//! | 9 | `tail` `remote` `bench` | the client commands (`tail`; `run`, `approve`, `reject`, `finish`), benchmarks |
//! | 10 | `cli` | the command line |
//!
//! Workflows: [`runtime`] runs registered workflows durably (recorded steps, queues,
//! executors and recovery) and produces the events, streams and messages above; [`demo`]
//! holds the demo workflows; [`client`] drives a server over HTTP, and [`tail`] and
//! [`remote`] are the client commands on top of it. [`lifecycle`] removes what outlived its retention.
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod dbos;
pub mod demo;
pub mod error;
pub mod every;
pub mod http;
pub mod hub;
pub mod ids;
#[cfg(test)]
mod layering;
pub mod lifecycle;
pub mod metrics;
pub mod note;
pub mod notify;
pub mod private_pg;
pub mod remote;
pub mod replica;
pub mod runtime;
pub mod store;
pub mod tags;
pub mod tail;
pub mod telemetry;
pub mod term;

pub use app::{start, RunningApp};
pub use config::Config;
