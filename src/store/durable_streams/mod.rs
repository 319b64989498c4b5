//! The Durable Streams protocol's tables: [`streams`] (a stream's row: metadata, creation,
//! deletes, expiry), [`records`] (its rows, read through a fork chain, and the sliding-TTL
//! read mark), [`batch`] (the group-committed appends), [`subscriptions`] (registrations,
//! links, wakes), [`leases`] (an open wake's lease and acknowledged offsets) and
//! [`webhooks`] (the webhook signing key). The protocol itself is the HTTP layer's.
//!
//! Reads and writes of their own are [`Store`](crate::store::Store) methods (`ds_…`); steps
//! of a caller's transaction are functions taking its connection.

pub mod batch;
pub mod leases;
pub mod records;
pub mod streams;
pub mod subscriptions;
pub mod webhooks;

pub use batch::{DsAppend, DsOutcome};
pub use records::{CHUNK_BYTES, CHUNK_ROWS};
pub use streams::{DeleteOutcome, Meta, NewStream};
pub use subscriptions::{SubConfig, SubMatch, SubStream, Subscription};
