//! The connection layer: accepts TCP connections, refuses them over the process and
//! per-address caps, and serves each with hyper's HTTP/1.1 connection under three bounds —
//! a complete request head within `header_timeout`, an idle keep-alive connection closed
//! after `idle_timeout`, and a head no larger than `max_header_bytes` (431; 414 for a
//! URI over `max_uri_bytes`). A response in progress (an SSE stream, a long-poll) is never
//! idle. On shutdown each connection finishes its request in flight and closes.
//!
//! HTTP/1.1 only: browsers speak it to a plain-HTTP origin, TLS terminators speak it to
//! their backends, and it keeps the per-connection state small.

mod conn;
mod limits;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::conn::ConnConfig;
use crate::metrics::Metrics;
pub use limits::{Admission, Refusal};

/// Accepts connections on `tcp` and serves `router` on each until `shutdown`; then waits
/// for the open connections to finish (the caller bounds that wait).
pub fn serve(
    tracker: &TaskTracker,
    tcp: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    config: &ConnConfig,
    metrics: Metrics,
) {
    let admission = Arc::new(Admission::new(
        config.max_connections,
        config.max_connections_per_ip,
    ));
    let settings = Arc::new(conn::Settings::from(config));
    tracker.spawn(admission.clone().trimmer(shutdown.clone()));
    tracker.spawn(async move {
        let conns = TaskTracker::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = tcp.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            accept(
                &conns, stream, peer, &admission, &settings, &router, &shutdown, &metrics,
            );
        }
        drop(tcp);
        conns.close();
        conns.wait().await;
    });
}

#[allow(clippy::too_many_arguments)]
fn accept(
    conns: &TaskTracker,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    admission: &Arc<Admission>,
    settings: &Arc<conn::Settings>,
    router: &Router,
    shutdown: &CancellationToken,
    metrics: &Metrics,
) {
    match admission.admit(peer.ip()) {
        Ok(slot) => {
            let _ = stream.set_nodelay(true);
            metrics.connections_open.inc();
            let open = metrics.connections_open.clone();
            let fut = conn::serve(
                stream,
                peer,
                router.clone(),
                settings.clone(),
                shutdown.clone(),
                metrics.clone(),
            );
            conns.spawn(async move {
                fut.await;
                drop(slot);
                open.dec();
            });
        }
        Err(refusal) => {
            metrics
                .connections_refused
                .with_label_values(&[refusal.label()])
                .inc();
            conns.spawn(limits::refuse(stream, refusal));
        }
    }
}
