//! `tokens`: streams deterministic pseudo-random text, one word per record, into stream
//! `output` at a given rate, with `progress` events, then closes the stream.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{WorkflowContext, WorkflowResult};

/// Input of `tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TokensInput {
    /// Number of words.
    #[schemars(range(min = 1, max = 10000))]
    pub words: u32,
    /// Words per second.
    #[schemars(range(min = 0.1, max = 1000.0))]
    pub rate: f64,
    /// Seed of the text (same seed, same text).
    pub seed: u64,
}

impl Default for TokensInput {
    fn default() -> Self {
        TokensInput {
            words: 240,
            rate: 20.0,
            seed: 1,
        }
    }
}

/// Output of `tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensOutput {
    /// Number of words.
    pub words: u32,
    /// The whole text.
    pub text: String,
}

const VOCABULARY: &[&str] = &[
    "the",
    "durable",
    "stream",
    "flows",
    "through",
    "postgres",
    "while",
    "workers",
    "replay",
    "every",
    "recorded",
    "step",
    "and",
    "browsers",
    "watch",
    "tokens",
    "arrive",
    "in",
    "order",
    "without",
    "gaps",
    "or",
    "duplicates",
    "a",
    "queue",
    "wakes",
    "on",
    "notify",
    "never",
    "polling",
    "events",
    "carry",
    "progress",
    "to",
    "the",
    "page",
    "live",
];

/// The tokens of the text for `seed`: each word followed by a space, the last by a period.
pub fn generate(words: u32, seed: u64) -> Vec<String> {
    // splitmix64: tiny, deterministic, good enough for demo text.
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..words)
        .map(|i| {
            let w = VOCABULARY[(next() % VOCABULARY.len() as u64) as usize];
            if i + 1 == words {
                format!("{w}.")
            } else {
                format!("{w} ")
            }
        })
        .collect()
}

/// The `tokens` workflow.
pub async fn tokens(ctx: WorkflowContext, input: TokensInput) -> WorkflowResult<TokensOutput> {
    let words = input.words.clamp(1, 10000);
    let rate = if input.rate.is_finite() {
        input.rate.clamp(0.1, 1000.0)
    } else {
        20.0
    };
    let gap = Duration::from_secs_f64(1.0 / rate);
    let seed = input.seed;
    let plan: Vec<String> = ctx
        .step(
            "plan",
            || async move { Ok::<_, String>(generate(words, seed)) },
        )
        .await?;
    ctx.set_event("progress", 0).await?;
    for (i, token) in plan.iter().enumerate() {
        ctx.sleep(gap).await?;
        ctx.write_stream("output", token).await?;
        ctx.set_event("progress", (i as u32 + 1) * 100 / words)
            .await?;
    }
    ctx.close_stream("output").await?;
    Ok(TokensOutput {
        words,
        text: plan.concat(),
    })
}

#[cfg(test)]
mod tests {
    use super::generate;

    #[test]
    fn text_is_deterministic_and_punctuated() {
        let a = generate(5, 7);
        assert_eq!(a, generate(5, 7));
        assert_ne!(a, generate(5, 8));
        assert!(a[..4].iter().all(|t| t.ends_with(' ')));
        assert!(a[4].ends_with('.'));
    }
}
