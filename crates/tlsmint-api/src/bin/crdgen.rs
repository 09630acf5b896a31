//! `crdgen`: writes the CustomResourceDefinitions of `tlsmint-api` to `crds/*.yaml`, or with
//! `--check` fails when the committed files differ from the Rust types.
//!
//! Owns the file I/O and the command line only; the text comes from `tlsmint_api::crdgen`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tlsmint_api::crdgen::{DEFAULT_OUT_DIRS, REGENERATE_COMMAND, render_all};

const USAGE: &str = "\
Usage: crdgen [--out DIR] [--check]

Writes the tlsmint CustomResourceDefinitions as YAML files into DIR.

Options:
  --out DIR   folder to write to or check (default: crds and charts/tlsmint/crds)
  --check     write nothing; exit 1 naming every file that differs from the Rust types
  -h, --help  print this help";

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Run { out: Vec<PathBuf>, check: bool },
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    #[error("rendering the CRDs failed: {0}")]
    Render(#[source] serde_yaml_ng::Error),
    #[error("creating folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", drift_message(.0))]
    Drift(Vec<PathBuf>),
}

fn drift_message(paths: &[PathBuf]) -> String {
    let mut message = String::new();
    for path in paths {
        message.push_str(&format!("{} differs from the Rust types\n", path.display()));
    }
    message.push_str(&format!("run `{REGENERATE_COMMAND}` and commit the result"));
    message
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, Error> {
    let mut out: Vec<PathBuf> = DEFAULT_OUT_DIRS.iter().map(PathBuf::from).collect();
    let mut check = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--check" => check = true,
            "--out" => match args.next() {
                Some(dir) if !dir.is_empty() => out = vec![PathBuf::from(dir)],
                _ => return Err(Error::Usage("--out needs a folder".into())),
            },
            other => match other.strip_prefix("--out=") {
                Some(dir) if !dir.is_empty() => out = vec![PathBuf::from(dir)],
                _ => return Err(Error::Usage(format!("unknown argument {other:?}"))),
            },
        }
    }
    Ok(Command::Run { out, check })
}

/// Writes every file whose content changed.
fn write(out: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(out).map_err(|source| Error::CreateDir {
        path: out.to_owned(),
        source,
    })?;
    for (name, text) in render_all().map_err(Error::Render)? {
        let path = out.join(name);
        if read_if_exists(&path)?.as_deref() == Some(text.as_str()) {
            println!("unchanged {}", path.display());
            continue;
        }
        std::fs::write(&path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Fails with every file that is missing or differs.
fn check(out: &Path) -> Result<(), Error> {
    let mut drifted = Vec::new();
    for (name, text) in render_all().map_err(Error::Render)? {
        let path = out.join(name);
        if read_if_exists(&path)?.as_deref() != Some(text.as_str()) {
            drifted.push(path);
        }
    }
    if drifted.is_empty() {
        println!("{} is up to date", out.display());
        return Ok(());
    }
    Err(Error::Drift(drifted))
}

fn read_if_exists(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Run { out, check: true } => out.iter().try_for_each(|dir| check(dir)),
        Command::Run { out, check: false } => out.iter().try_for_each(|dir| write(dir)),
    }
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ Error::Usage(_)) => {
            eprintln!("crdgen: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("crdgen: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(list: &[&str]) -> Result<Command, Error> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_the_command_line() {
        let run = |out: &[&str], check| Command::Run {
            out: out.iter().map(PathBuf::from).collect(),
            check,
        };
        let both = ["crds", "charts/tlsmint/crds"];
        assert_eq!(args(&[]).unwrap(), run(&both, false));
        assert_eq!(args(&["--check"]).unwrap(), run(&both, true));
        assert_eq!(args(&["--out", "x", "--check"]).unwrap(), run(&["x"], true));
        assert_eq!(args(&["--out=y"]).unwrap(), run(&["y"], false));
        assert_eq!(args(&["--help"]).unwrap(), Command::Help);
        assert_eq!(args(&["-h", "--bogus"]).unwrap(), Command::Help);
        assert!(matches!(args(&["--out"]), Err(Error::Usage(_))));
        assert!(matches!(args(&["--bogus"]), Err(Error::Usage(_))));
    }

    #[test]
    fn check_names_missing_and_drifted_files_then_write_fixes_them() {
        let dir = std::env::temp_dir().join(format!("tlsmint-crdgen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let Err(Error::Drift(paths)) = check(&dir) else {
            panic!("expected drift for an empty folder");
        };
        assert_eq!(paths.len(), 3);
        write(&dir).unwrap();
        check(&dir).unwrap();
        std::fs::write(dir.join("issuerrole.yaml"), "stale").unwrap();
        let err = check(&dir).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("issuerrole.yaml differs"), "{message}");
        assert!(!message.contains("pkimount.yaml"), "{message}");
        assert!(message.contains(REGENERATE_COMMAND), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
