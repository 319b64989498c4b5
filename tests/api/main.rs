//! Integration tests against the machine's real Postgres, over real sockets.

mod bad_input;
mod durable;
mod durable_live;
mod durable_subs;
mod events;
mod faults;
mod group_commit;
mod helpers;
mod live;
mod messages;
mod openapi;
mod ops;
mod page;
mod props;
mod runtime_client;
mod runtime_demos;
mod runtime_http;
mod runtime_queues;
mod runtime_recovery;
mod runtime_support;
mod security;
mod security_approvals;
mod streams;
