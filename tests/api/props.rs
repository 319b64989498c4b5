//! Property tests: the name, offset, `Last-Event-ID` and `/live` cursor parsers and the token
//! verifier take arbitrary input without panicking, accept exactly what they document, and
//! round-trip what the server itself produces.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use flowgate::auth::token::{Rights, Signer};
use flowgate::http::extract::last_event_id;
use flowgate::http::live::cursor::{Cursor, MAX_CURSOR_LEN};
use flowgate::ids::{parse_offset, Key, RunId, Topic, MAX_NAME_LEN};

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:@".contains(c))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn names_accept_exactly_the_documented_charset(s in any::<String>()) {
        let want = name_ok(&s);
        prop_assert_eq!(RunId::parse(s.clone()).is_ok(), want);
        prop_assert_eq!(Key::parse(s.clone()).is_ok(), want);
        prop_assert_eq!(Topic::parse(s.clone()).is_ok(), want);
    }

    #[test]
    fn valid_names_round_trip(s in "[A-Za-z0-9_.:@-]{1,128}") {
        let id = RunId::parse(s.clone()).unwrap();
        prop_assert_eq!(id.as_str(), s.as_str());
        prop_assert_eq!(Topic::parse(s.clone()).unwrap().to_string(), s);
    }

    #[test]
    fn parse_offset_never_panics_and_rejects_non_digits(s in any::<String>()) {
        if let Ok(v) = parse_offset(&s) {
            prop_assert!(v >= 0);
            prop_assert!(s.trim().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn parse_offset_reads_back_small_numbers(n in 0i64..1_000_000_000_000) {
        prop_assert_eq!(parse_offset(&n.to_string()), Ok(n));
        let negative = format!("-{}", n + 1);
        prop_assert!(parse_offset(&negative).is_err());
    }

    #[test]
    fn last_event_id_takes_any_header_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let Ok(v) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let mut h = HeaderMap::new();
        h.insert("last-event-id", v);
        match last_event_id(&h) {
            Ok(Some(n)) => prop_assert!(n >= 0),
            Ok(None) => prop_assert!(String::from_utf8_lossy(&bytes).trim().is_empty()),
            Err(e) => prop_assert_eq!(e.status.as_u16(), 400),
        }
    }

    #[test]
    fn last_event_id_reads_numbers(n in 0i64..1_000_000_000) {
        let mut h = HeaderMap::new();
        h.insert("last-event-id", HeaderValue::from_str(&n.to_string()).unwrap());
        prop_assert_eq!(last_event_id(&h).ok().flatten(), Some(n));
    }

    #[test]
    fn live_cursor_parser_never_panics(s in any::<String>()) {
        if let Err(e) = Cursor::parse("cursor", &s) {
            prop_assert_eq!(e.status.as_u16(), 400);
        }
    }

    #[test]
    fn live_cursor_parser_takes_arbitrary_decoded_json(v in any::<Vec<u8>>()) {
        use base64::Engine;
        let mut json = b"{".to_vec();
        json.extend(v);
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        if text.len() <= MAX_CURSOR_LEN {
            let _ = Cursor::parse("Last-Event-ID", &text);
        }
    }

    #[test]
    fn live_cursors_round_trip(
        v in 0i64..i64::MAX,
        s in proptest::collection::btree_map("[a-z0-9_]{1,20}", 0i64..i64::MAX, 0..8),
        e in proptest::collection::btree_set("[a-z0-9_]{1,20}", 0..8),
        st in proptest::option::of(prop_oneof![Just("PENDING"), Just("SUCCESS"), Just("ERROR")]),
        p in 0i32..i32::MAX,
    ) {
        let c = Cursor { v, s: s.into_iter().collect::<BTreeMap<_, _>>(), e: e.into_iter().collect::<BTreeSet<_>>(), st: st.map(str::to_string), p };
        let back = Cursor::parse("cursor", &c.encode());
        prop_assert!(back.is_ok());
        prop_assert_eq!(back.unwrap(), c);
    }

    #[test]
    fn token_verifier_never_panics_and_rejects_forgeries(s in any::<String>()) {
        let signer = Signer::new(b"property-secret");
        prop_assert!(signer.verify_run(&s).is_err());
        prop_assert!(signer.verify_approval(&s).is_err());
        let dotted = format!("run.{s}.{s}");
        prop_assert!(signer.verify_run(&dotted).is_err());
    }

    #[test]
    fn token_verifier_rejects_every_one_character_change(
        run in "[a-z0-9-]{1,40}",
        at in any::<prop::sample::Index>(),
        with in "[A-Za-z0-9_.-]",
    ) {
        let signer = Signer::new(b"property-secret");
        let token = signer.run_token(&run, Rights::read(600));
        prop_assert_eq!(signer.verify_run(&token).unwrap().run, run);
        let i = at.index(token.len());
        let mut changed = token.clone();
        changed.replace_range(i..i + 1, &with);
        if changed != token {
            prop_assert!(signer.verify_run(&changed).is_err(), "{} verified", changed);
        }
        // Another secret never verifies it.
        prop_assert!(Signer::new(b"other-secret").verify_run(&token).is_err());
    }
}
