//! Periodic background work: [`Every`] ticks at a fixed period until a cancellation fires.
//! A tick that comes late (a slow iteration, a busy runtime) delays the next ones instead
//! of bunching them up.

use std::time::Duration;

use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Ticks every period until `cancel` fires.
#[derive(Debug)]
pub struct Every {
    tick: Interval,
    cancel: CancellationToken,
}

impl Every {
    /// The first tick at once, then one each `period`.
    pub fn now(period: Duration, cancel: CancellationToken) -> Every {
        Every::starting(Instant::now(), period, cancel)
    }

    /// The first tick one `period` from now.
    pub fn after(period: Duration, cancel: CancellationToken) -> Every {
        Every::starting(Instant::now() + period, period, cancel)
    }

    fn starting(start: Instant, period: Duration, cancel: CancellationToken) -> Every {
        let mut tick = interval_at(start, period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Every { tick, cancel }
    }

    /// Waits for the next tick: true, or false once cancelled (then for good).
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = self.tick.tick() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ticks_until_cancelled() {
        let cancel = CancellationToken::new();
        let mut every = Every::after(Duration::from_secs(5), cancel.clone());
        let start = Instant::now();
        assert!(every.tick().await);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(every.tick().await);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        cancel.cancel();
        assert!(!every.tick().await);
        assert!(
            Every::now(Duration::from_secs(5), CancellationToken::new())
                .tick()
                .await
        );
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
