//! Test helpers: start `tlsmint-operator dev` on loopback (ports chosen by the
//! OS) with a config directory, read its banner, stop it on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const ROOT_TOKEN: &str = "test-root-token";

/// A running dev server.
pub struct DevServer {
    child: Child,
    pub http: String,
    pub grpc: String,
    /// The admin server's address, when started with `--admin-addr`.
    pub admin: Option<String>,
    dir: PathBuf,
}

impl DevServer {
    /// What the server wrote after its banner (log lines) and to stderr (the latter only
    /// with [`start_wrapped`]), so far.
    pub fn output(&self) -> String {
        let read = |name| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        read("stdout") + &read("stderr")
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Mounts and roles used by the component tests.
pub const CONFIG: &str = r#"
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {name: root}
spec: {type: Root, subject: {commonName: Test Root CA}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {name: int}
spec: {type: Intermediate, subject: {commonName: Test Intermediate CA}, parentRef: {name: root}, path: pki_int}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {name: outside}
spec: {type: Intermediate, subject: {commonName: Signed Elsewhere}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: IssuerRole
metadata: {name: web}
spec:
  mountRef: {name: int}
  subjects: [{namespace: apps, serviceAccount: web}]
  allowedDomains: [example.com]
  allowSubdomains: true
  maxTTL: 2h
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: IssuerRole
metadata: {name: svc}
spec:
  mountRef: {name: int}
  subjects: [{namespace: "*", serviceAccount: "*"}]
  allowedDomains: ["{{serviceAccount}}.{{namespace}}.svc"]
  allowBareDomains: true
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: IssuerRole
metadata: {name: stuck}
spec:
  mountRef: {name: outside}
  subjects: [{namespace: "*", serviceAccount: "*"}]
  allowAnyName: true
"#;

pub mod http;

/// Starts a dev server with [`CONFIG`] and extra flags.
pub fn start(extra: &[&str]) -> DevServer {
    start_inner(&[], extra, "warn", None)
}

/// Like [`start`], at log level `info` with the log (stdout after the
/// banner) copied to `log`.
pub fn start_logged(extra: &[&str], log: &std::path::Path) -> DevServer {
    start_inner(&[], extra, "info", Some(log))
}

/// Starts a dev server with [`CONFIG`] and extra flags under `wrapper` (a command such
/// as `prlimit --nofile=1024:1024` that runs the rest of its arguments); its stderr is
/// kept (see [`DevServer::stderr`]).
pub fn start_wrapped(wrapper: &[&str], extra: &[&str]) -> DevServer {
    start_inner(wrapper, extra, "warn", None)
}

fn start_inner(
    wrapper: &[&str],
    extra: &[&str],
    level: &str,
    log: Option<&std::path::Path>,
) -> DevServer {
    let dir = std::env::temp_dir().join(format!(
        "tlsmint-api-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), CONFIG).unwrap();
    let binary = env!("CARGO_BIN_EXE_tlsmint-operator");
    let mut command = match wrapper.split_first() {
        None => Command::new(binary),
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary);
            command
        }
    };
    let stderr = if wrapper.is_empty() {
        Stdio::null()
    } else {
        std::fs::File::create(dir.join("stderr")).unwrap().into()
    };
    let mut child = command
        .arg("dev")
        .arg("--config")
        .arg(&dir)
        .args(["--dev-root-token-id", ROOT_TOKEN])
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--log-level", level])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start tlsmint-operator dev");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut http = String::new();
    let mut grpc = String::new();
    let mut admin = None;
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(rest) = line.trim().strip_prefix("Vault API:") {
            http = rest.split_whitespace().next().unwrap().to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("gRPC API:") {
            grpc = rest.split_whitespace().next().unwrap().to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("Admin:") {
            let url = rest.split_whitespace().next().unwrap();
            admin = Some(url.trim_start_matches("http://").to_owned());
        }
        if line.starts_with("Root Token:") {
            break;
        }
    }
    assert!(!http.is_empty() && !grpc.is_empty(), "banner not seen");
    // Keep reading, so that log lines never block the server on a full pipe; the log goes
    // to `log` when asked for, else to a file in the server's folder.
    let mut rest =
        std::fs::File::create(log.map_or_else(|| dir.join("stdout"), Into::into)).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut rest));
    DevServer {
        child,
        http,
        grpc,
        admin,
        dir,
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into()
}

/// A P-256 CSR for `names`, PEM.
pub fn csr(names: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, *first);
    }
    params.serialize_request(&key).unwrap().pem().unwrap()
}
