//! `tlsmint-agent`: see the crate docs of `tlsmint_agent`.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = tlsmint_agent::config::Cli::parse();
    match tlsmint_agent::main(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tlsmint-agent: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
