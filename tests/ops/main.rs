//! Operations tests with real processes, real signals and real Postgres: graceful shutdown,
//! crash hand-over, a database restart, and the private cluster.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod procs;
mod replica;
mod replica_reads;
mod restart;
mod secrets;
mod shutdown;
mod slow_clients;
