//! Integration tests against the machine's real Postgres, over real sockets.

mod helpers;
mod streams;
