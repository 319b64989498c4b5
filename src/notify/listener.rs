//! The one LISTEN connection per process.
//!
//! A dedicated tokio-postgres connection whose messages we poll ourselves with
//! `Connection::poll_message` (spawning the connection future would drop notifications).
//! On any disconnect it reconnects with backoff, LISTENs again and only then asks the hub to
//! resync, so every subscription re-reads from its own position and nothing committed while
//! we were deaf is missed. It never reads data itself. [`ListenLoop`] is the same loop for any
//! channels and database (the DBOS source listens on DBOS's own channels with it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::{Note, CHANNEL};
use crate::hub::Hub;

/// Shared view of the listener, for readiness and metrics.
#[derive(Debug, Default)]
pub struct ListenerState {
    /// True while LISTEN is active on a live connection.
    pub connected: AtomicBool,
    /// Reconnects after the first successful connection.
    pub reconnects: AtomicU64,
    /// Notifications received (including our own echoes, which are skipped).
    pub received: AtomicU64,
}

/// Runs the listener until `cancel` fires.
pub struct Listener {
    /// Connection settings (from `DATABASE_URL`).
    pub config: tokio_postgres::Config,
    /// Where notes go.
    pub hub: Hub,
    /// This process's origin tag: notes it sent itself were already dispatched locally.
    pub origin: String,
    /// Shared state.
    pub state: Arc<ListenerState>,
}

/// What a LISTEN connection does with what it hears.
pub trait Sink: Send + Sync {
    /// LISTEN is active on a fresh connection: re-read everything (notes may have been missed).
    fn connected(&self);
    /// A notification arrived.
    fn notify(&self, channel: &str, payload: &str);
}

/// A LISTEN connection on some channels of some database, reconnecting forever.
pub struct ListenLoop<S> {
    /// Connection settings.
    pub config: tokio_postgres::Config,
    /// `application_name` of the connection (shows in `pg_stat_activity`).
    pub app_name: &'static str,
    /// Channels to LISTEN on (plain identifiers).
    pub channels: Vec<&'static str>,
    /// Shared state.
    pub state: Arc<ListenerState>,
    /// Where notifications go.
    pub sink: S,
}

/// The LISTEN connection's settings for `url`. A URL that names a socket directory in its
/// `host` parameter (`postgres://u@localhost/db?host=/dir`, as sqlx and the private cluster
/// write it) means that socket; tokio-postgres would also try the authority's host first
/// and could reach another server, so the authority's host is dropped.
pub fn listen_config(url: &str) -> Result<tokio_postgres::Config, tokio_postgres::Error> {
    let socket = url
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("host=/")));
    if let (true, Some((scheme, rest))) = (socket, url.split_once("://")) {
        if let Some((auth, path)) = rest.split_once('/') {
            let (user, host) = match auth.rsplit_once('@') {
                Some((u, h)) => (format!("{u}@"), h),
                None => (String::new(), auth),
            };
            // The port names the socket file: keep it as a parameter.
            let port = match host.rsplit_once(':') {
                Some((_, p)) if !p.is_empty() => format!("&port={p}"),
                _ => String::new(),
            };
            return format!("{scheme}://{user}/{path}{port}").parse();
        }
    }
    url.parse()
}

/// flowgate's own channel: notes from other processes go to the hub.
struct HubSink {
    hub: Hub,
    origin: String,
}

impl Sink for HubSink {
    fn connected(&self) {
        self.hub.resync_all();
    }

    fn notify(&self, _channel: &str, payload: &str) {
        match Note::decode(payload) {
            Some((origin, _)) if origin == self.origin => {}
            Some((_, note)) => self.hub.dispatch(&note),
            None => tracing::debug!(payload, "ignoring malformed note"),
        }
    }
}

impl Listener {
    /// Connects, listens, dispatches; reconnects forever with capped backoff.
    pub async fn run(self, cancel: CancellationToken) {
        ListenLoop {
            config: self.config,
            app_name: "flowgate-listener",
            channels: vec![CHANNEL],
            state: self.state,
            sink: HubSink {
                hub: self.hub,
                origin: self.origin,
            },
        }
        .run(cancel)
        .await
    }
}

impl<S: Sink> ListenLoop<S> {
    /// Connects, listens, dispatches; reconnects forever with capped backoff.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        let mut ever_connected = false;
        loop {
            let outcome = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.session(&mut ever_connected, &mut backoff) => r,
            };
            self.state.connected.store(false, Ordering::SeqCst);
            match outcome {
                Ok(()) => tracing::warn!(
                    name = self.app_name,
                    "listener connection closed; reconnecting"
                ),
                Err(e) => {
                    tracing::warn!(name = self.app_name, error = %e, "listener connection lost; reconnecting")
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One connection's life: returns when it ends.
    async fn session(
        &self,
        ever_connected: &mut bool,
        backoff: &mut Duration,
    ) -> Result<(), tokio_postgres::Error> {
        let mut config = self.config.clone();
        config.application_name(self.app_name);
        config.connect_timeout(Duration::from_secs(5));
        config.keepalives_idle(Duration::from_secs(30));
        let (client, mut conn) = config.connect(tokio_postgres::NoTls).await?;
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        let listen_sql: String = self
            .channels
            .iter()
            .map(|c| format!("LISTEN {c};"))
            .collect();
        let listen = client.batch_execute(&listen_sql);
        tokio::pin!(listen);
        let mut listening = false;
        loop {
            tokio::select! {
                r = &mut listen, if !listening => {
                    r?;
                    listening = true;
                    self.state.connected.store(true, Ordering::SeqCst);
                    *backoff = Duration::from_millis(50);
                    if *ever_connected {
                        self.state.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(name = self.app_name, "listener reconnected; resyncing subscriptions");
                    } else {
                        tracing::info!(name = self.app_name, "listener connected");
                    }
                    *ever_connected = true;
                    // Anything committed while we were not listening is found by re-reading.
                    self.sink.connected();
                }
                m = messages.next() => match m {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        self.state.received.fetch_add(1, Ordering::Relaxed);
                        self.sink.notify(n.channel(), n.payload());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::listen_config;

    #[test]
    fn a_socket_host_parameter_wins_over_the_authority() {
        let c = listen_config("postgres://postgres@localhost/postgres?host=/tmp/pg").unwrap();
        assert_eq!(
            c.get_hosts(),
            &[tokio_postgres::config::Host::Unix("/tmp/pg".into())]
        );
        assert_eq!(c.get_user(), Some("postgres"));
        assert_eq!(c.get_dbname(), Some("postgres"));
        let c = listen_config("postgres://u@localhost:5433/db?host=/tmp/pg").unwrap();
        assert_eq!(c.get_ports(), &[5433]);
        let c = listen_config("postgres://u:p@db.example:6543/app").unwrap();
        assert_eq!(
            c.get_hosts(),
            &[tokio_postgres::config::Host::Tcp("db.example".into())]
        );
    }
}
