//! `flowgate tail`: follows a run in the terminal over its `/live` view, as the page shows
//! it — the status and the status text (event `status`), a progress bar for a run with a
//! `progress` event or a stream, each stream's records as they arrive (`output` as plain
//! text), the approval prompt with how to decide (event `request`), the decision, and the
//! outcome when the run ends.
//!
//! On a terminal the bar is one line redrawn in place (never while a stream's text is in
//! the middle of a line); anywhere else (a pipe, a file) every change is a plain line, and
//! there is no colour off a terminal or with `NO_COLOR`.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::client::{Client, LiveEvent, RunInfo};
use crate::term::{self, Paint, Tone};

/// How long the view keeps reading after the run finished, once no stream is open.
const SETTLE: Duration = Duration::from_millis(300);
/// Longest wait for open streams to close after the run finished.
const DRAIN: Duration = Duration::from_secs(10);

/// What the terminal shows, and where the cursor is.
struct View {
    id: String,
    base: String,
    paint: Paint,
    tty: bool,
    status: Option<RunInfo>,
    progress: Option<i64>,
    text: Option<String>,
    records: u64,
    open: HashSet<String>,
    prompted: bool,
    decided: bool,
    /// A stream's text ends mid-line on the terminal.
    mid_line: bool,
    /// The in-place status line is on screen (terminal only).
    footer: bool,
    /// Last bar line written off a terminal (to write only changes).
    last_plain: String,
}

impl View {
    fn finished(&self) -> bool {
        self.status.as_ref().is_some_and(RunInfo::is_finished)
    }

    fn has_bar(&self) -> bool {
        self.progress.is_some() || self.records > 0 || !self.open.is_empty()
    }

    /// The bar's value: the `progress` event, or 100 % once the run succeeded.
    fn pct(&self) -> i64 {
        let succeeded = self.status.as_ref().is_some_and(|s| s.status == "SUCCESS");
        if succeeded {
            100
        } else {
            self.progress.unwrap_or(0)
        }
    }

    fn status_line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.status {
            let word = s.outcome.as_deref().unwrap_or(&s.status);
            parts.push(self.paint.tone(term::tone_of(word), &s.status));
        }
        if self.has_bar() {
            parts.push(term::bar(self.pct()));
        }
        if let Some(t) = &self.text {
            parts.push(t.clone());
        }
        if self.progress.is_none() && self.records > 0 {
            parts.push(format!("{} records", self.records));
        }
        parts.join("  ")
    }

    fn clear_footer(&mut self) {
        if self.footer {
            eprint!("\r\x1b[2K");
            self.footer = false;
        }
    }

    /// Redraws the status line (terminal), or writes it if it changed (elsewhere); not while
    /// a stream's text is mid-line.
    fn draw(&mut self) {
        if self.mid_line {
            return;
        }
        let line = self.status_line();
        if self.tty {
            self.clear_footer();
            eprint!("{line}");
            self.footer = true;
        } else if line != self.last_plain {
            eprintln!("{line}");
            self.last_plain = line;
        }
        let _ = std::io::stderr().flush();
    }

    /// Writes a whole line above the status line.
    fn say(&mut self, line: &str) {
        self.clear_footer();
        if self.mid_line {
            println!();
            let _ = std::io::stdout().flush();
            self.mid_line = false;
        }
        eprintln!("{line}");
        self.draw();
    }

    fn record(&mut self, key: &str, value: Value) {
        self.records += 1;
        self.open.insert(key.to_string());
        self.clear_footer();
        let text = match value {
            Value::String(s) if key == "output" => s,
            other => format!("{key}: {other}\n"),
        };
        print!("{text}");
        let _ = std::io::stdout().flush();
        self.mid_line = !text.ends_with('\n');
    }

    fn closed(&mut self, key: &str) {
        self.open.remove(key);
        if self.mid_line {
            println!();
            let _ = std::io::stdout().flush();
            self.mid_line = false;
        }
        self.draw();
    }

    fn prompt(&mut self, request: &Value) {
        if self.prompted || self.decided || self.finished() {
            return;
        }
        self.prompted = true;
        let title = match request {
            Value::Object(o) => o.get("title").and_then(Value::as_str).map(str::to_string),
            Value::String(s) => Some(s.clone()),
            _ => None,
        };
        let url = if self.base == crate::client::DEFAULT_URL {
            String::new()
        } else {
            format!(" --url {}", self.base)
        };
        let p = self.paint;
        let heading = p.tone(Tone::Bold, "Approval needed:");
        let title = title.unwrap_or_else(|| "this run is waiting for a decision".into());
        self.say(&format!("{heading} {title}"));
        let id = &self.id;
        self.say(&format!(
            "  approve: flowgate approve {id}{url} [--comment TEXT]\n  reject:  flowgate reject {id}{url} [--comment TEXT]\n  or open  {}",
            Client::new(self.base.clone()).page_url(id, None)
        ));
    }

    fn decision(&mut self, d: &Value) {
        self.decided = true;
        let approved = d.get("approved").and_then(Value::as_bool).unwrap_or(false);
        let comment = d.get("comment").and_then(Value::as_str).unwrap_or_default();
        let by = d
            .get("rejected_by")
            .or_else(|| d.get("decided_by"))
            .and_then(Value::as_str)
            .or_else(|| {
                d.get("approvers")
                    .and_then(Value::as_array)
                    .and_then(|a| a.last())
                    .and_then(Value::as_str)
            });
        let word = match (approved, comment) {
            (true, _) => "Approved",
            (false, "timed out") => "Timed out",
            (false, _) => "Rejected",
        };
        let mut line = self.paint.tone(term::tone_of(word), word);
        if let Some(by) = by.filter(|_| word != "Timed out") {
            line.push_str(&format!(" by {by}"));
        }
        if !comment.is_empty() && word != "Timed out" {
            line.push_str(&format!(" — “{comment}”"));
        }
        self.say(&line);
    }

    fn apply(&mut self, ev: LiveEvent) {
        match ev {
            LiveEvent::Status(info) => {
                let first = self.status.is_none();
                let workflow = info.workflow.clone().unwrap_or_default();
                self.status = Some(info);
                if first {
                    let head = format!("run {} · {workflow}", self.id);
                    self.say(&self.paint.tone(Tone::Bold, &head));
                } else {
                    self.draw();
                }
            }
            LiveEvent::Event { key, value } => match key.as_str() {
                "progress" => {
                    self.progress = value.as_f64().map(|p| p.round() as i64);
                    self.draw();
                }
                "status" => {
                    self.text = Some(match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    });
                    self.draw();
                }
                "request" => self.prompt(&value),
                "decision" => self.decision(&value),
                _ => {}
            },
            LiveEvent::Record { key, value, .. } => self.record(&key, value),
            LiveEvent::Close { key } => self.closed(&key),
            LiveEvent::Other(_) => {}
        }
    }

    /// Leaves the status line (final values) on its own line, then the outcome.
    fn finish(&mut self) {
        self.clear_footer();
        if self.mid_line {
            println!();
            self.mid_line = false;
        }
        let line = self.status_line();
        if line != self.last_plain {
            eprintln!("{line}");
        }
        if let Some(s) = &self.status {
            if let Some(o) = &s.outcome {
                let word = self.paint.tone(term::tone_of(o), &o.replace('_', " "));
                eprintln!("outcome: {word}");
            }
        }
        let _ = std::io::stdout().flush();
    }
}

