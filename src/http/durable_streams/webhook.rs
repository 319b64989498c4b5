//! Webhook plumbing for subscriptions: glob matching of stream paths, the address policy for
//! webhook URLs (http(s) only; never private, link-local or reserved addresses; loopback only
//! when the configuration allows it; checked at registration and before each delivery) and
//! Ed25519 request signing with its JWKS.
//!
//! `Webhook-Signature: t=<unix>,kid=<kid>,ed25519=<base64url>` signs `<t>.<body>`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

use crate::error::StoreError;
use crate::store::Store;

/// True if `path` matches `pattern`: `*` matches within one path segment, `**` anything.
pub fn glob(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => (0..=s.len()).any(|i| go(&p[2..], &s[i..])),
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| go(&p[1..], &s[i..])),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

/// True for IPv4 addresses in the IANA special-purpose registry (or otherwise not globally
/// reachable): this network, private, shared (CGN), loopback, link-local, IETF protocol
/// assignments, documentation, 6to4 relay, benchmarking, multicast, reserved, broadcast.
fn v4_special(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224
}

/// The IPv4 address embedded in an IPv6 one by IPv4-mapped (`::ffff:0:0/96`), NAT64
/// (`64:ff9b::/96`) or 6to4 (`2002::/16`) addressing.
fn v6_embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// True for IPv6 addresses in the IANA special-purpose registry: unspecified, IPv4-compatible
/// (`::/96`, deprecated), discard, IETF protocol assignments (incl. Teredo), documentation,
/// local-use NAT64, ULA, link-local, site-local (deprecated), SRv6 SIDs, multicast.
fn v6_special(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    (s[..6] == [0; 6])
        || (s[..4] == [0x100, 0, 0, 0])
        || (s[0] == 0x2001 && s[1] < 0x200)
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        || (s[0] == 0x3fff && s[1] < 0x1000)
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || s[0] == 0x5f00
        || (s[0] & 0xff00) == 0xff00
}

/// Whether an address may receive webhooks: globally reachable only (IPv4 embedded in IPv6
/// is checked as IPv4); loopback (`127.0.0.0/8`, `::1`, and IPv4-mapped loopback) only when
/// `allow_loopback`.
pub fn ip_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => allow_loopback,
        IpAddr::V4(v4) => !v4_special(v4),
        IpAddr::V6(v6) if v6.is_loopback() => allow_loopback,
        IpAddr::V6(v6) => match v6_embedded_v4(v6) {
            // Loopback reached through mapped addressing is still loopback; through NAT64
            // or 6to4 it is not a local address at all, so refuse it.
            Some(v4) if v6.to_ipv4_mapped().is_some() => ip_allowed(IpAddr::V4(v4), allow_loopback),
            Some(v4) => !v4_special(v4) && !v4.is_loopback(),
            None => !v6_special(v6),
        },
    }
}

/// Checks a webhook URL: http(s), and every address it resolves to allowed.
pub async fn check_url(url: &str, allow_loopback: bool) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("only http and https URLs".into());
    }
    let host = u
        .host_str()
        .ok_or("URL has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = u.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| "host lookup timed out".to_string())?
        .map_err(|e| format!("host lookup failed: {e}"))?
        .map(|a| a.ip())
        .collect(),
    };
    if addrs.is_empty() || addrs.iter().any(|ip| !ip_allowed(*ip, allow_loopback)) {
        return Err("the webhook host is a private or reserved address".into());
    }
    Ok(u)
}

/// The signing key (created on first use, shared through the database).
pub async fn signing_key(store: &Store) -> Result<(String, SigningKey), StoreError> {
    for _ in 0..2 {
        if let Some((kid, secret)) = store.ds_signing_key().await? {
            if let Ok(bytes) = <[u8; 32]>::try_from(secret.as_slice()) {
                return Ok((kid, SigningKey::from_bytes(&bytes)));
            }
        }
        let secret: [u8; 32] = rand::random();
        let kid = format!("ds_{:016x}", rand::random::<u64>());
        store.ds_add_signing_key(&kid, &secret).await?;
    }
    Err(StoreError::Conflict("no usable signing key".into()))
}

/// The public key set.
pub fn jwks(kid: &str, key: &SigningKey) -> Value {
    json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
    }]})
}

/// The `Webhook-Signature` header value for `body` at Unix time `t`.
pub fn signature(kid: &str, key: &SigningKey, t: i64, body: &[u8]) -> String {
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    let sig = key.sign(&msg);
    format!(
        "t={t},kid={kid},ed25519={}",
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("events/*", "events/a-1"));
        assert!(!glob("events/*", "events/a/b"));
        assert!(glob("events/**", "events/a/b"));
        assert!(!glob("events/*", "other/a"));
        assert!(glob("exact", "exact"));
        assert!(glob("*/x", "a/x"));
    }

    #[test]
    fn addresses() {
        for bad in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "2002:7f00:1::",
            "64:ff9b::a9fe:a9fe",
            "fec0::1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.1",
            "192.0.2.1",
            "255.255.255.255",
            "2001:db8::1",
            "2001::1",
            "64:ff9b:1::1",
            "::",
            "ff02::1",
        ] {
            assert!(!ip_allowed(bad.parse().unwrap(), true), "{bad}");
        }
        assert!(ip_allowed("93.184.216.34".parse().unwrap(), false));
        assert!(ip_allowed("2606:2800:220:1::1".parse().unwrap(), false));
        assert!(ip_allowed("::ffff:93.184.216.34".parse().unwrap(), false));
        assert!(ip_allowed("64:ff9b::5db8:d822".parse().unwrap(), false));
        assert!(ip_allowed("::ffff:127.0.0.1".parse().unwrap(), true));
        assert!(!ip_allowed("127.0.0.1".parse().unwrap(), false));
        assert!(ip_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(!ip_allowed("::1".parse().unwrap(), false));
    }

    #[test]
    fn signatures_verify() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let s = signature("ds_k", &key, 1700000000, b"{}");
        let sig = s.rsplit_once("ed25519=").unwrap().1;
        let bytes: [u8; 64] = URL_SAFE_NO_PAD.decode(sig).unwrap().try_into().unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        assert!(key
            .verifying_key()
            .verify_strict(b"1700000000.{}", &sig)
            .is_ok());
        assert!(key
            .verifying_key()
            .verify_strict(b"1700000001.{}", &sig)
            .is_err());
    }
}
