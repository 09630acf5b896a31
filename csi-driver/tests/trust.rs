//! The trust check: when the roles' trust bundle changes (a CA rotation: one root, then old
//! and new, then new only) while the leaves are not due, every volume's CA file follows in
//! one `..data` swap with the same key and leaf, one GetCABundle per role; an unchanged
//! bundle writes nothing; a failed check changes nothing and reports no Event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Bench, FakeCa, TOKEN, wait_for};
use tlsmint_csi::manager::TrustPass;
use tokio_util::sync::CancellationToken;

/// Every file the volume serves, by name, read through its `..data` link.
fn contents(target: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(target.join("..data"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// The generation `..data` points at, and how many generation folders exist.
fn generation(target: &Path) -> (PathBuf, usize) {
    let current = std::fs::read_link(target.join("..data")).unwrap();
    let folders = std::fs::read_dir(target)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name().into_string().unwrap();
            name.starts_with("..") && name != "..data"
        })
        .count();
    (current, folders)
}

fn record(bench: &Bench, volume_id: &str) -> String {
    std::fs::read_to_string(bench.state_dir.join(format!("volumes/{volume_id}.json"))).unwrap()
}

/// A second root, as a rotation brings in.
fn new_root(bench: &Bench) -> String {
    FakeCa::new(bench.clock.now()).root.certificate_pem()
}

#[tokio::test(start_paused = true)]
async fn a_trust_change_rewrites_only_the_ca_files_in_one_swap() {
    let bench = Bench::new("trust-change").await;
    let (mut driver, _) = bench.start().await;
    let mut web0 = bench.pod("web-0");
    web0.set("csi.tlsmint.io/pkcs12-file", "tls.p12");
    let mut web1 = bench.pod("web-1");
    web1.set("csi.tlsmint.io/ca-file", "roots.pem");
    for pod in [&web0, &web1] {
        driver.publish(pod, bench.clock).await.unwrap();
    }
    let before: Vec<_> = [&web0, &web1]
        .iter()
        .map(|p| (contents(&p.target), generation(&p.target).0))
        .collect();
    let records = [
        record(&bench, &web0.volume_id),
        record(&bench, &web1.volume_id),
    ];
    let old_root = bench.ca.root.certificate_pem();
    assert_eq!(before[0].0["ca.crt"], old_root.as_bytes());

    // The rotation starts: both roots are trusted.
    let both = format!("{old_root}{}", new_root(&bench));
    bench.set_bundle(&both);
    let pass = driver.manager.refresh_trust().await;
    assert_eq!(
        pass,
        TrustPass {
            roles_checked: 1,
            roles_failed: 0,
            volumes_updated: 2
        }
    );
    assert_eq!(bench.bundle_calls(), 1, "one GetCABundle for the one role");
    assert_eq!(bench.sign_calls(), 2, "a trust change issues nothing");
    assert_eq!(
        bench.issuer.tokens.lock().unwrap().last().unwrap(),
        &format!("Bearer {TOKEN}"),
        "the check is authenticated with a pod's token"
    );
    for (pod, ((old_files, old_generation), ca_file)) in [&web0, &web1]
        .iter()
        .zip(before.iter().zip(["ca.crt", "roots.pem"]))
    {
        let now = contents(&pod.target);
        assert_eq!(now[ca_file], both.as_bytes(), "exactly the new bundle");
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            old_files.keys().collect::<Vec<_>>()
        );
        for (name, bytes) in old_files.iter().filter(|(n, _)| n.as_str() != ca_file) {
            assert_eq!(&now[name], bytes, "{name} must stay byte-identical");
        }
        let (current, folders) = generation(&pod.target);
        assert_ne!(&current, old_generation, "a new generation was swapped in");
        assert_eq!(folders, 1, "one generation, the old one removed");
        assert_eq!(
            std::fs::read(pod.target.join(ca_file)).unwrap(),
            both.as_bytes()
        );
    }
    // The metadata describes the same certificate: still valid for a restart.
    assert_eq!(record(&bench, &web0.volume_id), records[0]);
    assert_eq!(record(&bench, &web1.volume_id), records[1]);

    // The rotation ends: the new root alone.
    let new_only = both.trim_start_matches(old_root.as_str()).to_owned();
    bench.set_bundle(&new_only);
    let pass = driver.manager.refresh_trust().await;
    assert_eq!(pass.volumes_updated, 2);
    assert_eq!(
        contents(&web0.target)["ca.crt"],
        new_only.as_bytes().to_vec()
    );
    assert_eq!(
        contents(&web0.target)["tls.key"],
        before[0].0["tls.key"],
        "never a new key for a trust change"
    );
    assert!(bench.events.events().is_empty());
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_bundle_writes_nothing() {
    let bench = Bench::new("trust-same").await;
    let (mut driver, _) = bench.start().await;
    let pod = bench.pod("web-0");
    driver.publish(&pod, bench.clock).await.unwrap();
    let before = (contents(&pod.target), generation(&pod.target));

    let pass = driver.manager.refresh_trust().await;
    assert_eq!(
        pass,
        TrustPass {
            roles_checked: 1,
            roles_failed: 0,
            volumes_updated: 0
        }
    );
    assert_eq!(bench.bundle_calls(), 1);
    assert_eq!((contents(&pod.target), generation(&pod.target)), before);
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_trust_check_keeps_the_files_and_reports_no_event() {
    let bench = Bench::new("trust-down").await;
    let (mut driver, _) = bench.start().await;
    let pod = bench.pod("web-0");
    driver.publish(&pod, bench.clock).await.unwrap();
    // Republish stays cheap: no GetCABundle either.
    driver.publish(&pod, bench.clock).await.unwrap();
    assert_eq!(bench.bundle_calls(), 0);
    let before = (contents(&pod.target), generation(&pod.target));

    bench.set_bundle(&new_root(&bench));
    bench.set_down(true);
    let pass = driver.manager.refresh_trust().await;
    assert_eq!(pass.roles_failed, 1);
    assert_eq!(pass.volumes_updated, 0);
    assert_eq!((contents(&pod.target), generation(&pod.target)), before);
    assert!(
        bench.events.events().is_empty(),
        "no Event for a trust check"
    );
    // The volume keeps working and the next check succeeds.
    driver.publish(&pod, bench.clock).await.unwrap();
    bench.set_down(false);
    assert_eq!(driver.manager.refresh_trust().await.volumes_updated, 1);
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_periodic_check_follows_a_change_within_one_interval() {
    let bench = Bench::new("trust-loop").await;
    let (mut driver, _) = bench.start().await;
    let pod = bench.pod("web-0");
    driver.publish(&pod, bench.clock).await.unwrap();
    let stop = CancellationToken::new();
    let task = driver
        .manager
        .run_trust_refresh(Duration::from_secs(60), stop.clone());
    let both = format!("{}{}", bench.ca.root.certificate_pem(), new_root(&bench));
    bench.set_bundle(&both);
    let ca = pod.target.join("ca.crt");
    let followed = wait_for(Duration::from_secs(61), || {
        std::fs::read(&ca).unwrap() == both.as_bytes()
    })
    .await;
    assert!(followed, "ca.crt did not follow within the interval");
    assert_eq!(bench.sign_calls(), 1);
    stop.cancel();
    task.await.unwrap();
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restarted_driver_checks_trust_once_kubelet_passes_a_token() {
    let bench = Bench::new("trust-restart").await;
    let (mut driver, _) = bench.start().await;
    let pod = bench.pod("web-0");
    driver.publish(&pod, bench.clock).await.unwrap();
    driver.stop().await;

    let (mut driver, resumed) = bench.start().await;
    assert_eq!(resumed, 1);
    bench.set_bundle(&new_root(&bench));
    // No token survives a restart: nothing to authenticate with until the next republish.
    let pass = driver.manager.refresh_trust().await;
    assert_eq!((pass.roles_failed, pass.volumes_updated), (1, 0));
    assert_eq!(bench.bundle_calls(), 0);
    driver.publish(&pod, bench.clock).await.unwrap();
    assert_eq!(driver.manager.refresh_trust().await.volumes_updated, 1);
    assert_eq!(bench.sign_calls(), 1, "resumed, never re-issued");
    driver.stop().await;
}
