//! Harness for the DBOS tests: a real DBOS Python app (the pinned `dbos` package in a venv)
//! in its own process and its own database, driven line by line over stdin/stdout, and a
//! flowgate server whose DBOS source points at that database.
//!
//! Without the venv the tests skip with a loud message; with `CI=true` a missing venv fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::helpers::*;

/// The venv's Python (`FLOWGATE_DBOS_PYTHON`, else `.venv-dbos/bin/python` in the crate).
pub fn venv_python() -> Option<PathBuf> {
    let path = std::env::var_os("FLOWGATE_DBOS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-dbos/bin/python"));
    if path.exists() {
        return Some(path);
    }
    let help = "create it with: python3 -m venv .venv-dbos && \
                .venv-dbos/bin/pip install -r tests/dbos/requirements.txt";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "DBOS tests must run in CI, but {} is missing; {help}",
            path.display()
        );
    }
    eprintln!(
        "\n**********\n*** SKIPPING DBOS test: no DBOS venv at {}\n*** {help}\n**********\n",
        path.display()
    );
    None
}

/// A running DBOS app.
pub struct DbosProc {
    /// The DBOS system database.
    pub db_url: String,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl DbosProc {
    /// Launches the test app on a fresh database (DBOS creates its schema); `None` to skip.
    pub async fn launch(listen_notify: bool) -> Option<DbosProc> {
        let python = venv_python()?;
        let db_url = fresh_database().await;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dbos/app.py");
        let stderr = if std::env::var("TEST_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(python)
            .arg(script)
            .env("DBOS_SYSTEM_DATABASE_URL", &db_url)
            .env("FG_LISTEN_NOTIFY", if listen_notify { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("start the DBOS test app");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut app = DbosProc {
            db_url,
            child,
            stdin,
            lines,
        };
        app.expect("launched", Duration::from_secs(90)).await;
        Some(app)
    }

    /// Sends one command line.
    pub async fn send(&mut self, cmd: &str) {
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The rest of the next line starting with `word`, within `within`.
    pub async fn expect(&mut self, word: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("DBOS app: no `{word}` line in {within:?}"))
                .unwrap()
                .unwrap_or_else(|| panic!("DBOS app exited before `{word}`"));
            if let Some(rest) = line.strip_prefix(word) {
                return rest.trim().to_string();
            }
        }
    }

    /// Starts the demo workflow: `tokens` stream records `delay_ms` apart, progress events,
    /// then it closes the stream and waits in `DBOS.recv("approval")`.
    pub async fn start(&mut self, id: &str, tokens: u32, delay_ms: u32) {
        self.send(&format!("start {id} {tokens} {delay_ms}")).await;
        self.expect("started", Duration::from_secs(30)).await;
    }

    /// Waits for the workflow's result (as JSON).
    pub async fn result(&mut self, id: &str) -> serde_json::Value {
        self.send(&format!("result {id}")).await;
        let text = self.expect("result", Duration::from_secs(60)).await;
        serde_json::from_str(&text).unwrap()
    }

    /// Asks the app to stop, then makes sure it has.
    pub async fn quit(mut self) {
        self.send("quit").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// A DBOS app plus a flowgate server whose DBOS source reads its database.
pub async fn spawn_with_dbos(
    listen_notify: bool,
    tweak: impl FnOnce(&mut flowgate::Config),
) -> Option<(TestApp, DbosProc)> {
    let dbos = DbosProc::launch(listen_notify).await?;
    let url = dbos.db_url.clone();
    let app = spawn_app_with(|c| {
        c.dbos.url = Some(url);
        tweak(c);
    })
    .await;
    Some((app, dbos))
}

/// Terminates flowgate's LISTEN connection on the DBOS database; returns how many.
pub async fn kill_dbos_listener(dbos_db_url: &str) -> u64 {
    let db = dbos_db_url.rsplit('/').next().unwrap().to_string();
    let admin = sqlx::PgPool::connect(&admin_url()).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND application_name = 'flowgate-dbos-listener') t",
    )
    .bind(db)
    .fetch_one(&admin)
    .await
    .unwrap();
    admin.close().await;
    n as u64
}
