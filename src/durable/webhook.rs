//! Webhook plumbing for subscriptions: glob matching of stream paths, the address policy for
//! webhook URLs (http(s) only; never private, link-local or reserved addresses; loopback only
//! when the configuration allows it; checked at registration and before each delivery) and
//! Ed25519 request signing with its JWKS.
//!
//! `Webhook-Signature: t=<unix>,kid=<kid>,ed25519=<base64url>` signs `<t>.<body>`.

use std::net::IpAddr;
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

/// Whether an address may receive webhooks.
pub fn ip_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                return allow_loopback;
            }
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return ip_allowed(IpAddr::V4(v4), allow_loopback);
            }
            if v6.is_loopback() {
                return allow_loopback;
            }
            let s = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (s & 0xfe00) == 0xfc00
                || (s & 0xffc0) == 0xfe80)
        }
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
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT kid, secret FROM flowgate.ds_signing_keys ORDER BY created_at, kid LIMIT 1",
        )
        .fetch_optional(&store.pool)
        .await?;
        if let Some((kid, secret)) = row {
            if let Ok(bytes) = <[u8; 32]>::try_from(secret.as_slice()) {
                return Ok((kid, SigningKey::from_bytes(&bytes)));
            }
        }
        let secret: [u8; 32] = rand::random();
        let kid = format!("ds_{:016x}", rand::random::<u64>());
        sqlx::query(
            "INSERT INTO flowgate.ds_signing_keys (kid, secret)
             SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM flowgate.ds_signing_keys)",
        )
        .bind(&kid)
        .bind(secret.as_slice())
        .execute(&store.pool)
        .await?;
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
        ] {
            assert!(!ip_allowed(bad.parse().unwrap(), true), "{bad}");
        }
        assert!(ip_allowed("93.184.216.34".parse().unwrap(), false));
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
