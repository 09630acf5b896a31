//! The agent's behaviour against the real CA engine: first certificate, renewal at the
//! configured fraction on a paused clock, backoff while the old pair stays, and what a
//! restarted agent does with the files it finds. One test goes through a fake
//! `tlsmint.v1.Issuer` tonic server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;
use tlsmint_ca::ExposeSecret as _;

use common::{EngineSource, FakeCa, FakeIssuer, files, temp_dir};
use time::OffsetDateTime;
use tlsmint_agent::disk;
use tlsmint_agent::reload::Reload;
use tlsmint_agent::renew::{Agent, Clock, Event};
use tlsmint_agent::source::{Api, Request};
use tlsmint_client::{Client, ClientConfig, Token, TokenSource};
use tlsmint_runtime::CancellationToken;
use tokio::sync::mpsc;

fn agent<S>(source: S, dir: &std::path::Path, clock: Clock) -> Agent<S> {
    Agent {
        source,
        files: files(dir),
        renew_at: 0.5,
        clock,
        reload: Reload::default(),
        trust_interval: Duration::from_secs(60),
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(3600), rx.recv())
        .await
        .expect("an event within an hour")
        .expect("the agent is running")
}

fn written(event: Event) -> disk::Current {
    match event {
        Event::Written(c) => c,
        other => panic!("expected a written certificate, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn renews_at_half_lifetime() {
    let start = OffsetDateTime::now_utc();
    let clock = Clock::tokio(start);
    let ca = FakeCa::new(start);
    let dir = temp_dir("renew");
    let source = EngineSource::new(ca, clock, Duration::from_secs(120));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(agent(source, &dir, clock).run(stop.clone(), Some(tx)));

    let first = written(next(&mut rx).await);
    let lifetime = first.not_after - first.not_before;
    assert!(disk::inspect(&dir, &files(&dir), clock.now(), 0.5).is_ok());
    let second = written(next(&mut rx).await);
    let renewed_after = clock.now() - first.not_before;
    // At half the lifetime, brought forward by at most 5% of it.
    assert!(
        renewed_after <= lifetime / 2 && renewed_after >= lifetime * 0.45 - time::Duration::SECOND,
        "renewed {renewed_after} into a lifetime of {lifetime}"
    );
    assert_ne!(first.serial, second.serial);
    let on_disk = disk::inspect(&dir, &files(&dir), clock.now(), 0.5).unwrap();
    assert_eq!(on_disk.serial, second.serial);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keeps_the_old_pair_while_renewal_fails_and_backs_off() {
    let start = OffsetDateTime::now_utc();
    let clock = Clock::tokio(start);
    let dir = temp_dir("backoff");
    let source = EngineSource::new(FakeCa::new(start), clock, Duration::from_secs(600));
    let failing = source.failing.clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(agent(source, &dir, clock).run(stop.clone(), Some(tx)));

    let first = written(next(&mut rx).await);
    failing.store(true, Ordering::SeqCst);
    let mut delays = Vec::new();
    for _ in 0..4 {
        match next(&mut rx).await {
            Event::Failed {
                failures, retry_in, ..
            } => {
                delays.push(retry_in);
                assert_eq!(failures as usize, delays.len());
                let kept = disk::inspect(&dir, &files(&dir), clock.now(), 0.5).unwrap();
                assert_eq!(kept.serial, first.serial, "the old pair stays in place");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
    for (delay, base) in delays.iter().zip([5, 10, 20, 40]) {
        let base = Duration::from_secs(base);
        assert!(*delay >= base && *delay <= base + base / 10, "{delays:?}");
    }
    failing.store(false, Ordering::SeqCst);
    let renewed = written(next(&mut rx).await);
    assert_ne!(renewed.serial, first.serial);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_reuses_a_valid_pair_and_replaces_anything_else() {
    let start = OffsetDateTime::now_utc();
    let clock = Clock::tokio(start);
    let ca = FakeCa::new(start);
    let dir = temp_dir("restart");
    let run_once = |source: EngineSource| {
        let dir = dir.clone();
        async move {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let stop = CancellationToken::new();
            let task = tokio::spawn(agent(source, &dir, clock).run(stop.clone(), Some(tx)));
            let event = next(&mut rx).await;
            stop.cancel();
            task.await.unwrap();
            event
        }
    };
    let source = || EngineSource::new(ca.clone(), clock, Duration::from_secs(3600));

    let first = written(run_once(source()).await);
    // Valid and not due: kept, no call to the API.
    let again = source();
    let calls = again.calls.clone();
    assert_eq!(run_once(again).await, Event::Reused(first.clone()));
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // A key that is not the certificate's (a half-finished writer elsewhere): replaced.
    let key_path = dir.join("..data").join("tls.key");
    let generation = std::fs::read_link(dir.join("..data")).unwrap();
    let other = tlsmint_ca::PrivateKey::generate(tlsmint_ca::KeySpec::EcdsaP256).unwrap();
    let pem = other.to_pem(tlsmint_ca::KeyEncoding::Pkcs8).unwrap();
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dir.join(&generation).join("tls.key"), pem.expose_secret()).unwrap();
    let err = disk::reusable(&dir, &files(&dir), clock.now(), 0.5).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
    let replaced = written(run_once(source()).await);
    assert_ne!(replaced.serial, first.serial);

    // A CA bundle that does not hold the chain's root: replaced.
    let foreign = FakeCa::new(start);
    std::fs::remove_file(dir.join("..data").join("ca.crt")).unwrap();
    std::fs::write(
        dir.join("..data").join("ca.crt"),
        foreign.root.certificate_pem(),
    )
    .unwrap();
    let err = disk::reusable(&dir, &files(&dir), clock.now(), 0.5).unwrap_err();
    assert!(err.to_string().contains("chain"), "{err}");
    let rechained = written(run_once(source()).await);

    // Past the renewal instant (the pod restarted late): replaced, never reused.
    tokio::time::advance(Duration::from_secs(1900)).await;
    let err = disk::reusable(&dir, &files(&dir), clock.now(), 0.5).unwrap_err();
    assert!(err.to_string().contains("due for renewal"), "{err}");
    let renewed = written(run_once(source()).await);
    assert_ne!(renewed.serial, rechained.serial);

    // Expired, and a missing file.
    tokio::time::advance(Duration::from_secs(7200)).await;
    let err = disk::inspect(&dir, &files(&dir), clock.now(), 0.5).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let empty = temp_dir("empty");
    let err = disk::inspect(&empty, &files(&empty), clock.now(), 0.5).unwrap_err();
    assert!(err.to_string().contains("tls.crt cannot be read"), "{err}");
}

#[tokio::test]
async fn first_certificate_through_sign_on_a_fake_issuer() {
    let ca = FakeCa::new(OffsetDateTime::now_utc());
    let issuer = FakeIssuer::new(ca.clone());
    let tokens = issuer.tokens.clone();
    let service = tlsmint_client::proto::issuer_server::IssuerServer::new(issuer);
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tlsmint_runtime::listen::accept(listener, None, stop.clone()).unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()),
    );

    let dir = temp_dir("grpc");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "projected-token\n").unwrap();
    let config = ClientConfig::new(format!("http://{addr}"), TokenSource::File(token_file));
    let client = Client::connect(config.clone()).await.unwrap();
    let request = Request {
        role: "web".into(),
        names: Request::names(
            Some("web.default.svc".into()),
            vec!["web".into(), "web.default".into()],
            &["10.0.0.7".into()],
            vec![],
        )
        .unwrap(),
        ttl_seconds: 300,
        key: tlsmint_ca::KeySpec::EcdsaP256,
        server_key: false,
    };
    let out = dir.join("out");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let agent_stop = CancellationToken::new();
    let task = tokio::spawn(
        agent(
            Api::with_client(client, config, request),
            &out,
            Clock::System,
        )
        .run(agent_stop.clone(), Some(tx)),
    );
    let first = written(next(&mut rx).await);
    agent_stop.cancel();
    task.await.unwrap();

    assert_eq!(
        tokens.lock().unwrap().as_slice(),
        ["Bearer projected-token"]
    );
    let now = OffsetDateTime::now_utc();
    assert_eq!(disk::inspect(&out, &files(&out), now, 0.5).unwrap(), first);
    let crt = std::fs::read_to_string(out.join("tls.crt")).unwrap();
    assert_eq!(
        crt.matches("BEGIN CERTIFICATE").count(),
        2,
        "leaf and intermediate"
    );
    let bundle = std::fs::read_to_string(out.join("tls-bundle.pem")).unwrap();
    assert!(bundle.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
    let ca_pem = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    assert_eq!(ca_pem, ca.root.certificate_pem());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o440, "readable by the pod's fsGroup");
    let _ = Token::new("x");
    stop.cancel();
    server.await.unwrap().unwrap();
}
