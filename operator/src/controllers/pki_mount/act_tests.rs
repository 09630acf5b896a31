//! The create-only key Secret flow against a scripted API server: the operator's POST
//! loses to a Secret another replica created (409), it reads the winner back and loads
//! that CA, and it never writes the Secret any other way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use tlsmint_api::v1alpha1::PkiMount;
use tlsmint_ca::{CaConfig, CertificateAuthority, KeyEncoding, KeySpec, Subject};

use super::*;
use crate::controllers::loader::Caches;
use crate::controllers::metrics::Metrics;
use crate::registry::Registry;
use crate::revocation::{MemoryStore, Revocations, Settings};

const NAMESPACE: &str = "tlsmint-system";

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn context(client: kube::Client) -> Context {
    let (mounts, _) = reflector::store::<PkiMount>();
    let (roles, _) = reflector::store();
    let (secrets, _) = reflector::store();
    Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "test".into(),
                instance: None,
            },
        ),
        client,
        metrics: Metrics::register(&mut prometheus_client::registry::Registry::default()),
        namespace: NAMESPACE.into(),
        registry: Arc::new(Registry::new()),
        caches: Caches {
            mounts,
            roles,
            secrets,
        },
        revocations: Revocations::new(Arc::new(MemoryStore::default()), Settings::default()),
        label_selector: None,
        concurrency: 1,
        cpu: tlsmint_runtime::cpu::CpuPool::new(1),
        failures: Default::default(),
    }
}

fn root_mount() -> PkiMount {
    let mut mount: PkiMount = serde_json::from_value(serde_json::json!({
        "apiVersion": "pki.tlsmint.io/v1alpha1",
        "kind": "PkiMount",
        "metadata": {"name": "pki", "uid": "4f0c7a8e-0000-4000-8000-000000000001"},
        "spec": {"type": "Root", "subject": {"commonName": "Test Root"}}
    }))
    .unwrap();
    mount.metadata.generation = Some(1);
    mount
}

/// The CA another replica made and stored first.
fn winner() -> (CertificateAuthority, Secret) {
    let ca = CertificateAuthority::generate_root(
        &CaConfig {
            name: "pki".into(),
            subject: Subject::with_common_name("Winner Root"),
            key: KeySpec::EcdsaP256,
            ttl: std::time::Duration::from_secs(86_400),
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let key = ca.key().to_pem(KeyEncoding::Pkcs8).unwrap();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "pki-ca", "namespace": NAMESPACE, "resourceVersion": "7",
                     "ownerReferences": [{"apiVersion": "pki.tlsmint.io/v1alpha1", "kind": "PkiMount",
                                          "name": "pki", "uid": "4f0c7a8e-0000-4000-8000-000000000001",
                                          "controller": true}]},
    }))
    .unwrap();
    let mut secret = secret;
    secret.data = Some(
        [
            (
                tlsmint_api::TLS_CERT_FILE.to_owned(),
                k8s_openapi::ByteString(ca.certificate_pem().into_bytes()),
            ),
            (
                tlsmint_api::TLS_KEY_FILE.to_owned(),
                k8s_openapi::ByteString(key.expose_secret().as_bytes().to_vec()),
            ),
        ]
        .into(),
    );
    (ca, secret)
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// Answers the next request, which must be `method path`; returns its body.
async fn expect(
    handle: &mut Handle,
    method: Method,
    path: &str,
    answer: Response<Body>,
) -> Vec<u8> {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method(), method, "{}", request.uri());
    assert_eq!(request.uri().path(), path);
    let body = request.into_body().collect_bytes().await.unwrap().to_vec();
    send.send_response(answer);
    body
}

#[tokio::test]
async fn a_lost_create_race_loads_the_winners_ca_and_writes_nothing_else() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, NAMESPACE);
    let ctx = context(client.clone());
    let mount = root_mount();
    let secrets: Api<Secret> = Api::namespaced(client, NAMESPACE);
    let key_name = super::super::key_secret_name(&mount);
    let (winner_ca, winner_secret) = winner();
    let winner_secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(key_name.clone()),
            ..winner_secret.metadata
        },
        ..winner_secret
    };

    let server = tokio::spawn({
        let key_name = key_name.clone();
        async move {
            let posted = expect(
                &mut handle,
                Method::POST,
                &format!("/api/v1/namespaces/{NAMESPACE}/secrets"),
                json(
                    StatusCode::CONFLICT,
                    &serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": format!("secrets \"{key_name}\" already exists"),
                        "reason": "AlreadyExists", "code": 409
                    }),
                ),
            )
            .await;
            let posted: Secret = serde_json::from_slice(&posted).unwrap();
            assert_eq!(posted.metadata.name.as_deref(), Some(key_name.as_str()));
            expect(
                &mut handle,
                Method::GET,
                &format!("/api/v1/namespaces/{NAMESPACE}/secrets/{key_name}"),
                json(
                    StatusCode::OK,
                    &serde_json::to_value(&winner_secret).unwrap(),
                ),
            )
            .await;
            handle
        }
    });
    let outcome = act(
        Decision::CreateRoot,
        Inputs {
            mount: &mount,
            ctx: &ctx,
            secrets: &secrets,
            key_name: &key_name,
            key_secret: None,
            signed_secret: None,
            published: false,
        },
    )
    .await
    .unwrap();
    let mut handle = server.await.unwrap();

    assert!(outcome.ready.holds, "{:?}", outcome.ready);
    let loaded = outcome.ca.expect("the winner's CA");
    assert_eq!(
        loaded.info().serial,
        winner_ca.info().serial,
        "the winner's CA, not ours"
    );
    assert!(
        outcome.event.is_none(),
        "no 'CA created' Event for a CA this replica did not create"
    );
    // Nothing else was sent: no update, patch or delete of the winner's Secret.
    drop(ctx);
    drop(secrets);
    assert!(
        futures::FutureExt::now_or_never(handle.next_request())
            .flatten()
            .is_none(),
        "no further request"
    );
}
