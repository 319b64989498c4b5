//! The client commands as a person uses them: the real `flowgate` binary against a real
//! `flowgate serve` (its own fresh database, a random port), `flowgate tail` in a
//! pseudo-terminal, the other commands with their output captured.

mod commands;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod tail;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_flowgate");

/// A `flowgate serve` child process on a fresh database; its log goes to a file.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The server's log (stdout and stderr).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server and waits until it is ready.
    pub async fn start() -> Server {
        let db = helpers::fresh_database().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .env("DATABASE_URL", &db)
            .env("FLOWGATE_ADDR", format!("127.0.0.1:{port}"))
            .env("FLOWGATE_SHUTDOWN_DELAY", "0")
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn flowgate serve");
        let base = format!("http://127.0.0.1:{port}");
        helpers::wait_ready_long(&base, Duration::from_secs(60)).await;
        Server {
            child,
            base,
            log,
            _dir: dir,
        }
    }

    /// Starts workflow `workflow` with `input` as run `id` over HTTP.
    pub async fn start_run(&self, id: &str, workflow: &str, input: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/workflows", self.base))
            .json(&serde_json::json!({"id": id, "workflow": workflow, "input": input}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    /// The run as `GET /v1/workflows/{id}` reports it.
    pub async fn run(&self, id: &str) -> serde_json::Value {
        reqwest::get(format!("{}/v1/workflows/{id}", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn stop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        for _ in 0..200 {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `flowgate args…` with pipes (not a terminal) and `env`; waits (bounded) for it.
pub async fn flowgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env_remove("FLOWGATE_URL")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command finishes in time")
        .unwrap()
}

/// A command running in a pseudo-terminal, everything it writes collected.
pub struct Pty {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    out: Arc<Mutex<Vec<u8>>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Pty {
    /// Starts `flowgate args…` on a 40×160 terminal with `env`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 160,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(BIN);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("FLOWGATE_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            child,
            out,
            _master: pair.master,
        }
    }

    /// Everything written so far, raw.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Everything written so far without escape sequences.
    pub fn text(&self) -> String {
        strip_ansi(&self.raw())
    }

    /// Waits (bounded) until the output shows `want`.
    pub async fn wait_for(&self, want: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.text().contains(want) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the terminal never showed {want:?}; it shows:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (bounded) for the exit; its exit code. The output is complete afterwards.
    pub async fn wait_exit(&mut self, within: Duration) -> u32 {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader drain what the process wrote last.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return status.exit_code();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the command did not exit in time; it shows:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// `text` without CSI escape sequences (`ESC [ … letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// True if `text` holds an SGR (colour) sequence `ESC [ digits/; m`.
pub fn has_colour(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let code: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ';')
            .collect();
        rest[code.len()..].starts_with('m')
    })
}

/// The percentages the bar showed, in order.
pub fn percentages(text: &str) -> Vec<i64> {
    text.match_indices('%')
        .filter_map(|(i, _)| {
            let head = &text[..i];
            let digits: String = head
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let before = head[..head.len() - digits.len()].chars().last();
            (before == Some(' ') || before == Some(']'))
                .then(|| digits.parse().ok())
                .flatten()
        })
        .collect()
}
