//! Component tests of the Vault-compatible HTTP API against a real
//! `tlsmint-operator dev` on loopback, with a minimal HTTP/1.1 client so
//! the exact bytes on the wire (headers, bodies) are under test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

const WEB: &str = "system:serviceaccount:apps:web";

use common::http::{Answer, host, send};

fn post(addr: &str, path: &str, token: &str, body: &str) -> Answer {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nX-Vault-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        host(addr),
        body.len()
    );
    send(addr, raw.as_bytes())
}

fn issue(server: &common::DevServer, body: &Value) -> Answer {
    post(
        &server.http,
        "/v1/pki_int/issue/web",
        WEB,
        &body.to_string(),
    )
}

fn warnings(answer: &Answer) -> Vec<String> {
    answer.json()["warnings"]
        .as_array()
        .map(|w| w.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn a_huge_ttl_is_clamped_with_a_warning_as_over_grpc() {
    let server = common::start(&[]);
    let answer = issue(
        &server,
        &serde_json::json!({"common_name": "a.example.com", "ttl": "99999999h"}),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let w = warnings(&answer);
    assert!(w.iter().any(|w| w.contains("clamped to 2h")), "{w:?}");
    let expiration = answer.json()["data"]["expiration"].as_i64().unwrap();
    assert!((expiration - now() - 7200).abs() < 10, "{expiration}");
}

#[test]
fn not_after_sets_the_expiry() {
    let server = common::start(&[]);
    let want = now() + 1800; // not the role's default ttl (1h)
    let text = time::OffsetDateTime::from_unix_timestamp(want)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let answer = issue(
        &server,
        &serde_json::json!({"common_name": "a.example.com", "not_after": text}),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["data"]["expiration"].as_i64().unwrap(), want);
    assert!(warnings(&answer).is_empty());
}

#[test]
fn not_after_beyond_max_ttl_is_clamped_and_a_bad_one_refused() {
    let server = common::start(&[]);
    let answer = issue(
        &server,
        &serde_json::json!({"common_name": "a.example.com", "not_after": "2999-01-01T00:00:00Z"}),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        warnings(&answer)
            .iter()
            .any(|w| w.contains("clamped to 2h")),
        "{:?}",
        warnings(&answer)
    );
    let answer = issue(
        &server,
        &serde_json::json!({"common_name": "a.example.com", "not_after": "next week"}),
    );
    assert_eq!(answer.status, 400);
    assert!(String::from_utf8_lossy(&answer.body).contains("not_after"));
}

#[test]
fn a_rate_limited_answer_says_when_to_retry() {
    let server = common::start(&["--rate-limit", "0.5", "--rate-burst", "1"]);
    let body = serde_json::json!({"common_name": "a.example.com"});
    assert_eq!(issue(&server, &body).status, 200);
    let answer = issue(&server, &body);
    assert_eq!(answer.status, 429);
    let secs: u64 = answer
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
}

fn chunked_post(server: &common::DevServer, chunks: &[Vec<u8>], end: &[u8]) -> Answer {
    let mut raw = format!(
        "POST /v1/pki_int/issue/web HTTP/1.1\r\nHost: {}\r\nX-Vault-Token: {WEB}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        host(&server.http)
    )
    .into_bytes();
    for chunk in chunks {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(end);
    send(&server.http, &raw)
}

#[test]
fn an_oversized_chunked_body_is_called_too_large() {
    let server = common::start(&[]);
    let chunks = vec![vec![b' '; 64 * 1024]; 5];
    let answer = chunked_post(&server, &chunks, b"0\r\n\r\n");
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(answer.status, 413, "{text}");
    assert!(text.contains("larger than the 262144-byte limit"), "{text}");
}

#[test]
fn a_broken_chunked_body_is_not_called_too_large() {
    let server = common::start(&[]);
    let answer = chunked_post(&server, &[b"{}".to_vec()], b"zz\r\n\r\n");
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(answer.status, 400, "{text}");
    assert!(text.contains("could not be read"), "{text}");
    assert!(!text.contains("262144"), "{text}");
}

#[test]
fn dev_mode_refuses_a_non_loopback_address_without_dev_listen_any() {
    use std::process::{Command, Stdio};
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmint-operator"))
        .args([
            "dev",
            "--http-addr",
            "0.0.0.0:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--dev-listen-any"), "{stderr}");
    assert!(stderr.contains("0.0.0.0"), "{stderr}");
}

#[test]
fn dev_listen_any_prints_a_warning() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlsmint-operator"))
        .args(["dev", "--dev-listen-any", "--http-addr", "0.0.0.0:0"])
        .args(["--grpc-addr", "127.0.0.1:0", "--log-level", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let first = std::io::BufReader::new(stderr)
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.contains("WARNING") && first.contains("0.0.0.0"),
        "{first}"
    );
}

fn jwt(claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        b64.encode(br#"{"alg":"RS256"}"#),
        b64.encode(claims.to_string())
    )
}

#[test]
fn dev_mode_refuses_expired_early_and_wrong_audience_jwts() {
    let server = common::start(&[]);
    let body = serde_json::json!({"common_name": "a.example.com"}).to_string();
    let sub = "system:serviceaccount:apps:web";
    let t = now();
    let good = serde_json::json!({"sub": sub, "aud": ["tlsmint"], "exp": t + 600});
    let answer = post(&server.http, "/v1/pki_int/issue/web", &jwt(&good), &body);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    for claims in [
        serde_json::json!({"sub": sub, "aud": ["tlsmint"], "exp": t - 3600}),
        serde_json::json!({"sub": sub, "aud": ["tlsmint"], "exp": t + 7200, "nbf": t + 3600}),
        serde_json::json!({"sub": sub, "aud": ["vault"], "exp": t + 600}),
    ] {
        let answer = post(&server.http, "/v1/pki_int/issue/web", &jwt(&claims), &body);
        assert_eq!(answer.status, 403, "{claims}");
    }
}

fn config_dir(name: &str, yaml: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsmint-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("roles.yaml"), yaml).unwrap();
    dir
}

#[test]
fn config_with_an_unknown_field_is_refused_naming_file_object_and_field() {
    let dir = config_dir(
        "typo",
        r#"
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {name: root}
spec: {type: Root, subject: {commonName: Root}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: IssuerRole
metadata: {name: web}
spec:
  mountRef: {name: root}
  subjects: [{namespace: apps, serviceAccount: web}]
  allowedDomain: [example.com]
"#,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tlsmint-operator"))
        .arg("dev")
        .arg("--config")
        .arg(&dir)
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for part in ["roles.yaml", "\"web\"", "spec.allowedDomain"] {
        assert!(stderr.contains(part), "{part} not in: {stderr}");
    }
}

#[test]
fn config_lists_a_role_on_a_missing_mount_as_not_ready() {
    use std::io::BufRead;
    let dir = config_dir(
        "orphan",
        r#"
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {name: root}
spec: {type: Root, subject: {commonName: Root}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: IssuerRole
metadata: {name: orphan}
spec:
  mountRef: {name: nowhere}
  subjects: [{namespace: apps, serviceAccount: web}]
  allowAnyName: true
"#,
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tlsmint-operator"))
        .arg("dev")
        .arg("--config")
        .arg(&dir)
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--log-level", "off"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = std::io::BufReader::new(stdout)
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains("role orphan") || l.starts_with("Root Token"))
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        line.contains("not ready") && line.contains("nowhere"),
        "{line}"
    );
}

#[test]
fn the_api_counts_its_answers_on_the_admin_port() {
    let server = common::start(&[
        "--admin-addr",
        "127.0.0.1:0",
        "--rate-limit",
        "0.5",
        "--rate-burst",
        "1",
    ]);
    let body = serde_json::json!({"common_name": "a.example.com"});
    assert_eq!(issue(&server, &body).status, 200);
    assert_eq!(issue(&server, &body).status, 429);
    let made_up = post(
        &server.http,
        "/v1/pki_int/issue/no-such-role-anywhere",
        common::ROOT_TOKEN,
        "{}",
    );
    // Vault answers an unknown role under an existing mount with 400.
    assert_eq!(made_up.status, 400, "{}", made_up.text());
    let admin = server.admin.as_deref().expect("admin address");
    let metrics = common::http::get(admin, "/metrics");
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body);
    for line in [
        r#"tlsmint_api_requests_total{api="http",endpoint="issue",role="web",result="ok"} 1"#,
        r#"tlsmint_api_requests_total{api="http",endpoint="issue",role="web",result="resource_exhausted"} 1"#,
        r#"tlsmint_api_requests_total{api="http",endpoint="issue",role="",result="not_found"} 1"#,
        r#"tlsmint_api_rate_limited_total{api="http"} 1"#,
        r#"tlsmint_api_request_duration_seconds_count{api="http",endpoint="issue"} 3"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    // A role a caller made up never becomes a label value.
    assert!(!text.contains("no-such-role-anywhere"), "{text}");
}