/// `flowgate tail`: follows run `id` until it ends; an error if it did not succeed.
pub async fn tail(client: &Client, id: &str) -> anyhow::Result<()> {
    // A plain request first: an unknown run or an unreachable server is one clear error.
    client.get(id, None).await?;
    let mut view = View {
        id: id.to_string(),
        base: client.base().to_string(),
        paint: Paint::new(term::stderr_color()),
        tty: std::io::stderr().is_terminal(),
        status: None,
        progress: None,
        text: None,
        records: 0,
        open: HashSet::new(),
        prompted: false,
        decided: false,
        mid_line: false,
        footer: false,
        last_plain: String::new(),
    };
    let live = client.live(id);
    futures::pin_mut!(live);
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        let wait = match drain_until {
            None => Duration::from_secs(3600),
            Some(until) => {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                if view.open.is_empty() {
                    left.min(SETTLE)
                } else {
                    left
                }
            }
        };
        let next = match tokio::time::timeout(wait, live.next()).await {
            Err(_) if drain_until.is_some() => break,
            Err(_) => continue,
            Ok(None) => break,
            Ok(Some(ev)) => ev,
        };
        match next {
            Ok(ev) => view.apply(ev),
            Err(e) => {
                view.finish();
                return Err(e.into());
            }
        }
        if view.finished() && drain_until.is_none() {
            drain_until = Some(tokio::time::Instant::now() + DRAIN);
        }
    }
    view.finish();
    let info = view
        .status
        .clone()
        .unwrap_or_else(|| unreachable_status(id));
    println!("{}", serde_json::to_string_pretty(&info.summary(None))?);
    if info.status != "SUCCESS" {
        anyhow::bail!("run {id} ended {}", info.status);
    }
    Ok(())
}

fn unreachable_status(id: &str) -> RunInfo {
    RunInfo {
        id: id.to_string(),
        status: "UNKNOWN".into(),
        output: None,
        error: None,
        outcome: None,
        workflow: None,
        token: None,
    }
}
