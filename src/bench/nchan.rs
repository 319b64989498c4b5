//! Nchan (nginx's pub/sub module, C) as a fan-out peer: installed from Debian's
//! `libnginx-mod-nchan` when missing (root only), started on a free port with a config of
//! its own in a temporary directory, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

const MODULE: &str = "/usr/share/nginx/modules/ngx_nchan_module.so";

/// A running nginx with Nchan: `GET {base}/sub/{ch}` (EventSource), `POST {base}/pub/{ch}`.
pub struct Nchan {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    master: Child,
    dir: PathBuf,
}

/// Installs nginx and Nchan from Debian's packages if they are missing.
fn ensure_installed() -> anyhow::Result<()> {
    if Path::new(MODULE).exists() && Path::new("/usr/sbin/nginx").exists() {
        return Ok(());
    }
    println!("installing nginx-light and libnginx-mod-nchan (apt-get) for the Nchan comparison");
    let ok = std::process::Command::new("apt-get")
        .args(["install", "-y", "-qq", "nginx-light", "libnginx-mod-nchan"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("apt-get")?
        .success();
    anyhow::ensure!(ok && Path::new(MODULE).exists(), "could not install Nchan");
    Ok(())
}

impl Nchan {
    /// Starts nginx + Nchan with `workers` worker processes on a free loopback port.
    pub async fn start(http: &reqwest::Client, workers: usize) -> anyhow::Result<Nchan> {
        ensure_installed()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("flowgate-nchan-{port}"));
        std::fs::create_dir_all(dir.join("logs"))?;
        let conf = format!(
            "load_module {MODULE};\nworker_processes {workers};\nerror_log {dir}/logs/error.log warn;\n\
             pid {dir}/nginx.pid;\nworker_rlimit_nofile 65536;\n\
             events {{ worker_connections 40000; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location ~ /pub/(\\w+)$ {{ nchan_publisher; nchan_channel_id $1; nchan_message_buffer_length 1000; }}\n\
                 location ~ /sub/(\\w+)$ {{ nchan_subscriber eventsource; nchan_channel_id $1; }}\n  }}\n}}\n",
            dir = dir.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let master = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start nginx")?;
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http
                .post(format!("{base}/pub/warmup"))
                .body("x")
                .send()
                .await
                .is_ok()
            {
                return Ok(Nchan { base, master, dir });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("nginx with Nchan never answered on {base}")
    }

    /// The master's and workers' process ids.
    pub fn pids(&self) -> Vec<u32> {
        let Some(master) = self.master.id() else {
            return Vec::new();
        };
        let mut pids = vec![master];
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .unwrap_or_default();
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
        pids
    }
}

impl Drop for Nchan {
    fn drop(&mut self) {
        let _ = self.master.start_kill();
        for pid in self.pids().into_iter().skip(1) {
            // SAFETY: signalling nginx workers this bench started.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
