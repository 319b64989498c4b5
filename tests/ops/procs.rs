//! Running `flowgate` as a child process, and reading its SSE with a raw copy kept.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};
use tokio::process::{Child, Command};

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `flowgate serve` child process.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Proc {
    /// Starts `flowgate serve` with `env` on a free port and waits until it is ready.
    pub async fn start(env: &[(&str, &str)]) -> Proc {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowgate"));
        cmd.arg("serve")
            .env_remove("DATABASE_URL")
            .env("FLOWGATE_ADDR", format!("127.0.0.1:{port}"))
            .env("FLOWGATE_SHUTDOWN_DELAY", "0")
            .env("RUST_LOG", "info")
            .kill_on_drop(true)
            .stdin(Stdio::null());
        if std::env::var("TEST_LOG").is_err() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn flowgate");
        let base = format!("http://127.0.0.1:{port}");
        crate::helpers::wait_ready_long(&base, Duration::from_secs(60)).await;
        Proc { child, base }
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        let pid = self.child.id().expect("running") as i32;
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(pid, sig);
        }
    }

    /// Waits (bounded) for exit; returns the exit code and how long it took.
    pub async fn wait_exit(&mut self, within: Duration) -> (Option<i32>, Duration) {
        let t = Instant::now();
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("process exits in time")
            .unwrap();
        (status.code(), t.elapsed())
    }
}

/// An SSE reader that also keeps the raw text (to see comments and `retry:` hints, which
/// produce no events).
pub struct RawSse {
    /// Parsed events.
    pub events: std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>,
    /// Everything received, as text.
    pub raw: Arc<Mutex<String>>,
}

/// Opens an SSE connection.
pub async fn open_sse(url: &str, last_event_id: Option<&str>) -> RawSse {
    let mut req = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let raw = Arc::new(Mutex::new(String::new()));
    let copy = raw.clone();
    let bytes = resp.bytes_stream().inspect(move |c| {
        if let Ok(c) = c {
            copy.lock().unwrap().push_str(&String::from_utf8_lossy(c));
        }
    });
    let events = bytes
        .eventsource()
        .take_while(|e| futures::future::ready(e.is_ok()))
        .map(|e| e.unwrap());
    RawSse {
        events: Box::pin(events),
        raw,
    }
}

/// Reads data events until the stream ends, `end` arrives, or `within` passes; returns
/// `(offset ids, saw end)`.
pub async fn read_until_end(sse: &mut RawSse, within: Duration) -> (Vec<i64>, bool) {
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, sse.events.next()).await {
            Ok(Some(ev)) if ev.event == "end" => return (ids, true),
            Ok(Some(ev)) => ids.push(ev.id.parse().unwrap()),
            Ok(None) | Err(_) => return (ids, false),
        }
    }
}
