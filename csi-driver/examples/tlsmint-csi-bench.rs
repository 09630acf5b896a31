//! tlsmint-csi-bench: NodePublishVolume latency and the driver's memory at N volumes.
//!
//! Publishes N volumes one after another over the CSI Unix socket, each with its own pod,
//! against an in-process `tlsmint.v1.Issuer` that really signs (the CA engine, P-256), and
//! prints p50/p99/max of the publish latency seen by the caller (keygen + Sign + mount +
//! files + metadata) and the driver's VmRSS/VmHWM after the N volumes.
//!
//! Two modes:
//! - `--driver PATH` (needs root): runs the real `tlsmint-csi` binary in a private mount
//!   namespace (`unshare --mount`), so its tmpfs mounts are real and vanish with it; the
//!   RSS is the driver process's own.
//! - without it: the driver's Manager and CSI server in this process with a recording
//!   mounter; the RSS then includes the fake issuer and the client too (an upper bound).
//!
//! ```text
//! cargo build --release -p tlsmint-csi --bin tlsmint-csi --example tlsmint-csi-bench
//! target/release/examples/tlsmint-csi-bench --volumes 1000 --driver target/release/tlsmint-csi
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{Bench, Pod, unix_channel};
use tlsmint_csi::proto::csi::node_client::NodeClient;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
struct Args {
    /// Volumes to publish.
    #[arg(long, default_value_t = 1000)]
    volumes: usize,
    /// The tlsmint-csi binary to run (real tmpfs, private mount namespace; root only).
    #[arg(long)]
    driver: Option<PathBuf>,
    /// Also unpublish every volume at the end and time it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    unpublish: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let bench = Bench::new("bench").await;
    let (mut node, driver, in_process) = match &args.driver {
        Some(path) => {
            let (child, socket) = spawn_driver(path, &bench);
            (
                NodeClient::new(unix_channel(&socket).await),
                Some(child),
                None,
            )
        }
        None => {
            let (driver, _) = bench.start().await;
            (driver.node.clone(), None, Some(driver))
        }
    };
    let pid = driver.as_ref().map_or(std::process::id(), Child::id);
    println!(
        "mode: {}",
        if driver.is_some() {
            "real tlsmint-csi binary, real tmpfs (private mount namespace)"
        } else {
            "in process, recording mounter (RSS includes the fake issuer)"
        }
    );
    let (rss0, _) = memory(pid);
    println!("driver RSS before any volume: {}", mib(rss0));

    let pods: Vec<Pod> = (0..args.volumes)
        .map(|i| {
            let mut pod = bench.pod(&format!("web-{i}"));
            pod.attributes
                .retain(|(k, _)| k != "csi.tlsmint.io/bundle-file");
            pod
        })
        .collect();
    let mut took = Vec::with_capacity(pods.len());
    let started = Instant::now();
    for (i, pod) in pods.iter().enumerate() {
        let t = Instant::now();
        publish(&mut node, pod, &bench).await;
        took.push(t.elapsed());
        if (i + 1) % 250 == 0 {
            let (rss, _) = memory(pid);
            println!("  {} volumes: RSS {}", i + 1, mib(rss));
        }
    }
    let total = started.elapsed();
    check_files(&pods, driver.as_ref());
    let (rss, hwm) = memory(pid);
    report("NodePublishVolume (first publish)", &mut took, total);
    println!(
        "driver at {} volumes: VmRSS {}, VmHWM {} (Sign calls: {})",
        pods.len(),
        mib(rss),
        mib(hwm),
        bench.sign_calls()
    );

    // Republish: what kubelet does every 60-90 s per volume.
    let mut took = Vec::with_capacity(pods.len());
    let started = Instant::now();
    for pod in &pods {
        let t = Instant::now();
        publish(&mut node, pod, &bench).await;
        took.push(t.elapsed());
    }
    report(
        "NodePublishVolume (republish)",
        &mut took,
        started.elapsed(),
    );
    assert_eq!(
        bench.sign_calls() as usize,
        pods.len(),
        "a republish issued"
    );

    if args.unpublish {
        let mut took = Vec::with_capacity(pods.len());
        let started = Instant::now();
        for pod in &pods {
            let t = Instant::now();
            node.node_unpublish_volume(tlsmint_csi::proto::csi::NodeUnpublishVolumeRequest {
                volume_id: pod.volume_id.clone(),
                target_path: pod.target.display().to_string(),
            })
            .await
            .unwrap();
            took.push(t.elapsed());
        }
        report("NodeUnpublishVolume", &mut took, started.elapsed());
        let (rss, _) = memory(pid);
        println!("driver after unpublishing all: VmRSS {}", mib(rss));
    }
    if let Some(mut child) = driver {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(driver) = in_process {
        driver.stop().await;
    }
}

async fn publish(node: &mut NodeClient<Channel>, pod: &Pod, bench: &Bench) {
    if let Err(status) = node.node_publish_volume(pod.request(bench.clock)).await {
        panic!("publish of {} failed: {status:?}", pod.name);
    }
}

/// Starts the real driver in a private mount namespace; returns it and its socket.
fn spawn_driver(path: &Path, bench: &Bench) -> (Child, PathBuf) {
    let socket = bench.root.join("driver.sock");
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(path)
        .args(["--node-name", "bench", "--api-endpoint"])
        .arg(format!("http://{}", bench.issuer_addr))
        .arg("--kubelet-dir")
        .arg(bench.pods.parent().unwrap())
        .arg("--csi-socket")
        .arg(&socket)
        .arg("--registration-dir=")
        .arg("--state-dir")
        .arg(&bench.state_dir)
        .args([
            "--events",
            "false",
            "--admin-addr",
            "127.0.0.1:0",
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("running unshare and the driver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "the driver did not open its socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, socket)
}

/// Checks a sample of volumes: key and certificate match (read through the driver's mount
/// namespace when it runs apart).
fn check_files(pods: &[Pod], driver: Option<&Child>) {
    let step = (pods.len() / 10).max(1);
    for pod in pods.iter().step_by(step) {
        let target = match driver {
            Some(child) => {
                let rel = pod.target.strip_prefix("/").unwrap();
                PathBuf::from(format!("/proc/{}/root", child.id())).join(rel)
            }
            None => pod.target.clone(),
        };
        let files = common::Files::read(&target);
        assert_eq!(
            files.key_spki, files.cert_spki,
            "{}: key does not match",
            pod.name
        );
    }
}

fn report(what: &str, took: &mut [Duration], total: Duration) {
    took.sort();
    let pct = |p: f64| took[((took.len() as f64 * p).ceil() as usize).clamp(1, took.len()) - 1];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "{what}: n={} p50 {} p90 {} p99 {} max {} total {:.2} s",
        took.len(),
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(took[took.len() - 1]),
        total.as_secs_f64()
    );
}

/// VmRSS and VmHWM of `pid`, bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
