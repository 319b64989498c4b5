//! The demo workflows the `flowgate` binary registers, each runnable with `{}`:
//! `progress` (CPU steps with progress events), `approval` (waits for a message),
//! `tokens` (a deterministic token stream) and `fanout` (children on a queue).
//!
//! Their inputs and the events and streams they publish are a contract with the page in
//! `static/`; change them together. [`testing`] holds hidden workflows that the integration
//! tests drive through a real `flowgate` process.

pub mod approval;
pub mod progress;
pub mod testing;
pub mod tokens;

use crate::runtime::{Runtime, RuntimeBuilder};

/// A runtime builder with the demo workflows (and the hidden test workflows if asked).
pub fn builder(test_workflows: bool) -> RuntimeBuilder {
    let b = Runtime::builder()
        .workflow("progress", progress::progress)
        .workflow("approval", approval::approval)
        .workflow("tokens", tokens::tokens)
        .workflow("fanout", progress::fanout);
    if test_workflows {
        testing::register(b)
    } else {
        b
    }
}

/// Naive Fibonacci: honest CPU work for the demos.
pub fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fib_values() {
        assert_eq!(super::fib(0), 0);
        assert_eq!(super::fib(10), 55);
        assert_eq!(super::fib(20), 6765);
    }
}
