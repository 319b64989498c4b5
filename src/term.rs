//! Terminal output of the client commands: colour only on a terminal and never with
//! `NO_COLOR` set (<https://no-color.org>), the progress bar, and a status's colour.

use std::io::IsTerminal;

/// False when `NO_COLOR` is set to anything but the empty string.
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// True if standard error is a terminal and colour is allowed: what the logs and the
/// commands' human output use.
pub fn stderr_color() -> bool {
    color_allowed() && std::io::stderr().is_terminal()
}

/// Colours for one output (all no-ops when off).
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    on: bool,
}

/// A colour that says something.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tone {
    /// Succeeded, approved.
    Good,
    /// Failed, rejected.
    Bad,
    /// Cancelled, timed out.
    Warn,
    /// Still going.
    Busy,
    /// Headings.
    Bold,
    /// Hints.
    Dim,
}

impl Paint {
    /// Colours on or off.
    pub fn new(on: bool) -> Paint {
        Paint { on }
    }

    /// True if colours are written.
    pub fn on(self) -> bool {
        self.on
    }

    /// `text` in `tone`.
    pub fn tone(self, tone: Tone, text: &str) -> String {
        if !self.on {
            return text.to_string();
        }
        let code = match tone {
            Tone::Good => "1;32",
            Tone::Bad => "1;31",
            Tone::Warn => "1;33",
            Tone::Busy => "1;36",
            Tone::Bold => "1",
            Tone::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// The colour a run's status or outcome word means.
pub fn tone_of(word: &str) -> Tone {
    match word.to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "approved" | "ok" => Tone::Good,
        "error" | "failed" | "rejected" => Tone::Bad,
        "cancelled" | "canceled" | "timed_out" | "timed out" => Tone::Warn,
        _ => Tone::Busy,
    }
}

/// Renders a 30-character progress bar: `[#########.....................]  30%`.
pub fn bar(pct: i64) -> String {
    let pct = pct.clamp(0, 100);
    let filled = (pct * 30 / 100) as usize;
    format!(
        "[{}{}] {pct:>3}%",
        "#".repeat(filled),
        ".".repeat(30 - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_is_clamped_and_fills_in_thirtieths() {
        assert_eq!(bar(-5), format!("[{}]   0%", ".".repeat(30)));
        assert_eq!(bar(100), format!("[{}] 100%", "#".repeat(30)));
        assert_eq!(bar(250), bar(100));
        assert!(bar(50).starts_with(&format!("[{}.", "#".repeat(15))));
    }

    #[test]
    fn paint_off_writes_no_escape_codes() {
        let off = Paint::new(false);
        assert_eq!(off.tone(Tone::Good, "SUCCESS"), "SUCCESS");
        assert!(Paint::new(true).tone(Tone::Bad, "ERROR").contains('\x1b'));
    }

    #[test]
    fn outcome_words_have_meaningful_tones() {
        assert_eq!(tone_of("SUCCESS"), Tone::Good);
        assert_eq!(tone_of("rejected"), Tone::Bad);
        assert_eq!(tone_of("timed_out"), Tone::Warn);
        assert_eq!(tone_of("PENDING"), Tone::Busy);
    }
}
