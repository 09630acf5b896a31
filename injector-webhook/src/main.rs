//! `tlsmint-injector`: see the crate docs of `tlsmint_injector`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = tlsmint_injector::config::Cli::parse();
    match tlsmint_injector::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tlsmint-injector: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
