//! Tracing setup: one global subscriber, plain or JSON, filtered by an EnvFilter string.
//!
//! Owns the subscriber. It must not decide what is logged: call sites use `tracing` macros
//! with dotted fields (`x509.serial`, `k8s.name`) and never log whole objects or keys.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// The log filter could not be parsed, or a subscriber was already installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The `--log-level` value is not a valid EnvFilter.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The rejected filter.
        filter: String,
        /// Why tracing refused it.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber is already set.
    #[error("installing the tracing subscriber failed: {0}")]
    Install(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the global tracing subscriber.
pub fn init(filter: &str, format: LogFormat) -> Result<(), TelemetryError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|source| TelemetryError::Filter {
        filter: filter.to_owned(),
        source,
    })?;
    let registry = tracing_subscriber::registry().with(env_filter);
    match format {
        // Colours only on a terminal: not in files, pipes or `kubectl logs`.
        LogFormat::Plain => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(true)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init(),
    }
    .map_err(TelemetryError::Install)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_refused_with_its_text() {
        let err = init("info,=[", LogFormat::Plain).unwrap_err();
        assert!(err.to_string().contains("info,=["), "{err}");
    }
}
