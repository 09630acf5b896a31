//! The driver through its real CSI server on a Unix socket, against an issuer that really
//! signs: first publish, denials and bad input, cheap republish, renewal at half the
//! lifetime on a paused clock, failing renewals, restart, reboot and unpublish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Bench, Files, TOKEN, bundle_matches, until, wait_for};
use tonic::Code;

const HOUR: &str = "1h";

#[tokio::test(start_paused = true)]
async fn first_publish_writes_a_matching_pair_signed_for_the_pod() {
    let bench = Bench::new("first").await;
    let (mut driver, _) = bench.start().await;
    let pod = bench.pod("web-0");
    driver.publish(&pod, bench.clock).await.unwrap();

    let files = Files::read(&pod.target);
    assert_eq!(
        files.key_spki, files.cert_spki,
        "tls.key does not match tls.crt"
    );
    // The chain in tls.crt verifies up to the root in ca.crt.
    assert_eq!(
        files.chain_der.len(),
        2,
        "tls.crt: leaf, intermediate, root"
    );
    tlsmint_ca::x509::verify_issued_by(&files.leaf_der, &files.chain_der[0]).unwrap();
    tlsmint_ca::x509::verify_issued_by(&files.chain_der[0], &files.ca_der[0]).unwrap();
    assert_eq!(files.chain_der[1], files.ca_der[0]);
    let bundle = std::fs::read_to_string(pod.target.join("bundle.pem")).unwrap();
    assert_eq!(bundle_matches(&bundle).unwrap(), files.serial);

    // Names from the templates; the pod's own token; one Sign, one mount.
    let (_, cert) = x509_parser::parse_x509_certificate(&files.leaf_der).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "web-0.default.svc");
    assert_eq!(bench.sign_calls(), 1);
    assert_eq!(
        bench.issuer.tokens.lock().unwrap().as_slice(),
        [format!("Bearer {TOKEN}")]
    );
    assert_eq!(bench.mounter.mounts(), 1);

    // Modes: key 0400, certificates 0444 (no fsGroup).
    let mode = |name: &str| {
        std::fs::metadata(pod.target.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("tls.key"), 0o400);
    assert_eq!(mode("bundle.pem"), 0o400);
    assert_eq!(mode("tls.crt"), 0o444);
    assert_eq!(mode("ca.crt"), 0o444);
    // Metadata saved, renewal scheduled.
    assert!(driver.manager.renewal_due(&pod.volume_id).is_some());
    assert!(
        bench
            .state_dir
            .join(format!("volumes/{}.json", pod.volume_id))
            .exists()
    );
    let meta = std::fs::read_to_string(
        bench
            .state_dir
            .join(format!("volumes/{}.json", pod.volume_id)),
    )
    .unwrap();
    assert!(
        !meta.contains(TOKEN) && !meta.contains("PRIVATE KEY"),
        "{meta}"
    );
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_denial_is_permission_denied_with_the_operators_message() {
    let bench = Bench::new("denied").await;
    let (mut driver, _) = bench.start().await;
    let pod = bench.pod("forbidden");
    let reason =
        "role web does not allow the name forbidden.default.svc (allowed_domains: example.com)";
    bench.deny("forbidden.default.svc", reason);
    let status = driver.publish(&pod, bench.clock).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(status.message(), reason);
    // Nothing left behind: no mount, no metadata, nothing scheduled, and kubelet's retry
    // is a first publish again.
    assert_eq!(bench.mounter.mounted(), 0);
    assert!(
        !bench
            .state_dir
            .join(format!("volumes/{}.json", pod.volume_id))
            .exists()
    );
    assert!(driver.manager.renewal_due(&pod.volume_id).is_none());
    let status = driver.publish(&pod, bench.clock).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(bench.sign_calls(), 2);
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn bad_attributes_are_invalid_argument_naming_the_attribute() {
    let bench = Bench::new("badattr").await;
    let (mut driver, _) = bench.start().await;
    let cases = [
        ("csi.tlsmint.io/ttl", "forever", "csi.tlsmint.io/ttl"),
        ("csi.tlsmint.io/colour", "blue", "csi.tlsmint.io/colour"),
        (
            "csi.tlsmint.io/key-file",
            "../../etc/shadow",
            "csi.tlsmint.io/key-file",
        ),
        ("csi.tlsmint.io/renew-at", "2", "csi.tlsmint.io/renew-at"),
    ];
    for (key, value, named) in cases {
        let mut pod = bench.pod("bad");
        pod.set(key, value);
        let status = driver.publish(&pod, bench.clock).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{key}: {status:?}");
        assert!(
            status.message().contains(named),
            "{key}: {}",
            status.message()
        );
    }
    // No role at all.
    let mut pod = bench.pod("norole");
    pod.attributes.retain(|(k, _)| k != "csi.tlsmint.io/role");
    let status = driver.publish(&pod, bench.clock).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("csi.tlsmint.io/role"),
        "{}",
        status.message()
    );
    // Not ephemeral.
    let mut req = bench.pod("pv").request(bench.clock);
    req.volume_context.remove("csi.storage.k8s.io/ephemeral");
    let status = driver.node.node_publish_volume(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("ephemeral"),
        "{}",
        status.message()
    );
    assert_eq!(bench.sign_calls(), 0);
    assert_eq!(bench.mounter.mounts(), 0);
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn hostile_template_values_are_refused_not_substituted() {
    let bench = Bench::new("hostile").await;
    let (mut driver, _) = bench.start().await;
    // Kubelet passes what the API server holds; a driver must not trust it to be a label.
    let hostile = [
        ("name", "a/b"),
        ("name", ".."),
        ("name", "x,evil.example.com"),
        ("name", "web-0.evil.example.com"),
        ("namespace", "../kube-system"),
        ("namespace", "ns with space"),
    ];
    for (field, value) in hostile {
        let mut pod = bench.pod("hostile");
        match field {
            "name" => pod.name = value.into(),
            _ => pod.namespace = value.into(),
        }
        let status = driver.publish(&pod, bench.clock).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{field}={value:?}: {status:?}"
        );
        assert!(
            status.message().contains("csi.tlsmint.io/"),
            "{field}={value:?}: {}",
            status.message()
        );
    }
    assert_eq!(bench.sign_calls(), 0, "a hostile value reached the issuer");
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn republish_is_cheap_and_never_final() {
    let bench = Bench::new("republish").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/ttl", HOUR);
    driver.publish(&pod, bench.clock).await.unwrap();
    let first = Files::read(&pod.target);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(70)).await;
        driver.publish(&pod, bench.clock).await.unwrap();
    }
    assert_eq!(bench.sign_calls(), 1, "a republish issued");
    assert_eq!(bench.mounter.mounts(), 1, "a republish mounted again");
    assert_eq!(Files::read(&pod.target).serial, first.serial);

    // A republish with a bad token or while the issuer is down is still OK: the volume
    // is served.
    bench.set_down(true);
    let mut broken = pod.clone();
    broken.token = String::new();
    driver.publish(&broken, bench.clock).await.unwrap();

    // A republish that has to re-issue (the files are gone) and cannot is never final.
    bench.mounter.reboot();
    let status = driver.publish(&pod, bench.clock).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Aborted | Code::DeadlineExceeded | Code::ResourceExhausted
        ),
        "a final code on a republish: {status:?}"
    );
    bench.set_down(false);
    driver.publish(&pod, bench.clock).await.unwrap();
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn renews_at_half_the_lifetime_with_a_new_key() {
    let bench = Bench::new("renew").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/ttl", HOUR);
    driver.publish(&pod, bench.clock).await.unwrap();
    let first = Files::read(&pod.target);
    let lifetime = first.not_after - first.not_before;
    let half = first.not_before + lifetime / 2;
    // Not before 45% of the lifetime (the jitter brings it forward by at most 5%).
    let early = first.not_before + lifetime * 0.45 - time::Duration::seconds(2);
    tokio::time::sleep(Duration::try_from(early - bench.clock.now()).unwrap()).await;
    assert_eq!(bench.sign_calls(), 1, "renewed before 45% of the lifetime");
    // Kubelet republishes with a fresh token meanwhile.
    driver.publish(&pod, bench.clock).await.unwrap();
    let renewed = wait_for(Duration::from_secs(600), || bench.sign_calls() == 2).await;
    assert!(renewed, "no renewal by 50% + 10 min");
    assert!(
        bench.clock.now() <= half + time::Duration::seconds(5),
        "renewed late"
    );
    let ok = wait_for(Duration::from_secs(5), || {
        Files::read(&pod.target).serial != first.serial
    })
    .await;
    assert!(ok, "the files did not change");
    let second = Files::read(&pod.target);
    assert_ne!(second.key_spki, first.key_spki, "renewal kept the old key");
    assert_eq!(second.key_spki, second.cert_spki);
    let due = driver.manager.renewal_due(&pod.volume_id).unwrap();
    assert!(
        due > second.not_before,
        "next renewal {due} not after the new notBefore"
    );
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_renewal_keeps_the_files_and_retries_with_backoff() {
    let bench = Bench::new("backoff").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/ttl", HOUR);
    driver.publish(&pod, bench.clock).await.unwrap();
    let first = Files::read(&pod.target);
    bench.set_down(true);
    let due = driver.manager.renewal_due(&pod.volume_id).unwrap();
    let wait = until(bench.clock, due);
    driver.kubelet_for(&pod, bench.clock, wait).await;
    assert!(wait_for(Duration::from_secs(5), || bench.sign_calls() == 2).await);
    // Retries come, spaced out: more than one in ten minutes, far fewer than one a second.
    let mut seen = Vec::new();
    let start = bench.clock.now();
    while bench.clock.now() - start < time::Duration::minutes(10) {
        // Kubelet keeps republishing; none of those calls is an issuance.
        driver.publish(&pod, bench.clock).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        seen.push(bench.sign_calls());
    }
    let retries = bench.sign_calls() - 2;
    assert!(
        (2..=20).contains(&retries),
        "{retries} retries in 10 min: {seen:?}"
    );
    assert_eq!(
        Files::read(&pod.target).serial,
        first.serial,
        "the old pair was replaced"
    );
    assert_eq!(Files::read(&pod.target).key_spki, first.key_spki);
    // The issuer comes back: the next retry renews.
    bench.set_down(false);
    let calls = bench.sign_calls();
    driver
        .kubelet_for(&pod, bench.clock, Duration::from_secs(900))
        .await;
    assert!(bench.sign_calls() > calls);
    let ok = wait_for(Duration::from_secs(5), || {
        Files::read(&pod.target).serial != first.serial
    })
    .await;
    assert!(ok, "not renewed after the issuer came back");
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restarted_driver_resumes_renewing() {
    let bench = Bench::new("restart").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/ttl", HOUR);
    driver.publish(&pod, bench.clock).await.unwrap();
    let first = Files::read(&pod.target);
    let due = driver.manager.renewal_due(&pod.volume_id).unwrap();
    driver.stop().await;

    let (mut driver, resumed) = bench.start().await;
    assert_eq!(resumed, 1);
    assert_eq!(driver.manager.renewal_due(&pod.volume_id), Some(due));
    // Kubelet's next republish: no mount, no issuance, but the token for the renewal.
    driver.publish(&pod, bench.clock).await.unwrap();
    assert_eq!(bench.mounter.mounts(), 1);
    assert_eq!(bench.sign_calls(), 1);
    let wait = until(bench.clock, due);
    driver.kubelet_for(&pod, bench.clock, wait).await;
    assert!(wait_for(Duration::from_secs(5), || bench.sign_calls() == 2).await);
    let ok = wait_for(Duration::from_secs(5), || {
        Files::read(&pod.target).serial != first.serial
    })
    .await;
    assert!(ok, "the restarted driver did not renew");
    assert_eq!(bench.mounter.mounts(), 1);
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn after_a_reboot_the_next_publish_issues_a_new_key_and_certificate() {
    let bench = Bench::new("reboot").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/ttl", HOUR);
    driver.publish(&pod, bench.clock).await.unwrap();
    let first = Files::read(&pod.target);
    driver.stop().await;
    bench.mounter.reboot();
    assert!(!pod.target.join("tls.crt").exists());

    let (mut driver, resumed) = bench.start().await;
    assert_eq!(resumed, 0, "a volume without its tmpfs is not renewed");
    assert!(driver.manager.renewal_due(&pod.volume_id).is_none());
    driver.publish(&pod, bench.clock).await.unwrap();
    assert_eq!(bench.sign_calls(), 2);
    assert_eq!(bench.mounter.mounts(), 2);
    let second = Files::read(&pod.target);
    assert_ne!(second.serial, first.serial);
    assert_ne!(second.key_spki, first.key_spki);
    assert_eq!(
        second.key_spki, second.cert_spki,
        "a new key with an old certificate"
    );
    let bundle = std::fs::read_to_string(pod.target.join("bundle.pem")).unwrap();
    assert_eq!(bundle_matches(&bundle).unwrap(), second.serial);
    assert!(driver.manager.renewal_due(&pod.volume_id).is_some());
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unpublish_removes_everything_and_accepts_unknown_volumes() {
    let bench = Bench::new("unpublish").await;
    let (mut driver, _) = bench.start().await;
    let pod = bench.pod("web-0");
    driver.publish(&pod, bench.clock).await.unwrap();
    let meta = bench
        .state_dir
        .join(format!("volumes/{}.json", pod.volume_id));
    assert!(meta.exists());
    driver.unpublish(&pod.volume_id, &pod.target).await.unwrap();
    assert_eq!(bench.mounter.mounted(), 0);
    assert!(!pod.target.exists(), "the target folder is left");
    assert!(!meta.exists(), "the metadata is left");
    assert!(driver.manager.renewal_due(&pod.volume_id).is_none());
    assert!(driver.manager.is_empty());
    // Again (kubelet retries), and an id the driver never saw.
    driver.unpublish(&pod.volume_id, &pod.target).await.unwrap();
    let other = bench.pod("never");
    driver
        .unpublish(&other.volume_id, &other.target)
        .await
        .unwrap();

    // Metadata of a volume whose tmpfs is gone (after a reboot): unpublish removes it.
    let second = bench.pod("web-1");
    driver.publish(&second, bench.clock).await.unwrap();
    driver.stop().await;
    bench.mounter.reboot();
    let (mut driver, _) = bench.start().await;
    let meta = bench
        .state_dir
        .join(format!("volumes/{}.json", second.volume_id));
    assert!(meta.exists());
    driver
        .unpublish(&second.volume_id, &second.target)
        .await
        .unwrap();
    assert!(!meta.exists(), "metadata of an unmounted volume is left");
    assert!(driver.manager.is_empty());
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn target_paths_outside_the_pods_folder_are_refused() {
    let bench = Bench::new("paths").await;
    let (mut driver, _) = bench.start().await;
    let elsewhere = bench.root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let pod = bench.pod("web-0");
    let pod_volumes = bench.pods.join(&pod.uid).join("volumes");
    std::os::unix::fs::symlink(&elsewhere, pod_volumes.join("evil")).unwrap();
    let targets = [
        bench.root.join("etc/mount").display().to_string(),
        format!("{}/{}/../../../etc/mount", bench.pods.display(), pod.uid),
        pod_volumes.join("evil/mount").display().to_string(),
        "relative/mount".into(),
    ];
    for target in &targets {
        let mut req = pod.request(bench.clock);
        req.target_path = target.clone();
        let status = driver.node.node_publish_volume(req).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{target}: {status:?}");
        assert!(
            status.message().contains("target path"),
            "{}",
            status.message()
        );
        let status = driver
            .node
            .node_unpublish_volume(tlsmint_csi::proto::csi::NodeUnpublishVolumeRequest {
                volume_id: pod.volume_id.clone(),
                target_path: target.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{target}: {status:?}");
    }
    assert_eq!(bench.mounter.mounts(), 0);
    assert_eq!(bench.sign_calls(), 0);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reader_of_the_bundle_never_sees_a_mismatched_pair_across_renewals() {
    let bench = Bench::new("reader").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/ttl", "2m");
    driver.publish(&pod, bench.clock).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (path, stop) = (pod.target.join("bundle.pem"), stop.clone());
        std::thread::spawn(move || {
            let mut serials = std::collections::BTreeSet::new();
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A read can race with the removal of the old generation: a retry, not
                // a wrong answer.
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                match bundle_matches(&text) {
                    Ok(serial) => {
                        serials.insert(serial);
                    }
                    Err(e) => return Err(e),
                }
                reads += 1;
            }
            Ok((reads, serials.len()))
        })
    };
    // Ten renewals, kubelet republishing (fresh tokens) every minute.
    while bench.sign_calls() < 11 {
        tokio::time::sleep(Duration::from_secs(60)).await;
        driver.publish(&pod, bench.clock).await.unwrap();
        // Let the reader read the new generation for a moment of real time.
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            bench.clock.now() < Files::read(&pod.target).not_after,
            "expired"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, serials) = reader.join().unwrap().unwrap();
    assert!(reads > 10, "the reader read {reads} times");
    assert!(serials >= 5, "the reader saw {serials} certificates");
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn identity_answers_and_the_socket_is_replaced_on_restart() {
    let bench = Bench::new("identity").await;
    let (mut driver, _) = bench.start().await;
    let info = driver
        .identity
        .get_plugin_info(tlsmint_csi::proto::csi::GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "csi.tlsmint.io");
    let probe = driver
        .identity
        .probe(tlsmint_csi::proto::csi::ProbeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(probe.ready, Some(true));
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn pod_events_once_per_state_change_on_trouble_only() {
    use tlsmint_csi::events::Trouble;
    let bench = Bench::new("events").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/ttl", HOUR);
    driver.publish(&pod, bench.clock).await.unwrap();
    let first = Files::read(&pod.target);

    // A short outage over the renewal time: retries ride it out, no Event.
    let due = driver.manager.renewal_due(&pod.volume_id).unwrap();
    bench.set_down(true);
    driver
        .kubelet_for(
            &pod,
            bench.clock,
            until(bench.clock, due) + Duration::from_secs(120),
        )
        .await;
    assert!(bench.sign_calls() >= 3, "no retries");
    bench.set_down(false);
    driver
        .kubelet_for(&pod, bench.clock, Duration::from_secs(300))
        .await;
    assert_ne!(Files::read(&pod.target).serial, first.serial, "not renewed");
    assert!(
        bench.events.events().is_empty(),
        "{:?}",
        bench.events.events()
    );

    // A long one: one RenewalOverdue past the grace (a tenth of the lifetime), however
    // many retries, then one CertificateExpired.
    let second = Files::read(&pod.target);
    let due = driver.manager.renewal_due(&pod.volume_id).unwrap();
    bench.set_down(true);
    driver
        .kubelet_for(
            &pod,
            bench.clock,
            until(bench.clock, due) + Duration::from_secs(300),
        )
        .await;
    assert!(
        bench.events.events().is_empty(),
        "an event within the grace"
    );
    driver
        .kubelet_for(&pod, bench.clock, Duration::from_secs(900))
        .await;
    let events = bench.events.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].trouble, Trouble::RenewalOverdue);
    assert_eq!(events[0].pod.uid, pod.uid);
    assert_eq!(events[0].pod.name, "web-0");
    assert_eq!(events[0].pod.namespace, "default");
    assert!(
        events[0].note.contains("the test issuer is down"),
        "{}",
        events[0].note
    );
    assert!(
        events[0].note.contains(&second.serial),
        "{}",
        events[0].note
    );
    let past_expiry = until(bench.clock, second.not_after) + Duration::from_secs(60);
    driver.kubelet_for(&pod, bench.clock, past_expiry).await;
    let events = bench.events.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].trouble, Trouble::Expired);
    assert!(events[1].note.contains("expired"), "{}", events[1].note);
    // No more Events while it stays expired and failing.
    driver
        .kubelet_for(&pod, bench.clock, Duration::from_secs(600))
        .await;
    assert_eq!(bench.events.events().len(), 2, "an event per retry");
    for event in bench.events.events() {
        assert!(!event.note.contains(TOKEN) && !event.note.contains("PRIVATE KEY"));
    }
    // Recovery: renewed, no Event; the state is clear for the next trouble.
    bench.set_down(false);
    driver
        .kubelet_for(&pod, bench.clock, Duration::from_secs(400))
        .await;
    assert_ne!(
        Files::read(&pod.target).serial,
        second.serial,
        "not renewed"
    );
    assert_eq!(bench.events.events().len(), 2);
    driver.stop().await;
}
