//! Connection caps: how many connections the process and each client address may hold,
//! and the plain refusal written to a connection over a cap (no request is read).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The process holds `max_connections`.
    Process,
    /// This client address holds `max_connections_per_ip`.
    Address,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Process => "process_limit",
            Refusal::Address => "address_limit",
        }
    }
}

/// Connections closed between two returns of freed memory to the system.
const TRIM_EVERY: usize = 512;

/// Trims one wake-up may run while closes keep coming (bounds the work under steady churn).
const TRIM_PASSES: usize = 4;

/// Counts open connections, in all and per address.
pub struct Admission {
    max: usize,
    max_per_ip: usize,
    open: AtomicUsize,
    /// Closed since the last trim; past [`TRIM_EVERY`] the trimmer is woken.
    closed: AtomicUsize,
    /// Wakes [`Admission::trimmer`].
    trim: tokio::sync::Notify,
    /// Per-address counts. A std mutex held only for one map update, never across an await.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Caps of `max` connections in all and `max_per_ip` per address.
    pub fn new(max: usize, max_per_ip: usize) -> Admission {
        Admission {
            max: max.max(1),
            max_per_ip: max_per_ip.max(1),
            open: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            trim: tokio::sync::Notify::new(),
            per_ip: Mutex::default(),
        }
    }

    /// Returns freed memory to the system after many connections closed (a burst of
    /// thousands of sockets would otherwise stay resident in the allocator's arenas).
    /// Woken by closes, never by a timer; at most one trim per second.
    pub async fn trimmer(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.trim.notified() => {}
            }
            // A burst can straggle for seconds on a loaded machine: trim again while closes
            // keep coming after a trim, so the tail of the burst is released too.
            for _ in 0..TRIM_PASSES {
                self.settle().await;
                self.closed.store(0, Ordering::SeqCst);
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if self.closed.load(Ordering::SeqCst) == 0 {
                    break;
                }
            }
        }
    }

    /// Waits until no connection has closed for 250 ms (at most 30 s), so one trim
    /// releases what a whole burst freed.
    async fn settle(&self) {
        let mut seen = self.closed.load(Ordering::SeqCst);
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.closed.load(Ordering::SeqCst);
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Takes a place for a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        if self.open.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Process);
        }
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            drop(map);
            self.open.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Address);
        }
        *n += 1;
        Ok(Slot {
            admission: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let a = &self.admission;
        let mut map = a.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
        drop(map);
        a.open.fetch_sub(1, Ordering::SeqCst);
        if a.closed.fetch_add(1, Ordering::SeqCst) + 1 == TRIM_EVERY {
            a.trim.notify_one();
        }
    }
}

/// Asks glibc to hand free pages in every arena back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

/// Answers 503 (process cap) or 429 (address cap) with `Retry-After` and closes, bounded
/// in time so a client that never reads cannot hold the task.
pub async fn refuse(mut stream: TcpStream, why: Refusal) {
    let (status, code, msg) = match why {
        Refusal::Process => (
            "503 Service Unavailable",
            "too_many_connections",
            "the server holds its maximum number of connections",
        ),
        Refusal::Address => (
            "429 Too Many Requests",
            "too_many_connections",
            "this address holds its maximum number of connections",
        ),
    };
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{msg}"}}}}"#);
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 5\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        // Read the request head first (bounded), so the client sees an answer to its
        // request rather than bytes on a connection it has not used yet.
        let mut buf = [0u8; 1024];
        let mut seen = 0usize;
        let mut tail = [0u8; 4];
        while seen < 16 * 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            seen += n;
            for &b in &buf[..n] {
                tail = [tail[1], tail[2], tail[3], b];
            }
            if &tail == b"\r\n\r\n" || buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_process_and_per_address_and_frees_places() {
        let a = Arc::new(Admission::new(3, 2));
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        let ip2: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = a.admit(ip1).unwrap();
        let _s2 = a.admit(ip1).unwrap();
        assert_eq!(a.admit(ip1).err(), Some(Refusal::Address));
        let _s3 = a.admit(ip2).unwrap();
        assert_eq!(a.admit(ip2).err(), Some(Refusal::Process));
        drop(s1);
        assert!(a.admit(ip1).is_ok());
    }
}
