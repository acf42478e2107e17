//! `rollout`: the command-line front of engine-ops-rollout on Kubernetes (feature `cli`), the
//! deploy and rollback scripts of a blue-green or rolling release as one tool.
//!
//! ```text
//! rollout [--namespace N] [--app A] [--format text|json] <command>
//!   blue-green <image> [--replicas R] [--yes] [--smoke URL|PATH]... [--ready-timeout 5m]
//!                      [--watch 60s] [--standby 0s]
//!   rollback [--yes] [--replicas R] [--ready-timeout 5m]
//!   status
//!   rolling <image> [--max-surge 1] [--max-unavailable 0] [--timeout 5m]
//!   manifests blue-green|rolling|canary [--image I] [--replicas R] [--port P]
//! ```
//!
//! It parses arguments (`cli.rs`), resolves them into plain values, calls the library
//! ([`KubePlatform`], [`Rollouts`](engine_ops_rollout::Rollouts) with
//! [`BlueGreen`](engine_ops_rollout::BlueGreen), `KubePlatform::rolling_update`, the
//! manifests) through one module per command (`blue_green.rs`, `rollback.rs`, `status.rs`),
//! and prints the result (`output.rs`).
//!
//! - **Streams**: progress lines go to stderr as things happen (text mode); stdout carries
//!   only the result, so that `--format json` output can be piped to a parser. Under
//!   `--format json`, stdout holds exactly one JSON document, errors included
//!   (`{"command", "ok": false, "error", "exit_code"}`), and no progress is printed.
//! - **Exit codes**: 0 success; 1 the release failed or was rolled back, pods have problems
//!   (`status`), nothing to roll back to, an API error, or another rollout is recorded as in
//!   progress (the cluster's state, not the arguments, is what refuses: retrying later may
//!   succeed); 2 bad usage or bad input (an unknown layout, a malformed duration, a missing
//!   `--app`, an invalid setting, or a confirmation that cannot be asked because stdin is not
//!   a terminal and `--yes` was not given). Errors print `error: …` on stderr.
//! - **One rollout at a time**: `blue-green` and `rollback` record themselves on the active
//!   Service (`KubePlatform::begin_rollout`); a second command is refused while the record
//!   is there, and after a crash `rollout rollback` finishes the interrupted rollout.

// A command-line tool writes to its terminal: results on stdout, progress and errors on
// stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// The doc comments of the clap types are the `--help` text, written for a terminal:
// `<app>-blue` there is a placeholder, not HTML, and `[default: …]` not a link.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod blue_green;
mod cli;
mod output;
mod rollback;
mod status;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{Cli, Command, Format, Layout};
use engine_ops_rollout::platform::kube::manifests::{self, ManifestSpec};
use engine_ops_rollout::{Error, KubePlatform, RollingUpdate};

use crate::output::Progress;

/// What a command produced: its result as JSON and as text, and whether it succeeded (exit 0)
/// or not (exit 1).
pub(crate) struct Outcome {
    pub(crate) json: serde_json::Value,
    pub(crate) text: String,
    pub(crate) ok: bool,
}

/// A failure before or while running a command, with its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl Failure {
    /// Bad usage or bad input: exit 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }

    /// The operation failed: exit 1.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    /// Another rollout is recorded as in progress: exit 1 (the cluster's state refuses, not
    /// the arguments).
    pub(crate) fn busy(message: impl Into<String>) -> Self {
        Self::failed(message)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            code: if error.is_bad_input() { 2 } else { 1 },
            message: error.to_string(),
        }
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::BlueGreen(_) => "blue-green",
        Command::Rollback(_) => "rollback",
        Command::Status => "status",
        Command::Rolling(_) => "rolling",
        Command::Manifests(_) => "manifests",
    }
}

/// The platform of the app, from the kubeconfig (KUBECONFIG, ~/.kube/config, in-cluster).
async fn platform(cli: &Cli) -> Result<KubePlatform, Failure> {
    let app = cli::check_app(cli.app.as_deref()).map_err(Failure::usage)?;
    Ok(KubePlatform::try_default(cli.namespace.as_deref(), &app).await?)
}

