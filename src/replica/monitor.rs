//! The primary's WAL position (the fence, shared by every read waiting at one moment), the
//! wait for a standby's replay, and the probe loop behind lag metrics and readiness. The
//! statements are in [`crate::store::probe`].

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{lock, Health, Replicas, Standby};
use crate::error::StoreError;
use crate::store::probe::WalFence;

/// One primary WAL query at a time; a reader that asked while one was running waits for the
/// next and shares it with everyone else waiting.
#[derive(Default)]
pub struct Fence {
    running: tokio::sync::Mutex<()>,
    last: std::sync::Mutex<Option<(Instant, FencePoint)>>,
}

/// What the primary had committed at one moment.
#[derive(Debug, Clone)]
pub struct FencePoint {
    /// A WAL position at or past the commit record of every transaction in `snapshot`.
    pub lsn: i64,
    /// The primary's snapshot (`xmin:xmax:xip`): the transactions committed by then.
    pub snapshot: String,
}

impl Replicas {
    /// A primary position at or past every commit made before this call.
    pub async fn fence(&self) -> Result<FencePoint, StoreError> {
        let asked = Instant::now();
        let fence = &self.inner.fence;
        let _turn = fence.running.lock().await;
        if let Some((at, point)) = lock(&fence.last).as_ref() {
            if *at >= asked {
                return Ok(point.clone());
            }
        }
        let started = Instant::now();
        self.inner.metrics.fences.inc();
        let WalFence { lsn, snapshot } = self.inner.primary.wal_fence().await?;
        let point = FencePoint { lsn, snapshot };
        *lock(&fence.last) = Some((started, point.clone()));
        Ok(point)
    }

    /// Waits until `sb` has replayed past primary position `lsn`; false at `deadline` or
    /// if it left recovery (then it is marked promoted).
    pub(super) async fn wait_lsn(
        &self,
        sb: &Standby,
        lsn: i64,
        deadline: Instant,
    ) -> Result<bool, StoreError> {
        let mut pause = Duration::from_millis(1);
        loop {
            let (recovering, replayed) = standby_lsn(sb).await?;
            if !recovering {
                sb.mark(Health::Promoted);
                return Ok(false);
            }
            if replayed >= lsn {
                return Ok(true);
            }
            if Instant::now() + pause >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(16));
        }
    }

    /// The probe period.
    pub fn probe_period(&self) -> Duration {
        self.inner.probe
    }
}

async fn standby_lsn(sb: &Standby) -> Result<(bool, i64), StoreError> {
    sb.store.replay_position().await
}

/// Probes every standby each period: replay position against the primary's, recovery, and
/// reachability. A standby returns to service once it has replayed past a primary position
/// sampled after it was set aside.
pub async fn run(r: Replicas, cancel: CancellationToken) {
    let mut every = crate::every::Every::now(r.inner.probe, cancel);
    while every.tick().await {
        let primary: Option<i64> = tokio::time::timeout(
            r.inner.bound.max(Duration::from_millis(200)),
            r.inner.primary.wal_position(),
        )
        .await
        .ok()
        .and_then(Result::ok);
        let Some(primary) = primary else { continue };
        for sb in r.standbys() {
            probe(&r, sb, primary).await;
        }
    }
}

async fn probe(r: &Replicas, sb: &Standby, primary: i64) {
    let now = Instant::now();
    let m = &r.inner.metrics;
    let got = tokio::time::timeout(
        r.inner.bound.max(Duration::from_millis(200)),
        standby_lsn(sb),
    )
    .await
    .ok()
    .and_then(Result::ok);
    let Some((recovering, replayed)) = got else {
        sb.mark(Health::Down);
        m.serving.with_label_values(&[&sb.label]).set(0);
        return;
    };
    let lag_seconds = {
        let mut samples = lock(&sb.samples);
        samples.push_back((now, primary));
        while samples.front().is_some_and(|(_, lsn)| *lsn <= replayed) || samples.len() > 256 {
            samples.pop_front();
        }
        // The oldest primary position not replayed yet: how long ago it was sampled.
        samples
            .front()
            .map_or(0.0, |(at, _)| now.duration_since(*at).as_secs_f64())
    };
    let lag_bytes = (primary - replayed).max(0);
    let bound = r.inner.bound.as_secs_f64();
    sb.set(|s| {
        s.lag_bytes = lag_bytes;
        s.lag_seconds = lag_seconds;
        if !recovering {
            s.state = Health::Promoted;
            return;
        }
        match s.state {
            Health::Ok if lag_seconds > bound => {
                s.state = Health::Behind;
                s.target = Some(primary);
            }
            Health::Ok => {}
            // Set aside: back once past a primary position sampled after that.
            _ => match s.target {
                Some(t) if replayed >= t => {
                    s.state = Health::Ok;
                    s.target = None;
                }
                Some(_) => {}
                None => {
                    s.state = Health::Behind;
                    s.target = Some(primary);
                }
            },
        }
    });
    let st = sb.state();
    m.lag_bytes.with_label_values(&[&sb.label]).set(lag_bytes);
    m.lag_ms
        .with_label_values(&[&sb.label])
        .set((lag_seconds * 1000.0) as i64);
    m.serving
        .with_label_values(&[&sb.label])
        .set((st.state == Health::Ok) as i64);
    m.promoted
        .with_label_values(&[&sb.label])
        .set((st.state == Health::Promoted) as i64);
}
