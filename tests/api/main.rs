//! Integration tests against the machine's real Postgres, over real sockets.

mod bad_input;
mod events;
mod faults;
mod helpers;
mod live;
mod messages;
mod ops;
mod page;
mod streams;
