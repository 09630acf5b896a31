//! Every log line the driver (and the libraries under it, at trace level) writes while it
//! publishes, is denied, refuses bad input, renews, fails to renew and unpublishes: none
//! holds the pod's token or a private key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Bench, TOKEN, until, wait_for};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The base64 lines of every PEM private key in `text`.
fn key_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.contains("PRIVATE KEY-----") {
            inside = line.starts_with("-----BEGIN");
            continue;
        }
        if inside && line.len() >= 16 {
            out.push(line.to_owned());
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn no_token_or_key_in_any_log_line() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let bench = Bench::new("logs").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/ttl", "1h");
    let mut keys = Vec::new();
    driver.publish(&pod, bench.clock).await.unwrap();
    keys.extend(key_lines(
        &std::fs::read_to_string(pod.target.join("bundle.pem")).unwrap(),
    ));

    // A denial, a bad attribute, a hostile template value.
    let denied = bench.pod("denied");
    bench.deny("denied.default.svc", "not for you");
    driver.publish(&denied, bench.clock).await.unwrap_err();
    let mut bad = bench.pod("bad");
    bad.set("csi.tlsmint.io/ttl", "forever");
    driver.publish(&bad, bench.clock).await.unwrap_err();
    let mut hostile = bench.pod("hostile");
    hostile.name = "a/b".into();
    driver.publish(&hostile, bench.clock).await.unwrap_err();

    // A renewal, then a failing one.
    let due = driver.manager.renewal_due(&pod.volume_id).unwrap();
    driver
        .kubelet_for(&pod, bench.clock, until(bench.clock, due))
        .await;
    assert!(wait_for(Duration::from_secs(5), || bench.sign_calls() >= 3).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    keys.extend(key_lines(
        &std::fs::read_to_string(pod.target.join("bundle.pem")).unwrap(),
    ));
    bench.set_down(true);
    let due = driver.manager.renewal_due(&pod.volume_id).unwrap();
    driver
        .kubelet_for(
            &pod,
            bench.clock,
            until(bench.clock, due) + Duration::from_secs(60),
        )
        .await;
    driver.unpublish(&pod.volume_id, &pod.target).await.unwrap();
    driver.stop().await;

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    // The test can fail: the lines it looks at are there.
    for expected in [
        "volume published",
        "certificate renewed",
        "renewal failed",
        "publish failed",
        "volume unpublished",
    ] {
        assert!(logs.contains(expected), "no {expected:?} line in:\n{logs}");
    }
    assert!(keys.len() >= 4, "keys not read");
    assert!(!logs.contains(TOKEN), "the token is in the logs");
    assert!(
        !logs.contains("canary-token"),
        "part of the token is in the logs"
    );
    assert!(!logs.contains("PRIVATE KEY"), "a key is in the logs");
    for line in &keys {
        assert!(!logs.contains(line.as_str()), "key material in the logs");
    }
    assert!(
        !logs.contains("expirationTimestamp"),
        "the tokens map is in the logs"
    );
}
