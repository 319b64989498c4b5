//! DBOS value formats, named per row in its `serialization` column, turned into JSON text.
//!
//! - `portable_json`: plain JSON, passed through byte for byte;
//! - `js_superjson` (the TypeScript SDK's default): the value is under `.json`;
//! - `js_legacy`: JSON (dates as `dbos_type` objects), passed through as is;
//! - `py_pickle` or NULL (the Python SDK's default) and any unknown format: never decoded
//!   (unpickling runs code); the value becomes `{"undecodable": "<format>"}`.
//!
//! Nothing here touches the database; nothing here ever executes stored data.

use serde::de::IgnoredAny;
use serde_json::Value;

/// The sentinel DBOS appends to close a stream.
pub const CLOSED_SENTINEL: &str = "__DBOS_STREAM_CLOSED__";

/// The format DBOS names when `serialization` is NULL (Python rows before portable formats).
const DEFAULT_FORMAT: &str = "py_pickle";

/// A stored value as JSON text. Valid JSON in every case.
pub fn to_json_text(value: &str, serialization: Option<&str>) -> String {
    match serialization {
        Some("portable_json") | Some("js_legacy") if is_json(value) => value.to_string(),
        Some("js_superjson") => match serde_json::from_str::<Value>(value) {
            Ok(Value::Object(mut m)) => match m.remove("json") {
                Some(v) => v.to_string(),
                None => undecodable("js_superjson"),
            },
            _ => undecodable("js_superjson"),
        },
        Some(other) => undecodable(other),
        None => undecodable(DEFAULT_FORMAT),
    }
}

/// A stored value as a JSON value.
pub fn to_value(value: &str, serialization: Option<&str>) -> Value {
    serde_json::from_str(&to_json_text(value, serialization)).unwrap_or(Value::Null)
}

/// True if this stream row is the close sentinel (quoted as DBOS writes it today, bare as
/// older TypeScript versions wrote it, or inside a superjson envelope).
pub fn is_close_sentinel(value: &str, serialization: Option<&str>) -> bool {
    let quoted = value.len() == CLOSED_SENTINEL.len() + 2
        && value.starts_with('"')
        && value.ends_with('"')
        && &value[1..value.len() - 1] == CLOSED_SENTINEL;
    if quoted || value == CLOSED_SENTINEL {
        return true;
    }
    serialization == Some("js_superjson")
        && to_json_text(value, serialization) == format!("\"{CLOSED_SENTINEL}\"")
}

fn is_json(s: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(s).is_ok()
}

/// The marker for a value flowgate will not decode.
fn undecodable(format: &str) -> String {
    // Format names come from the database: cap them and escape through serde.
    let name: String = format.chars().take(64).collect();
    serde_json::json!({ "undecodable": name }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let raw = "{\"b\":1,  \"a\":[2]}";
        for (text, format, json) in [
            (raw, Some("portable_json"), raw),
            (raw, Some("js_legacy"), raw),
            (
                "{\"json\":{\"x\":1},\"meta\":{}}",
                Some("js_superjson"),
                "{\"x\":1}",
            ),
            (
                "gASVDwAAAAAAAAB9lIwGc2VjcmV0lEsBcy4=",
                Some("py_pickle"),
                "{\"undecodable\":\"py_pickle\"}",
            ),
            ("gASV", None, "{\"undecodable\":\"py_pickle\"}"),
            (
                "x",
                Some("custom_serializer"),
                "{\"undecodable\":\"custom_serializer\"}",
            ),
            (
                "not json",
                Some("portable_json"),
                "{\"undecodable\":\"portable_json\"}",
            ),
        ] {
            assert_eq!(to_json_text(text, format), json, "{text} as {format:?}");
        }
    }

    #[test]
    fn sentinel() {
        assert!(is_close_sentinel(
            "\"__DBOS_STREAM_CLOSED__\"",
            Some("portable_json")
        ));
        assert!(is_close_sentinel("__DBOS_STREAM_CLOSED__", None));
        assert!(is_close_sentinel(
            "{\"json\":\"__DBOS_STREAM_CLOSED__\"}",
            Some("js_superjson")
        ));
        assert!(!is_close_sentinel("\"tok\"", Some("portable_json")));
    }
}
