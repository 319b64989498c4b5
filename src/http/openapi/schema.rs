//! Schemas of `/openapi.json` that no request type carries: the constrained strings of
//! paths and queries (with the same limits the handlers enforce), and the shapes of the
//! JSON the handlers answer with.

// Field names are the documentation of these response shapes.
#![allow(missing_docs)]

use std::borrow::Cow;

use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A string with optional length limits and pattern.
fn string(min: Option<usize>, max: Option<usize>, pattern: Option<&str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(min)
        .max_length(max)
        .pattern(pattern)
}

/// Declares a named schema built by hand.
macro_rules! named {
    ($($(#[$m:meta])* $name:ident => $schema:expr;)*) => {$(
        $(#[$m])*
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema.into()
            }
        }
        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )*
        /// Every schema built here, by name (parameters refer to them, so the document
        /// holds them all).
        pub fn named() -> Vec<(String, RefOr<Schema>)> {
            vec![$((stringify!($name).to_string(), <$name as PartialSchema>::schema())),*]
        }
    };
}

/// The name charset of run ids, keys, topics, workflows and queues.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_.:@-]+$";

/// Text without control characters (Unicode Cc, as `char::is_control` reads them): DBOS ids,
/// keys and topics.
pub const NO_CONTROLS: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$";

named! {
    /// A run id, key, topic, workflow or queue name.
    Name => string(Some(1), Some(crate::ids::MAX_NAME_LEN), Some(NAME_PATTERN));
    /// A DBOS workflow id or name: any text without control characters (`char::is_control`).
    DbosName => string(Some(1), Some(crate::http::dbos::MAX_DBOS_NAME), Some(NO_CONTROLS))
        .description(Some("Any text without control characters, percent-encoded in the path"));
    /// A message's idempotency key: 1 to 128 bytes of any text.
    IdempotencyKey => string(Some(1), Some(crate::ids::MAX_NAME_LEN), None)
        .description(Some("1 to 128 bytes; a second send with the same key stores nothing"));
    /// `Stream-TTL`: whole seconds, at most 315360000 (ten years).
    TtlHeader => string(Some(1), Some(10), Some("^(0|[1-9][0-9]{0,8})$"));
    /// `Producer-Id`: 1 to 256 characters, not all blank.
    ProducerId => string(Some(1), Some(crate::http::durable_streams::producer::MAX_PRODUCER_ID), Some("[^ \\t]"));
    /// `Producer-Epoch`, `Producer-Seq`: an integer in 0..=2^53-1.
    ProducerNumber => string(Some(1), Some(16), Some("^(0|[1-9][0-9]{0,14})$"));
    /// Records to append: a non-empty array of any JSON values (at most `FLOWGATE_MAX_BATCH`).
    RecordBatch => ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::AnyValue))
        .min_items(Some(1));
    /// A non-empty opaque string (a token, a file name).
    Opaque => string(Some(1), None, None);
    /// A run tag.
    Tag => string(Some(1), Some(64), Some(NAME_PATTERN));
    /// A run's tags.
    Tags => ArrayBuilder::new().items(Tag::schema()).max_items(Some(10));
    /// A record offset or event version in a query.
    Offset => string(None, None, Some("^[0-9]{1,16}$"));
    /// Seconds to wait, with up to millisecond precision.
    Seconds => string(None, None, Some("^[0-9]{1,5}(\\.[0-9]{1,3})?$"));
    /// A page size.
    Limit => string(None, None, Some("^[0-9]{1,3}$"));
    /// A DBOS page size (1-1000).
    DbosLimit => string(None, None, Some("^(1000|[1-9][0-9]{0,2})$"));
    /// Any JSON object.
    AnyObject => ObjectBuilder::new().schema_type(Type::Object);
    /// Approver names.
    Approvers => ArrayBuilder::new()
        .items(string(Some(1), Some(crate::ids::MAX_NAME_LEN), None))
        .min_items(Some(1))
        .max_items(Some(50));
    /// Seconds a finished run is kept.
    Retention => ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(crate::http::finish::MAX_RETENTION_SECS))
        .description(Some("Seconds the run is kept once finished (0: forever; default FLOWGATE_RETENTION)"));
    /// A token's lifetime in seconds.
    TtlSecs => ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(2_592_000));
    /// A Durable Streams subscription's kind.
    SubKind => ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["webhook", "pull-wake"]));
    /// What a run token may do.
    ScopeName => ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["read", "approve", "cancel"]));
    /// Started, or already finished.
    StartedOrRun => OneOfBuilder::new()
        .item(Ref::from_schema_name("Started"))
        .item(Ref::from_schema_name("RunRow"));
    /// How an external run ended.
    FinishStatus => ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["SUCCESS", "ERROR", "CANCELLED"]));
    /// A Durable Streams live mode.
    LiveMode => ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["long-poll", "sse"]));
    /// A Durable Streams path (may contain `/`).
    StreamPath => string(Some(1), Some(crate::http::durable_streams::MAX_PATH), None);
}

/// An event's value and version.
#[derive(ToSchema)]
pub struct Event {
    pub value: Value,
    pub version: i64,
}

/// A stream record.
#[derive(ToSchema)]
pub struct Record {
    pub offset: i64,
    pub value: Value,
}

/// Records from a poll.
#[derive(ToSchema)]
pub struct Records {
    pub records: Vec<Record>,
    pub next: i64,
    pub closed: bool,
    pub expired: Option<bool>,
}

/// An approval link's decision.
#[derive(ToSchema)]
#[allow(non_camel_case_types)]
pub enum Decision {
    approve,
    reject,
}

/// A pull-wake worker's claim.
#[derive(ToSchema)]
pub struct ClaimBody {
    /// The worker's name (1 to 256 bytes).
    #[schema(min_length = 1, max_length = 256)]
    pub worker: String,
}

/// A webhook consumer's or worker's acknowledgement.
#[derive(ToSchema)]
pub struct AckResult {
    pub ok: bool,
    pub next_wake: bool,
}