async fn run(cli: &Cli, progress: &Progress) -> Result<Outcome, Failure> {
    match &cli.command {
        Command::Manifests(args) => {
            let app = cli::check_app(cli.app.as_deref()).map_err(Failure::usage)?;
            let image = args
                .image
                .clone()
                .unwrap_or_else(|| format!("{app}:latest"));
            let mut spec = ManifestSpec::new(app, image)
                .replicas(args.replicas)
                .port(args.port);
            if let Some(namespace) = &cli.namespace {
                spec = spec.namespace(namespace.clone());
            }
            let objects = match args.layout {
                Layout::BlueGreen => manifests::blue_green(&spec)?,
                Layout::Rolling => manifests::rolling(&spec)?,
                Layout::Canary => manifests::canary(&spec)?,
            };
            Ok(Outcome {
                text: objects.to_yaml()?,
                json: objects.to_json()?,
                ok: true,
            })
        }
        Command::BlueGreen(args) => {
            let options = blue_green::BlueGreenOptions {
                image: args.image.clone(),
                replicas: args.replicas,
                yes: args.yes,
                smoke: args.smoke.clone(),
                ready_timeout: args.ready_timeout,
                watch: args.watch,
                standby: args.standby,
            };
            // Refused before the cluster is contacted.
            blue_green::require_confirmation_possible(options.yes, "the switch")?;
            let platform = Arc::new(platform(cli).await?);
            blue_green::run(platform, options, progress).await
        }
        Command::Rollback(args) => {
            let options = rollback::RollbackOptions {
                yes: args.yes,
                replicas: args.replicas,
                ready_timeout: args.ready_timeout,
            };
            blue_green::require_confirmation_possible(options.yes, "the rollback")?;
            rollback::run(&platform(cli).await?, options, progress).await
        }
        Command::Status => status::run(&platform(cli).await?).await,
        Command::Rolling(args) => {
            let mut update = RollingUpdate::new(args.image.clone()).timeout(args.timeout);
            if let Some(surge) = args.max_surge {
                update = update.max_surge(surge);
            }
            if let Some(unavailable) = args.max_unavailable {
                update = update.max_unavailable(unavailable);
            }
            let platform = platform(cli).await?;
            let report = platform
                .rolling_update(&update, |event| progress.line(event))
                .await?;
            Ok(Outcome {
                ok: report.completed(),
                text: output::rolling(&report),
                json: serde_json::to_value(&report).unwrap_or_default(),
            })
        }
    }
}

/// `true` when the raw arguments ask for JSON output (for errors clap reports before the
/// arguments are parsed).
fn json_requested() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .any(|pair| pair[0] == "--format" && pair[1] == "json")
        || args.iter().any(|arg| arg == "--format=json")
}

/// Prints clap's message (help and version go to stdout with exit 0); for a usage error
/// under `--format json`, also the JSON error document, so that scripts always get one.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = error.print();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => return ExitCode::SUCCESS,
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => return ExitCode::from(2),
        _ => {}
    }
    if json_requested() {
        let rendered = error.render().to_string();
        let first = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        let doc = serde_json::json!({ "ok": false, "error": first, "exit_code": 2 });
        println!("{doc:#}");
    }
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let progress = Progress::new(cli.format == Format::Text);
    let result = runtime.block_on(run(&cli, &progress));
    // A confirmation prompt may still wait on stdin in a blocking thread: do not wait for it.
    runtime.shutdown_background();

    let mut stdout = std::io::stdout().lock();
    let code = match (&result, cli.format) {
        (Ok(outcome), Format::Text) => {
            let _ = stdout.write_all(outcome.text.as_bytes());
            u8::from(!outcome.ok)
        }
        (Ok(outcome), Format::Json) => {
            let doc = serde_json::json!({
                "command": command_name(&cli.command),
                "ok": outcome.ok,
                "report": outcome.json,
            });
            let _ = writeln!(stdout, "{doc:#}");
            u8::from(!outcome.ok)
        }
        (Err(failure), format) => {
            eprintln!("error: {}", failure.message);
            if format == Format::Json {
                let doc = serde_json::json!({
                    "command": command_name(&cli.command),
                    "ok": false,
                    "error": failure.message,
                    "exit_code": failure.code,
                });
                let _ = writeln!(stdout, "{doc:#}");
            }
            failure.code
        }
    };
    ExitCode::from(code)
}
