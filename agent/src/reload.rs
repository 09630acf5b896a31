//! Telling the application that the files changed (a new certificate, or new roots to
//! trust): a signal to processes found by name in the shared process namespace
//! (`shareProcessNamespace: true`), and/or a POST to a URL inside the pod. Failures are
//! logged, never fatal: the files are already in place.
//!
//! Owns process lookup and the HTTP call. Must not: send anything but the configured signal,
//! or call anything but the configured URL.

use std::path::Path;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Time allowed for the reload call.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// A signal the agent may send (the names the annotations and `--reload-signal` take).
pub use tlsmint_api::annotations::ReloadSignal as SignalName;

fn signal_of(name: SignalName) -> Signal {
    match name {
        SignalName::Hup => Signal::HUP,
        SignalName::Usr1 => Signal::USR1,
        SignalName::Usr2 => Signal::USR2,
        SignalName::Term => Signal::TERM,
    }
}

/// What to do after a rotation.
#[derive(Clone, Debug, Default)]
pub struct Reload {
    /// Signal and process name.
    pub signal: Option<(SignalName, String)>,
    /// `http://host:port/path` to POST to.
    pub url: Option<String>,
    /// Where processes are listed (`/proc`).
    pub proc_root: Option<std::path::PathBuf>,
}

impl Reload {
    /// Sends the signal and makes the call, logging what happened.
    pub async fn run(&self) {
        if let Some((signal, name)) = &self.signal {
            let root = self.proc_root.as_deref().unwrap_or(Path::new("/proc"));
            let pids = find_processes(root, name);
            if pids.is_empty() {
                tracing::warn!(process = %name, "no process to signal after the rotation");
            }
            for pid in pids {
                match Pid::from_raw(pid).map(|p| kill_process(p, signal_of(*signal))) {
                    Some(Ok(())) => {
                        tracing::info!(process = %name, pid, signal = %signal, "signalled")
                    }
                    Some(Err(err)) => {
                        tracing::warn!(process = %name, pid, error = %err, "signalling failed")
                    }
                    None => {}
                }
            }
        }
        if let Some(url) = &self.url {
            match tokio::time::timeout(HTTP_TIMEOUT, post(url)).await {
                Ok(Ok(status)) if (200..300).contains(&status) => {
                    tracing::info!(url = %url, status, "reload call answered")
                }
                Ok(Ok(status)) => tracing::warn!(url = %url, status, "reload call refused"),
                Ok(Err(err)) => tracing::warn!(url = %url, error = %err, "reload call failed"),
                Err(_) => tracing::warn!(url = %url, "reload call timed out"),
            }
        }
    }
}

/// Ids of the processes whose `comm` is `name`, except this one.
pub fn find_processes(proc_root: &Path, name: &str) -> Vec<i32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| u32::try_from(*pid).ok() != Some(me))
        .filter(|pid| {
            std::fs::read_to_string(proc_root.join(pid.to_string()).join("comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Checks that `url` is a plain-HTTP URL the agent can call.
pub fn check_url(url: &str) -> Result<(), String> {
    split_url(url).map(|_| ())
}

fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("reload URL {url:?} must start with http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || !authority.contains(':') {
        return Err(format!("reload URL {url:?} needs a host and a port"));
    }
    Ok((authority, path))
}

/// POSTs an empty body to `url` and returns the status code.
async fn post(url: &str) -> Result<u16, String> {
    let (authority, path) = split_url(url)?;
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\nUser-Agent: tlsmint-agent\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("writing: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .await
        .map_err(|e| format!("reading: {e}"))?;
    let line = std::str::from_utf8(&head[..n]).unwrap_or_default();
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| "the answer is not HTTP".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_signal_names() {
        assert_eq!("hup".parse::<SignalName>().unwrap(), SignalName::Hup);
        assert_eq!("SIGUSR1".parse::<SignalName>().unwrap(), SignalName::Usr1);
        assert!("KILL".parse::<SignalName>().is_err());
    }

    #[test]
    fn finds_processes_by_name() {
        let root = std::env::temp_dir().join(format!("tlsmint-proc-{}", std::process::id()));
        for (pid, comm) in [("10", "nginx\n"), ("11", "envoy\n"), ("12", "nginx\n")] {
            std::fs::create_dir_all(root.join(pid)).unwrap();
            std::fs::write(root.join(pid).join("comm"), comm).unwrap();
        }
        std::fs::create_dir_all(root.join("self")).unwrap();
        assert_eq!(find_processes(&root, "nginx"), vec![10, 12]);
        assert!(find_processes(&root, "httpd").is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reload_urls_are_plain_http_with_a_port() {
        assert!(check_url("http://127.0.0.1:8080/-/reload").is_ok());
        assert!(check_url("https://x:1/").is_err());
        assert!(check_url("http://localhost/").is_err());
    }

    #[tokio::test]
    async fn posts_to_the_reload_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let status = post(&format!("http://{addr}/-/reload")).await.unwrap();
        assert_eq!(status, 204);
        assert!(server.await.unwrap().starts_with("POST /-/reload HTTP/1.1"));
    }
}
