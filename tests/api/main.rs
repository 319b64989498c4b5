//! Integration tests against the machine's real Postgres, over real sockets.

mod bad_input;
mod events;
mod faults;
mod helpers;
mod live;
mod messages;
mod ops;
mod page;
mod runtime_client;
mod runtime_demos;
mod runtime_http;
mod runtime_queues;
mod runtime_recovery;
mod runtime_support;
mod security;
mod streams;
