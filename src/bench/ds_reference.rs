//! The Durable Streams Node reference server (`@durable-streams/server` 0.3.7) as a peer in
//! the `durable` scenario: installed with `npm ci` into a cache directory on first use
//! (`src/bench/ds-reference/`'s pinned lock file, embedded here), started on a free loopback
//! port in memory or file-backed (fsync per append, in a temporary directory), stopped and
//! cleaned up when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

const PACKAGE: &str = include_str!("ds-reference/package.json");
const LOCK: &str = include_str!("ds-reference/package-lock.json");
const START: &str = include_str!("ds-reference/start.mjs");

/// A running reference server.
pub struct Reference {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    child: Child,
    data: Option<PathBuf>,
}

/// Where the package is installed (`$FLOWGATE_CI_CACHE` or `~/.cache/flowgate-bench`).
fn cache_dir() -> PathBuf {
    let root = std::env::var_os("FLOWGATE_CI_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    root.join("flowgate-bench").join("ds-reference")
}

/// Installs the pinned package unless the cache already holds this exact lock file.
fn ensure_installed() -> anyhow::Result<PathBuf> {
    let dir = cache_dir();
    let installed = dir.join("node_modules/@durable-streams/server/package.json");
    let same_lock = std::fs::read_to_string(dir.join(".installed")).is_ok_and(|l| l == LOCK);
    if !(installed.exists() && same_lock) {
        println!(
            "installing @durable-streams/server 0.3.7 (npm ci) into {}",
            dir.display()
        );
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("package.json"), PACKAGE)?;
        std::fs::write(dir.join("package-lock.json"), LOCK)?;
        let ok = std::process::Command::new("npm")
            .args(["ci", "--no-fund", "--no-audit", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .status()
            .context("npm (Node.js) is needed for the reference server")?
            .success();
        anyhow::ensure!(
            ok && installed.exists(),
            "npm ci failed in {}",
            dir.display()
        );
        std::fs::write(dir.join(".installed"), LOCK)?;
    }
    std::fs::write(dir.join("start.mjs"), START)?;
    Ok(dir)
}

impl Reference {
    /// Starts the server, file-backed when `durable`.
    pub async fn start(http: &reqwest::Client, durable: bool) -> anyhow::Result<Reference> {
        let dir = ensure_installed()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = durable.then(|| std::env::temp_dir().join(format!("flowgate-dsref-{port}")));
        let mut cmd = Command::new("node");
        cmd.arg("start.mjs")
            .current_dir(&dir)
            .env("DS_PORT", port.to_string())
            .env("DS_HOST", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(d) = &data {
            std::fs::create_dir_all(d)?;
            cmd.env("DS_DATA_DIR", d);
        }
        let child = cmd.spawn().context("start node")?;
        let base = format!("http://127.0.0.1:{port}");
        let probe = format!("{base}/v1/stream/__probe");
        let me = Reference { base, child, data };
        for _ in 0..200 {
            if http.head(&probe).send().await.is_ok() {
                return Ok(me);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the reference server never answered on {}", me.base)
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(d) = &self.data {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
