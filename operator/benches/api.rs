//! Issuance API benchmark: `tlsmint-operator dev` in its own process, this process
//! as the client on loopback, both on this machine's cores. Two APIs:
//!   - gRPC (`tlsmint.v1.Issuer`) over TLS 1.3, HTTP/2 connections kept alive
//!     (the server runs `dev --tls`);
//!   - the Vault HTTP API, plaintext HTTP/1.1 with keep-alive, one connection per
//!     request in flight (the server runs `dev`), as Vault PKI clients call it.
//!
//! Prints, per API, for `Sign` (P-256 CSR, P-256 CA) and `Issue` (P-256 key made by the
//! server):
//!   - throughput, closed loop: CONCURRENCY requests in flight over CONNECTIONS;
//!   - latency p50/p90/p99/max at a fixed open-loop rate (default 1,000 req/s):
//!     requests are sent on schedule whether or not earlier ones have answered
//!     (no coordinated omission); each is timed from its dispatch.
//!
//! The server CPU per request (from /proc) is the figure to compare with the engine's
//! in-process cost (`cargo bench -p tlsmint-ca --bench engine`).
//!
//! Run: `cargo bench -p tlsmint-operator --bench api`
//! Knobs (env): TLSMINT_BENCH_SECS (default 10), TLSMINT_BENCH_RATE (1000),
//! TLSMINT_BENCH_CONCURRENCY (64), TLSMINT_BENCH_CONNECTIONS (2, gRPC),
//! TLSMINT_BENCH_ONLY (`throughput` or `latency`; default both),
//! TLSMINT_BENCH_API (`grpc` or `http`; default both),
//! TLSMINT_BENCH_SERVER_CPUS (e.g. `1`: the server is started under `taskset -c`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpPool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tlsmint_client::proto::{IssueRequest, Names, SignRequest};
use tlsmint_client::{Client, ClientConfig, Token, TokenSource};

