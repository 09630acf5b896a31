//! The trust check between renewals: a CA rotation changes the roots (one root, then old and
//! new) while the certificate is not due; `ca.crt` follows in one `..data` swap beside the
//! same key and certificate and the reload action runs. An unchanged bundle writes nothing;
//! a failed check keeps the files and is retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{EngineSource, FakeCa, FakeIssuer, files, temp_dir};
use time::OffsetDateTime;
use tlsmint_agent::disk;
use tlsmint_agent::reload::Reload;
use tlsmint_agent::renew::{Agent, Clock, Event};
use tlsmint_agent::source::{Api, Request};
use tlsmint_client::{Client, ClientConfig, TokenSource};
use tlsmint_runtime::CancellationToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The next event within `limit` (virtual time in the paused tests, real time otherwise).
async fn next_within(rx: &mut mpsc::UnboundedReceiver<Event>, limit: Duration) -> Event {
    tokio::time::timeout(limit, rx.recv())
        .await
        .expect("an event in time")
        .expect("the agent is running")
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    next_within(rx, Duration::from_secs(3600)).await
}

/// Every file of the current generation, by name.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("..data"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The generation `..data` points at, and how many generation folders exist.
fn generation(dir: &Path) -> (PathBuf, usize) {
    let current = std::fs::read_link(dir.join("..data")).unwrap();
    let folders = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name().into_string().unwrap();
            name.starts_with("..") && name != "..data"
        })
        .count();
    (current, folders)
}

/// A reload endpoint that reports the request line of every call it gets.
async fn reload_server() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/-/reload", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 1024];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = tx.send(text.lines().next().unwrap_or_default().to_owned());
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_trust_change_rewrites_ca_crt_beside_the_same_pair_and_reloads() {
    let ca = FakeCa::new(OffsetDateTime::now_utc());
    let issuer = FakeIssuer::new(ca.clone());
    let (bundle, bundle_calls) = (issuer.bundle.clone(), issuer.bundle_calls.clone());
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tlsmint_runtime::listen::accept(listener, None, stop.clone()).unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(tlsmint_client::proto::issuer_server::IssuerServer::new(
                issuer,
            ))
            .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()),
    );
    let (reload_url, mut reloads) = reload_server().await;

    let dir = temp_dir("trust");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "projected-token\n").unwrap();
    let config = ClientConfig::new(format!("http://{addr}"), TokenSource::File(token_file));
    let client = Client::connect(config.clone()).await.unwrap();
    let request = Request {
        role: "web".into(),
        names: Request::names(Some("web.default.svc".into()), vec![], &[], vec![]).unwrap(),
        ttl_seconds: 3600,
        key: tlsmint_ca::KeySpec::EcdsaP256,
        server_key: false,
    };
    let out = dir.join("out");
    let agent = Agent {
        source: Api::with_client(client, config, request),
        files: files(&out),
        renew_at: 0.5,
        clock: Clock::System,
        reload: Reload {
            url: Some(reload_url),
            ..Reload::default()
        },
        trust_interval: Duration::from_millis(100),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let agent_stop = CancellationToken::new();
    let task = tokio::spawn(agent.run(agent_stop.clone(), Some(tx)));
    let Event::Written(first) = next_within(&mut rx, Duration::from_secs(10)).await else {
        panic!("expected the first certificate");
    };

    // Unchanged roots: checked, nothing written, no reload.
    let before = contents(&out);
    let (old_generation, _) = generation(&out);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        bundle_calls.load(Ordering::SeqCst) >= 2,
        "checked each interval"
    );
    assert!(rx.try_recv().is_err(), "an unchanged bundle is no event");
    assert!(
        reloads.try_recv().is_err(),
        "no reload for the first certificate or no change"
    );
    assert_eq!(generation(&out).0, old_generation);
    assert_eq!(contents(&out), before);

    // The rotation starts: both roots.
    let both = format!(
        "{}{}",
        ca.root.certificate_pem(),
        FakeCa::new(OffsetDateTime::now_utc())
            .root
            .certificate_pem()
    );
    *bundle.lock().unwrap() = Some(both.clone());
    let updated = match next_within(&mut rx, Duration::from_secs(10)).await {
        Event::TrustUpdated(current) => current,
        other => panic!("expected a trust update, got {other:?}"),
    };
    assert_eq!(updated, first, "the same certificate");
    let line = tokio::time::timeout(Duration::from_secs(10), reloads.recv())
        .await
        .expect("the reload ran")
        .unwrap();
    assert_eq!(line, "POST /-/reload HTTP/1.1");
    let now = contents(&out);
    assert_eq!(now["ca.crt"], both.as_bytes(), "exactly the new bundle");
    for name in ["tls.crt", "tls.key", "tls-bundle.pem"] {
        assert_eq!(now[name], before[name], "{name} must stay byte-identical");
    }
    assert_eq!(now.len(), before.len());
    let (current, folders) = generation(&out);
    assert_ne!(current, old_generation, "one new generation swapped in");
    assert_eq!(folders, 1);
    assert!(disk::inspect(&out, &files(&out), OffsetDateTime::now_utc(), 0.5).is_ok());

    // No second write for the same roots.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rx.try_recv().is_err());
    assert!(reloads.try_recv().is_err());
    assert_eq!(generation(&out).0, current);

    agent_stop.cancel();
    task.await.unwrap();
    stop.cancel();
    server.await.unwrap().unwrap();
}

