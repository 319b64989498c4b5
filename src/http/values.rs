//! Values in = values out: what the producer endpoints accept can be read back by every
//! reader, byte for byte, or is refused at write time.
//!
//! Writes: a stream record must be JSON that serde_json can hold as a value (finite
//! numbers, no lone surrogates, nesting within its 128-level limit), else 400; event values
//! and message bodies are parsed into values already. Reads: stored JSON goes out as raw
//! JSON text ([`RawValue`]) inside our frames, never re-parsed, so a value written from SQL
//! that serde_json could not parse (Postgres takes a 1e400 or 200 levels of nesting) is
//! still delivered as stored. Never build a frame around a stored value with `json!`: that
//! re-parses it, and panics on such values.

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::ApiError;

/// Ok if `v` reads back as a serde_json value; else a 400 naming `field`.
pub fn check_readable(field: &str, v: &RawValue) -> Result<(), ApiError> {
    serde_json::from_str::<serde_json::Value>(v.get())
        .map(|_| ())
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "unreadable_value",
                format!(
                    "{field}: readers could not parse this value back ({e}); numbers must be \
                     finite, strings valid Unicode, nesting at most 128 levels"
                ),
            )
            .with_field(field)
        })
}

/// A stored payload as embedded JSON (payloads of workflow streams are JSON text; bytes
/// that are not are served as a JSON string, lossily decoded).
pub fn raw(payload: &Bytes) -> Box<RawValue> {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|s| RawValue::from_string(s.to_string()).ok())
        .unwrap_or_else(|| {
            let s = String::from_utf8_lossy(payload);
            RawValue::from_string(serde_json::to_string(&s).unwrap_or_default())
                .unwrap_or_else(|_| RawValue::NULL.to_owned())
        })
}

/// An event as readers see it: `{key?, value, version}`.
#[derive(Serialize)]
pub struct EventView<'a> {
    /// The key (left out where the URL names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    /// The stored value.
    pub value: &'a RawValue,
    /// Its version.
    pub version: i64,
}

/// A stream record in `/live`: `{key, offset, value}`.
#[derive(Serialize)]
pub struct RecordView<'a> {
    /// Stream key.
    pub key: &'a str,
    /// Record offset.
    pub offset: i64,
    /// The stored value.
    pub value: &'a RawValue,
}

/// JSON text of `v` (raw values are copied as they are).
pub fn to_json(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not serialize a frame");
        b"null".to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_are_never_reparsed() {
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        let v = raw(&Bytes::from(deep.clone()));
        let out = to_json(&RecordView {
            key: "k",
            offset: 1,
            value: &v,
        });
        assert_eq!(
            out,
            format!(r#"{{"key":"k","offset":1,"value":{deep}}}"#).into_bytes()
        );
        let huge = raw(&Bytes::from_static(b"1e400"));
        assert_eq!(
            to_json(&EventView {
                key: None,
                value: &huge,
                version: 2
            }),
            br#"{"value":1e400,"version":2}"#
        );
        assert!(check_readable("v", &huge).is_err());
        assert!(check_readable("v", &raw(&Bytes::from_static(br#""\ud800""#))).is_err());
        assert!(check_readable("v", &raw(&Bytes::from_static(br#"{"a":[1,"x"]}"#))).is_ok());
        assert_eq!(raw(&Bytes::from_static(b"\xff")).get(), "\"\u{fffd}\"");
    }
}
