//! A `tlsmint-operator run` process started by an [`OperatorEnv`]: its admin endpoints
//! (readiness, metrics, leadership), its log, and how it ends (SIGTERM, SIGKILL, or killed
//! by its PID when dropped).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{OperatorEnv, SELECTOR_LABEL, operator_bin};

/// A running `tlsmint-operator run` process. Killed (by its PID) when dropped.
#[derive(Debug)]
pub struct OperatorProcess {
    /// The replica's identity in the Lease.
    pub name: String,
    /// Its admin server (metrics, health).
    pub admin: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
    child: Option<tokio::process::Child>,
}

impl OperatorProcess {
    pub(super) async fn start(env: &OperatorEnv, replica: &str) -> Result<Self> {
        Self::start_with_lease(env, replica, &env.id).await
    }

    /// Starts a replica that competes for Lease `lease` (another name than the env's makes
    /// it lead alongside the others: the split-brain case).
    pub async fn start_with_lease(env: &OperatorEnv, replica: &str, lease: &str) -> Result<Self> {
        Self::start_with(env, replica, lease, &env.kubeconfig).await
    }

    /// Starts a replica that reaches the API server with `kubeconfig` (e.g. one from
    /// [`OperatorEnv::kubeconfig_via`]).
    pub async fn start_with(
        env: &OperatorEnv,
        replica: &str,
        lease: &str,
        kubeconfig: &std::path::Path,
    ) -> Result<Self> {
        Self::start_with_vars(env, replica, lease, kubeconfig, &[]).await
    }

    /// Starts a replica of the env with extra environment variables (flags).
    pub async fn start_with_env(
        env: &OperatorEnv,
        replica: &str,
        vars: &[(&str, &str)],
    ) -> Result<Self> {
        Self::start_with_vars(env, replica, &env.id, &env.kubeconfig, vars).await
    }

    async fn start_with_vars(
        env: &OperatorEnv,
        replica: &str,
        lease: &str,
        kubeconfig: &std::path::Path,
        vars: &[(&str, &str)],
    ) -> Result<Self> {
        let admin = free_port()?;
        let log = env.dir.join(format!("{replica}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = tokio::process::Command::new(operator_bin()?)
            .arg("run")
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", env.namespace.name())
            .env("POD_NAME", replica)
            .env("TLSMINT_LEASE_NAME", lease)
            .env(
                "TLSMINT_LABEL_SELECTOR",
                format!("{SELECTOR_LABEL}={}", env.id),
            )
            .env("TLSMINT_ADMIN_ADDR", admin.to_string())
            // Every test runs its own operators: the APIs take ports the kernel picks.
            .env("TLSMINT_HTTP_ADDR", "127.0.0.1:0")
            .env("TLSMINT_GRPC_ADDR", "127.0.0.1:0")
            .env("TLSMINT_LEASE_DURATION", "6s")
            .env("TLSMINT_LEASE_RENEW_DEADLINE", "4s")
            .env("TLSMINT_LEASE_RETRY_PERIOD", "1s")
            .env(
                "TLSMINT_LOG",
                std::env::var("TLSMINT_E2E_OPERATOR_LOG")
                    .unwrap_or_else(|_| "info,tlsmint_operator=debug".into()),
            )
            .envs(vars.iter().copied())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .context("starting tlsmint-operator")?;
        let process = OperatorProcess {
            name: replica.to_owned(),
            admin,
            log,
            child: Some(child),
        };
        process.wait_ready(Duration::from_secs(60)).await?;
        Ok(process)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(tokio::process::Child::id)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = self.get("/readyz").await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "operator {} not ready after {timeout:?}; log:\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `GET path` on the admin server: status code and body.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let addr = self.admin;
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        let out = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
            tcp.write_all(request.as_bytes())?;
            let mut out = String::new();
            tcp.read_to_string(&mut out)?;
            Ok(out)
        })
        .await??;
        let code = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((code, body))
    }

    /// The value of the metric line starting with `prefix` (e.g.
    /// `tlsmint_operator_leader `), if present.
    pub async fn metric(&self, prefix: &str) -> Result<Option<f64>> {
        let (_, body) = self.get("/metrics").await?;
        Ok(body
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok()))
    }

    /// Whether this replica says it leads.
    pub async fn is_leader(&self) -> bool {
        matches!(self.metric("tlsmint_operator_leader ").await, Ok(Some(v)) if v == 1.0)
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Asks the process to stop (SIGTERM) and waits for it.
    pub async fn terminate(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = tokio::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
                Ok(status) => {
                    status?;
                }
                Err(_) => child.kill().await?,
            }
        }
        Ok(())
    }

    /// The address of its Vault-compatible HTTPS API (the port the kernel picked), from the
    /// `issuance APIs listening` log line.
    pub fn http_api_addr(&self) -> Result<SocketAddr> {
        let text = std::fs::read_to_string(&self.log)?;
        let line = text
            .lines()
            .find(|l| l.contains("issuance APIs listening"))
            .context("no `issuance APIs listening` line in the log yet")?;
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http.addr="))
            .context("the listening line has no http.addr")?;
        addr.trim_matches('"')
            .parse()
            .with_context(|| format!("http.addr {addr:?} is not an address"))
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