fn engine_agent(source: EngineSource, dir: &Path, clock: Clock) -> Agent<EngineSource> {
    Agent {
        source,
        files: files(dir),
        renew_at: 0.5,
        clock,
        reload: Reload::default(),
        trust_interval: Duration::from_secs(60),
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_trust_check_keeps_the_files_and_is_retried() {
    let start = OffsetDateTime::now_utc();
    let clock = Clock::tokio(start);
    let ca = FakeCa::new(start);
    let dir = temp_dir("trust-fail");
    let source = EngineSource::new(ca.clone(), clock, Duration::from_secs(3600));
    let (failing, bundle) = (source.failing.clone(), source.bundle.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(engine_agent(source, &dir, clock).run(stop.clone(), Some(tx)));
    let Event::Written(first) = next(&mut rx).await else {
        panic!("expected the first certificate");
    };
    let before = (contents(&dir), generation(&dir));

    let both = format!(
        "{}{}",
        ca.root.certificate_pem(),
        FakeCa::new(start).root.certificate_pem()
    );
    *bundle.lock().unwrap() = Some(both.clone());
    failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(150)).await;
    assert!(rx.try_recv().is_err(), "a failed check is no event");
    assert_eq!((contents(&dir), generation(&dir)), before);

    failing.store(false, Ordering::SeqCst);
    assert_eq!(next(&mut rx).await, Event::TrustUpdated(first));
    assert_eq!(contents(&dir)["ca.crt"], both.as_bytes());
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_certificate_that_no_longer_chains_to_the_roots_is_renewed_now() {
    let start = OffsetDateTime::now_utc();
    let clock = Clock::tokio(start);
    let ca = FakeCa::new(start);
    let dir = temp_dir("trust-unchained");
    let source = EngineSource::new(ca.clone(), clock, Duration::from_secs(3600));
    let (bundle, calls) = (source.bundle.clone(), source.calls.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(engine_agent(source, &dir, clock).run(stop.clone(), Some(tx)));
    let Event::Written(first) = next(&mut rx).await else {
        panic!("expected the first certificate");
    };
    // The old root dropped before this certificate was replaced.
    *bundle.lock().unwrap() = Some(FakeCa::new(start).root.certificate_pem());
    assert!(matches!(next(&mut rx).await, Event::TrustUpdated(_)));
    let Event::Written(renewed) = next(&mut rx).await else {
        panic!("expected a renewal right after");
    };
    assert_ne!(renewed.serial, first.serial);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    stop.cancel();
    task.await.unwrap();
}
