//! tlsmint-agent: the sidecar that gets a pod's certificate through the issuance API, writes
//! it atomically into a shared in-memory volume and keeps it renewed (SPEC.md §1, §3).
//!
//! ```text
//! config (flags/env) -> source::Api (Sign with a key made here, or Issue)
//!                          |
//!   renew::Agent loop: disk::reusable? -> obtain -> disk::write (..data swap) -> reload
//!                      every trust interval: trust -> disk::write_trust (same pair) -> reload
//! ```
//!
//! Owns the sidecar's behaviour. Must not: know Kubernetes objects (the injector writes the
//! pod spec) or log keys and tokens.

pub mod config;
pub mod disk;
pub mod reload;
pub mod renew;
pub mod source;

use anyhow::Context as _;
use tlsmint_client::{ClientConfig, TokenSource};

use crate::config::{Cli, Command, ProbeArgs, RunArgs};

/// Runs the command line: the agent, or the probe.
pub async fn main(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Some(Command::Probe(args)) => Ok(probe(&args)),
        None => {
            run(cli.run).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// `tlsmint-agent probe`: exit 0 when the files hold a usable certificate.
pub fn probe(args: &ProbeArgs) -> std::process::ExitCode {
    let now = time::OffsetDateTime::now_utc();
    match disk::inspect(&args.files.dir, &args.files, now, 0.5) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!(
                "no usable certificate in {}: {reason}",
                args.files.dir.display()
            );
            std::process::ExitCode::FAILURE
        }
    }
}

/// The agent: runs until SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    tlsmint_runtime::telemetry::init(&args.log.log_filter, args.log.log_format)?;
    let source = api_source(&args)?;
    let reload = reload_of(&args)?;
    std::fs::create_dir_all(&args.files.dir)
        .with_context(|| format!("creating {}", args.files.dir.display()))?;
    tracing::info!(
        endpoint = %args.endpoint,
        role = args.role.as_deref().unwrap_or_default(),
        dir = %args.files.dir.display(),
        mode = if args.issue { "issue" } else { "sign" },
        "tlsmint-agent starting"
    );
    let agent = renew::Agent {
        source,
        files: args.files.clone(),
        renew_at: args.renew_at.into(),
        clock: renew::Clock::System,
        reload,
        trust_interval: args.trust_refresh_interval.into(),
    };
    let shutdown = tlsmint_runtime::shutdown::on_signal();
    agent.run(shutdown, None).await;
    Ok(())
}

/// The issuance API source described by the flags.
pub fn api_source(args: &RunArgs) -> anyhow::Result<source::Api> {
    let role = args.role.clone().context("--role is required")?;
    let resolve = |v: &Vec<String>| v.iter().map(|s| args.resolve(s)).collect::<Vec<_>>();
    let names = source::Request::names(
        args.common_name.as_deref().map(|cn| args.resolve(cn)),
        resolve(&args.dns_names),
        &args.ip_sans,
        resolve(&args.uri_sans),
    )
    .map_err(anyhow::Error::msg)?;
    let key = tlsmint_client::keys::key_spec(&args.key_algorithm)
        .map_err(|e| anyhow::anyhow!("--key-algorithm {}: {e}", args.key_algorithm))?;
    let ca = match (&args.api_ca_file, &args.api_ca) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --api-ca-file {}", path.display()))?,
        ),
        (None, Some(pem)) => Some(pem.clone()),
        (None, None) => None,
    };
    let mut config = ClientConfig::new(
        args.endpoint.clone(),
        TokenSource::File(args.token_file.clone()),
    );
    config.ca_bundle_pem = ca;
    config.server_name.clone_from(&args.api_server_name);
    config.timeout = args.timeout();
    let request = source::Request {
        role: args.resolve(&role),
        names,
        ttl_seconds: args
            .ttl
            .map_or(0, |ttl| std::time::Duration::from(ttl).as_secs()),
        key,
        server_key: args.issue,
    };
    Ok(source::Api::new(config, request))
}

fn reload_of(args: &RunArgs) -> anyhow::Result<reload::Reload> {
    if let Some(url) = &args.reload_url {
        reload::check_url(url).map_err(anyhow::Error::msg)?;
    }
    Ok(reload::Reload {
        signal: args.reload_signal.zip(args.reload_process.clone()),
        url: args.reload_url.clone(),
        proc_root: None,
    })
}
