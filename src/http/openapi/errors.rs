//! Error statuses as `responses(…)` entries: each set names the statuses an operation can
//! answer with besides its successes, and every one of them carries the shared error body
//! [`crate::error::ErrorBody`]. Sets ending in `Auth` add 401, 403, 429 and 503, which any
//! authenticated operation can answer with.

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// What each error status means.
pub fn text(code: u16) -> &'static str {
    match code {
        400 => "Invalid input (the field at fault is named)",
        401 => "Missing, invalid or expired credential",
        403 => "Credential not allowed here, or a non-loopback client without keys",
        404 => "No such run, key, workflow, stream or file",
        405 => "Method not allowed on this resource",
        409 => "Conflicts with the resource's state",
        410 => "Expired",
        413 => "Body or value too large",
        414 => "Request URI too long",
        415 => "Body is not JSON",
        422 => "Input does not match the workflow's schema",
        429 => "Rate or stream limit reached (see Retry-After)",
        _ => "Not available (starting, draining, or at capacity)",
    }
}

/// The responses for `codes`, each with the error body.
pub fn responses(codes: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    codes
        .iter()
        .map(|code| {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build();
            let resp = ResponseBuilder::new()
                .description(text(*code))
                .content("application/json", body)
                .build();
            (code.to_string(), RefOr::T(resp))
        })
        .collect()
}

macro_rules! sets {
    ($($(#[$m:meta])* $name:ident = [$($code:literal),*];)*) => {$(
        $(#[$m])*
        pub struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                responses(&[$($code),*])
            }
        }
    )*};
}

sets! {
    /// Only the errors of authentication.
    Auth = [401, 403, 429, 503];
    /// Not found (a public page asset).
    NotFound = [404];
    /// Bad input or no such thing.
    E400_404Auth = [400, 404, 401, 403, 429, 503];
    /// Not found (or not available), authenticated.
    E404Auth = [404, 401, 403, 429, 503];
    /// A state change that may conflict.
    E400_404_409Auth = [400, 404, 409, 401, 403, 429, 503];
    /// A reading that may have expired.
    E400_404_410Auth = [400, 404, 410, 401, 403, 429, 503];
    /// A JSON write to an existing run.
    E400_404_409_413_415Auth = [400, 404, 409, 413, 415, 401, 403, 429, 503];
    /// A JSON write that mints.
    E400_404_413_415Auth = [400, 404, 413, 415, 401, 403, 429, 503];
    /// A JSON write creating something new.
    E400_409_413_415Auth = [400, 409, 413, 415, 401, 403, 429, 503];
    /// A JSON write with no run in its path.
    E400_413_415Auth = [400, 413, 415, 401, 403, 429, 503];
    /// Starting a workflow.
    StartErrors = [400, 404, 409, 413, 415, 422, 401, 403, 429, 503];
    /// Describing an approval link (the link is the credential).
    LinkDescribe = [403, 410, 429, 503];
    /// Using an approval link.
    LinkUse = [400, 403, 404, 410, 413, 415, 429, 503];
    /// Describing a DBOS approval link.
    DbosLinkDescribe = [400, 403, 404, 410, 429];
    /// Using a DBOS approval link.
    DbosLinkUse = [400, 403, 404, 410, 413, 415, 429];
    /// A Durable Streams read.
    StreamRead = [400, 404, 405, 410, 414, 401, 403, 429, 503];
    /// A Durable Streams write.
    StreamWrite = [400, 404, 405, 409, 410, 413, 414, 415, 401, 403, 429, 503];
    /// A subscription call.
    SubCall = [400, 404, 405, 409, 413, 414, 401, 403, 429, 503];
}
