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
    dir: PathBuf,
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
    start_inner(extra, "warn", None)
}

/// Like [`start`], at log level `info` with the log (stdout after the
/// banner) copied to `log`.
pub fn start_logged(extra: &[&str], log: &std::path::Path) -> DevServer {
    start_inner(extra, "info", Some(log))
}

fn start_inner(extra: &[&str], level: &str, log: Option<&std::path::Path>) -> DevServer {
    let dir = std::env::temp_dir().join(format!(
        "tlsmint-api-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlsmint-operator"))
        .arg("dev")
        .arg("--config")
        .arg(&dir)
        .args(["--dev-root-token-id", ROOT_TOKEN])
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--log-level", level])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tlsmint-operator dev");
    let stdout = child.stdout.take().unwrap();
    let mut http = String::new();
    let mut grpc = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("Vault API:") {
            http = rest.split_whitespace().next().unwrap().to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("gRPC API:") {
            grpc = rest.split_whitespace().next().unwrap().to_owned();
        }
        if line.starts_with("Root Token:") {
            break;
        }
    }
    assert!(!http.is_empty() && !grpc.is_empty(), "banner not seen");
    // The log goes to stdout after the banner: copy it to `log` until the process ends.
    if let Some(path) = log {
        let mut file = std::fs::File::create(path).unwrap();
        std::thread::spawn(move || {
            use std::io::Write as _;
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        });
    }
    DevServer {
        child,
        http,
        grpc,
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
