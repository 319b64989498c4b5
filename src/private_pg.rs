//! A private Postgres cluster for machines with nothing configured.
//!
//! When `DATABASE_URL` is unset and nothing answers at the default address, `flowgate serve`
//! finds the installed server binaries, initialises a cluster in its data directory (kept
//! between runs), runs it on a Unix socket only, and stops it on exit. As root it runs the
//! cluster as an unprivileged user (Postgres refuses root). The cluster also dies with us
//! if we are killed (parent-death signal), so no server is left behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Why the private cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server binaries were found.
    #[error(
        "no PostgreSQL server found. Install PostgreSQL (e.g. `apt-get install postgresql`), \
         set DATABASE_URL to a server you have, or run `docker compose up`"
    )]
    NoBinaries,
    /// A step failed.
    #[error("{0}")]
    Failed(String),
    /// I/O while preparing the data directory.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running private cluster.
pub struct PrivateCluster {
    child: Child,
    /// Connection URL (Unix socket in the data directory).
    pub url: String,
    /// The data directory.
    pub data_dir: PathBuf,
}

/// The directory holding `initdb` and `postgres`, if any.
pub fn find_bindir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has(d))
        .collect();
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    if let Some(d) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has(d))
}

/// `(uid, gid)` to run the cluster as when we are root: `postgres` if it exists, else `nobody`.
fn unprivileged_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let find = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .or(Some((65534, 65534)))
}

/// Creates `dir` for the cluster's user (mode 0700) and returns its absolute path.
fn prepare_dir(dir: &Path) -> Result<PathBuf, ClusterError> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    if let Some((uid, gid)) = unprivileged_user() {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// Runs `cmd` to completion; fails with its standard error unless it succeeds.
async fn run_tool(mut cmd: Command, name: &str) -> Result<(), ClusterError> {
    let out = cmd.output().await?;
    if out.status.success() {
        return Ok(());
    }
    Err(ClusterError::Failed(format!(
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    )))
}

fn command(bin: PathBuf, user: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(bin);
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c.env("LC_ALL", "C").stdin(Stdio::null());
    c
}

impl PrivateCluster {
    /// Initialises (if needed) and starts the cluster in `data_dir`.
    pub async fn start(data_dir: &Path) -> Result<PrivateCluster, ClusterError> {
        let bindir = find_bindir().ok_or(ClusterError::NoBinaries)?;
        let data_dir = prepare_dir(data_dir)?;
        let user = unprivileged_user();
        if !data_dir.join("PG_VERSION").exists() {
            tracing::info!(dir = %data_dir.display(), "initialising a private Postgres cluster");
            let mut initdb = command(bindir.join("initdb"), user);
            initdb.args(["-D"]).arg(&data_dir).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]);
            run_tool(initdb, "initdb").await?;
        }
        Self::launch(&bindir, data_dir, user).await
    }

    /// Starts a streaming hot standby of `primary` in `data_dir` (a base backup with
    /// `pg_basebackup -R` when the directory holds no cluster yet).
    pub async fn start_standby(
        primary: &PrivateCluster,
        data_dir: &Path,
    ) -> Result<PrivateCluster, ClusterError> {
        let bindir = find_bindir().ok_or(ClusterError::NoBinaries)?;
        let data_dir = prepare_dir(data_dir)?;
        let user = unprivileged_user();
        if !data_dir.join("PG_VERSION").exists() {
            let mut backup = command(bindir.join("pg_basebackup"), user);
            backup
                .arg("-D")
                .arg(&data_dir)
                .arg("-h")
                .arg(&primary.data_dir)
                .args(["-U", "postgres", "-R", "-X", "stream", "-c", "fast"]);
            run_tool(backup, "pg_basebackup").await?;
            // The primary's socket lock files were copied along (they live in its data
            // directory); the standby would take them for a running server.
            for e in std::fs::read_dir(&data_dir)?.flatten() {
                if e.file_name().to_string_lossy().starts_with(".s.PGSQL.") {
                    std::fs::remove_file(e.path())?;
                }
            }
        }
        Self::launch(&bindir, data_dir, user).await
    }

    async fn launch(
        bindir: &Path,
        data_dir: PathBuf,
        user: Option<(u32, u32)>,
    ) -> Result<PrivateCluster, ClusterError> {
        let mut cmd = command(bindir.join("postgres"), user);
        cmd.arg("-D")
            .arg(&data_dir)
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", data_dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: prctl with PR_SET_PDEATHSIG only affects the child being started.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let url = format!(
            "postgres://postgres@localhost/postgres?host={}",
            data_dir.display()
        );
        let cluster = PrivateCluster {
            child,
            url,
            data_dir,
        };
        cluster.wait_ready().await?;
        tracing::info!(dir = %cluster.data_dir.display(), "private Postgres cluster running");
        Ok(cluster)
    }

    async fn wait_ready(&self) -> Result<(), ClusterError> {
        for _ in 0..300 {
            if let Ok(Ok(c)) =
                tokio::time::timeout(Duration::from_secs(1), sqlx::PgPool::connect(&self.url)).await
            {
                c.close().await;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ClusterError::Failed(
            "the private cluster did not accept connections within 30 s".into(),
        ))
    }

    /// Fast shutdown; waits for the server to exit.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(pid as i32, libc::SIGINT);
            }
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        tracing::info!("private Postgres cluster stopped");
    }
}