const TOKEN: &str = "bench-root-token";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    grpc: String,
    http: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dev`, with TLS when `ca_file` is given (it receives the CA).
fn start_server(ca_file: Option<&std::path::Path>) -> Server {
    let binary = env!("CARGO_BIN_EXE_tlsmint-operator");
    let mut command = match std::env::var("TLSMINT_BENCH_SERVER_CPUS") {
        Ok(cpus) if !cpus.is_empty() => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpus, binary]);
            c
        }
        _ => Command::new(binary),
    };
    command.arg("dev");
    if let Some(ca_file) = ca_file {
        command.args(["--tls", "--tls-ca-file"]).arg(ca_file);
    }
    let mut child = command
        .args(["--dev-root-token-id", TOKEN])
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--rate-limit", "0", "--log-level", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tlsmint-operator dev");
    let stdout = child.stdout.take().unwrap();
    let mut grpc = String::new();
    let mut http = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("gRPC API:") {
            let addr = rest.split_whitespace().next().unwrap();
            // The certificate is for localhost: connect by name.
            grpc = addr.replace("127.0.0.1", "localhost");
        }
        if let Some(rest) = line.trim().strip_prefix("Vault API:") {
            http = rest.split_whitespace().next().unwrap().to_owned();
        }
        if line.starts_with("Root Token:") {
            break;
        }
    }
    // Keep draining stdout (logs) so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, grpc, http }
}

/// CPU time (user + system) of a process so far, from /proc (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// P-256 CSRs, DER and PEM.
struct Csrs {
    der: Vec<Vec<u8>>,
    pem: Vec<String>,
}

fn csr_pool(n: usize) -> Csrs {
    let requests: Vec<rcgen::CertificateSigningRequest> = (0..n)
        .map(|i| {
            let key = rcgen::KeyPair::generate().unwrap();
            let name = format!("bench-{i}.example.com");
            let mut params = rcgen::CertificateParams::new(vec![name.clone()]).unwrap();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.serialize_request(&key).unwrap()
        })
        .collect();
    Csrs {
        der: requests.iter().map(|r| r.der().to_vec()).collect(),
        pem: requests.iter().map(|r| r.pem().unwrap()).collect(),
    }
}

/// A Vault HTTP API client: a keep-alive pool of HTTP/1.1 connections.
#[derive(Clone)]
struct VaultHttp {
    pool: HttpPool<HttpConnector, Full<Bytes>>,
    base: String,
}

impl VaultHttp {
    fn new(base: &str) -> Self {
        let pool = HttpPool::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build_http();
        VaultHttp {
            pool,
            base: base.to_owned(),
        }
    }

    async fn post(&self, path: &str, body: String) {
        let req = http::Request::post(format!("{}{path}", self.base))
            .header("x-vault-token", TOKEN)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = self.pool.request(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

/// One connection's worth of client, for either API.
#[derive(Clone)]
enum Caller {
    Grpc(Client),
    Http(VaultHttp),
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Sign,
    Issue,
}

async fn call(caller: &Caller, op: Op, csrs: &Csrs, i: usize) {
    let client = match caller {
        Caller::Grpc(client) => client,
        Caller::Http(http) => {
            let (path, body) = match op {
                Op::Sign => (
                    "/v1/pki_int/sign/web-server",
                    serde_json::json!({"csr": csrs.pem[i % csrs.pem.len()], "ttl": "1h"}),
                ),
                Op::Issue => (
                    "/v1/pki_int/issue/web-server",
                    serde_json::json!({"common_name": format!("issue-{}.example.com", i % 1000), "ttl": "1h"}),
                ),
            };
            return http.post(path, body.to_string()).await;
        }
    };
    match op {
        Op::Sign => {
            client
                .sign(SignRequest {
                    role: "web-server".into(),
                    csr: csrs.der[i % csrs.der.len()].clone(),
                    names: None,
                    ttl_seconds: 3600,
                })
                .await
                .unwrap();
        }
        Op::Issue => {
            client
                .issue(IssueRequest {
                    role: "web-server".into(),
                    names: Some(Names {
                        common_name: format!("issue-{}.example.com", i % 1000),
                        ..Names::default()
                    }),
                    ttl_seconds: 3600,
                    ..IssueRequest::default()
                })
                .await
                .unwrap();
        }
    }
}

async fn throughput(
    clients: &[Caller],
    op: Op,
    csrs: Arc<Csrs>,
    secs: u64,
    concurrency: usize,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let client = clients[w % clients.len()].clone();
        let (done, stop, csrs) = (done.clone(), stop.clone(), csrs.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                call(&client, op, &csrs, i).await;
                done.fetch_add(1, Ordering::Relaxed);
                i += concurrency;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let n = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / elapsed
}

async fn open_loop(
    clients: &[Caller],
    op: Op,
    csrs: Arc<Csrs>,
    secs: u64,
    rate: u64,
) -> Vec<Duration> {
    let total = (secs * rate) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let client = clients[i % clients.len()].clone();
        let csrs = csrs.clone();
        tasks.push(tokio::spawn(async move {
            // Measured from dispatch: the generator never waits for answers
            // (open loop), and tokio's 1 ms timer granularity is the
            // generator's lateness, not the server's.
            let sent = tokio::time::Instant::now();
            call(&client, op, &csrs, i).await;
            sent.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    latencies.sort();
    latencies
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1000.0
}

async fn connect(api: Api, server: &Server, ca: &str, connections: usize) -> Vec<Caller> {
    if api == Api::Http {
        // One pool: it opens a connection per request in flight and keeps them.
        return vec![Caller::Http(VaultHttp::new(&server.http))];
    }
    let mut clients = Vec::new();
    for _ in 0..connections {
        let mut config = ClientConfig::new(
            server.grpc.clone(),
            TokenSource::Static(Token::new(TOKEN).unwrap()),
        );
        config.ca_bundle_pem = Some(ca.to_owned());
        clients.push(Caller::Grpc(Client::connect(config).await.unwrap()));
    }
    clients
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Grpc,
    Http,
}

fn main() {
    let only_api = std::env::var("TLSMINT_BENCH_API").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("tlsmint-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csrs = Arc::new(csr_pool(256));
    for api in [Api::Grpc, Api::Http] {
        let name = format!("{api:?}").to_lowercase();
        if !only_api.is_empty() && only_api != name {
            continue;
        }
        run(api, &dir, csrs.clone());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn run(api: Api, dir: &std::path::Path, csrs: Arc<Csrs>) {
    let secs = env_or("TLSMINT_BENCH_SECS", 10);
    let rate = env_or("TLSMINT_BENCH_RATE", 1000);
    let concurrency = env_or("TLSMINT_BENCH_CONCURRENCY", 64) as usize;
    let connections = env_or("TLSMINT_BENCH_CONNECTIONS", 2) as usize;
    let only = std::env::var("TLSMINT_BENCH_ONLY").unwrap_or_default();
    let ca_file = dir.join("ca.pem");
    let server = start_server((api == Api::Grpc).then_some(ca_file.as_path()));
    let server_pid = server.child.id();
    let ca = std::fs::read_to_string(&ca_file).unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    match api {
        Api::Grpc => println!(
            "tlsmint gRPC bench: server = `tlsmint-operator dev --tls` (separate process), client = this process; \
             {cores} cores; TLS 1.3 over loopback, {connections} HTTP/2 connection(s) kept alive"
        ),
        Api::Http => println!(
            "tlsmint Vault HTTP bench: server = `tlsmint-operator dev` (separate process), client = this process; \
             {cores} cores; plaintext HTTP/1.1 over loopback, keep-alive, a connection per request in flight"
        ),
    }
    if only != "latency" {
        // Throughput: a two-thread client, so that the client is not the bottleneck.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let clients = connect(api, &server, &ca, connections).await;
            throughput(&clients, Op::Sign, csrs.clone(), 1, concurrency).await;
            throughput(&clients, Op::Issue, csrs.clone(), 1, concurrency).await;
            for op in [Op::Sign, Op::Issue] {
                let (s0, c0) = (cpu_seconds(server_pid), cpu_seconds(std::process::id()));
                let rps = throughput(&clients, op, csrs.clone(), secs, concurrency).await;
                let (s1, c1) = (cpu_seconds(server_pid), cpu_seconds(std::process::id()));
                let n = rps * secs as f64;
                let server_us = (s1 - s0) / n * 1e6;
                println!(
                    "{api:?} {op:?}: throughput {rps:.0} req/s (closed loop, {concurrency} in flight, {secs}s); \
                     server CPU {server_us:.0} us/req (= {:.0} req/s per server core), client CPU {:.0} us/req",
                    1e6 / server_us,
                    (c1 - c0) / n * 1e6
                );
            }
        });
    }
    if only != "throughput" {
        // Latency: one client thread; it needs a fraction of a core and leaves the rest to the server.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let clients = connect(api, &server, &ca, connections).await;
            throughput(&clients, Op::Sign, csrs.clone(), 1, 8).await;
            for op in [Op::Sign, Op::Issue] {
                let lat = open_loop(&clients, op, csrs.clone(), secs, rate).await;
                println!(
                    "{api:?} {op:?}: latency at {rate} req/s open loop over {secs}s ({} requests): \
                     p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                    lat.len(),
                    pct(&lat, 0.50),
                    pct(&lat, 0.90),
                    pct(&lat, 0.99),
                    pct(&lat, 1.0),
                );
            }
        });
    }
    drop(server);
}
