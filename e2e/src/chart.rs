//! Installing the Helm chart in a test: `helm` from `K8S_BIN`, a release that is uninstalled
//! when the test ends (also when it panics), and small pod predicates the chart tests share.

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Pod;

use crate::tool_path;

/// A Helm release, uninstalled (waiting up to a minute) when dropped.
#[derive(Debug)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Release namespace.
    pub namespace: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let Ok(helm) = tool_path("helm") else { return };
        let _ = std::process::Command::new(helm)
            .args([
                "uninstall",
                &self.name,
                "-n",
                &self.namespace,
                "--wait",
                "--timeout",
                "60s",
            ])
            .status();
    }
}

/// Runs `helm ARGS`; its stdout, or an error with its stderr.
pub async fn helm(args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(tool_path("helm")?)
        .args(args)
        .output()
        .await
        .context("running helm")?;
    if !out.status.success() {
        bail!("helm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `helm install` of the repository's chart as `release` in `namespace`, in local mode
/// (`values-local.yaml`) from `image` (`repository:tag`, as `scripts/build-image` prints
/// it), with `sets` (`key=value`, one `--set` each) on top. The returned guard uninstalls
/// the release when dropped; it exists before the install, so a half-done install is
/// cleaned up too.
pub async fn install_local(
    release: &str,
    namespace: &str,
    image: &str,
    sets: &[String],
) -> Result<Release> {
    let (repository, tag) = image
        .rsplit_once(':')
        .with_context(|| format!("image {image:?} is not name:tag"))?;
    let guard = Release {
        name: release.to_owned(),
        namespace: namespace.to_owned(),
    };
    let chart = crate::operator::workspace_root().join("charts/tlsmint");
    let chart_dir = chart.to_string_lossy().into_owned();
    let local = chart
        .join("values-local.yaml")
        .to_string_lossy()
        .into_owned();
    let image_sets = [
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
    ];
    let mut args = vec![
        "install", release, &chart_dir, "-n", namespace, "-f", &local,
    ];
    for set in image_sets.iter().chain(sets) {
        args.extend(["--set", set.as_str()]);
    }
    helm(&args).await?;
    Ok(guard)
}

/// A free TCP port on the loopback (for the host-network components of a release).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether the pod's Ready condition is True.
pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
