//! `migrate`: the command-line front of engine-ops-migrate (feature `cli`).
//!
//! It parses arguments (`cli.rs`), calls the library, and prints the typed report as text
//! (`output.rs`) or JSON. Progress goes to stderr through `tracing`; stdout carries only the
//! result, so `--format json` output can be piped to a parser. Exit codes: 0 success, 1 a
//! failed migration or verification, 2 bad usage or bad input.

// A command-line tool writes to its terminal: results on stdout, errors on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod output;

use clap::Parser;
use cli::{Cli, Command, Format, PhaseArg};
use engine_ops_migrate::{
    Database, Dialect, DownTarget, Error, MigrationManager, Phase, UpOptions,
};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// What a command produced: its report as JSON and as text, and whether it passed.
struct Outcome {
    /// The report in the format asked for: only that one is built (a JSON value of 10,000
    /// migrations is megabytes that text output never needs).
    body: Body,
    ok: bool,
}

enum Body {
    Text(String),
    Json(serde_json::Value),
}

impl Outcome {
    fn new<R: Serialize>(format: Format, report: &R, text: fn(&R) -> String, ok: bool) -> Self {
        let body = match format {
            Format::Text => Body::Text(text(report)),
            Format::Json => {
                Body::Json(serde_json::to_value(report).unwrap_or(serde_json::Value::Null))
            }
        };
        Self { body, ok }
    }
}

/// A failure before or while running a command, with its exit code.
struct Failure {
    message: String,
    code: u8,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self {
            code: if e.is_bad_input() { 2 } else { 1 },
            message: e.to_string(),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 2,
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Up(_) => "up",
        Command::Status => "status",
        Command::Rollback { .. } => "rollback",
        Command::Down(_) => "down",
        Command::Verify => "verify",
        Command::Lint => "lint",
        Command::New { .. } => "new",
        Command::Repair { .. } => "repair",
        Command::Adopt => "adopt",
    }
}

fn manager(cli: &Cli) -> Result<MigrationManager, Failure> {
    Ok(MigrationManager::new(&cli.source)?
        .ledger_table(&cli.ledger_table)?
        .lock_timeout(Duration::from_secs(cli.lock_timeout))
        .ddl_lock_timeout(Duration::from_secs(cli.ddl_lock_timeout)))
}

/// How a command opens the database.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `up`: a SQLite file is created when missing.
    Create,
    /// Everything else: a missing SQLite file is an error, never silently created.
    Existing,
    /// A dry run: a missing SQLite file is planned against as an empty database, in memory.
    Plan,
}

async fn connect(cli: &Cli, open: Open) -> Result<Database, Failure> {
    let url = cli.database_url.as_deref().ok_or_else(|| {
        usage("no database URL: pass --database-url or set DATABASE_URL (e.g. sqlite://app.db)")
    })?;
    Ok(match open {
        Open::Create => Database::connect(url).await?,
        Open::Plan if Database::sqlite_file_missing(url) => {
            Database::connect("sqlite::memory:").await?
        }
        Open::Existing | Open::Plan => Database::connect_existing(url).await?,
    })
}

async fn run(cli: &Cli) -> Result<Outcome, Failure> {
    match &cli.command {
        Command::New { name } => {
            let (up, down) = engine_ops_migrate::new_migration_files(&cli.source, name)?;
            let created = serde_json::json!({ "up": up, "down": down });
            let body = match cli.format {
                Format::Text => Body::Text(format!(
                    "Created {}\nCreated {}\n",
                    up.display(),
                    down.display()
                )),
                Format::Json => Body::Json(created),
            };
            Ok(Outcome { body, ok: true })
        }
        Command::Lint => {
            let manager = manager(cli)?;
            let dialect = cli.database_url.as_deref().and_then(Dialect::from_url);
            let report = manager.lint(dialect);
            let ok = report.findings.is_empty();
            Ok(Outcome::new(cli.format, &report, output::lint, ok))
        }
        Command::Up(args) => {
            let manager = manager(cli)?;
            let mut db = connect(
                cli,
                if args.dry_run {
                    Open::Plan
                } else {
                    Open::Create
                },
            )
            .await?;
            let mut options = UpOptions::default()
                .dry_run(args.dry_run)
                .allow_out_of_order(args.allow_out_of_order);
            if let Some(target) = args.target {
                options = options.target(target);
            }
            if let Some(phase) = args.phase {
                options = options.phase(match phase {
                    PhaseArg::Expand => Phase::Expand,
                    PhaseArg::Contract => Phase::Contract,
                });
            }
            let report = manager.up(&mut db, &options).await?;
            Ok(Outcome::new(cli.format, &report, output::up, true))
        }
        Command::Status => {
            let manager = manager(cli)?;
            let mut db = connect(cli, Open::Existing).await?;
            let report = manager.status(&mut db).await?;
            Ok(Outcome::new(cli.format, &report, output::status, true))
        }
        Command::Rollback { dry_run } => down(cli, DownTarget::Count(1), *dry_run).await,
        Command::Down(args) => {
            let target = match (args.count, args.to) {
                (Some(n), None) => DownTarget::Count(n),
                (None, Some(v)) => DownTarget::To(v),
                _ => return Err(usage("give either N or --to V")),
            };
            down(cli, target, args.dry_run).await
        }
        Command::Verify => {
            let manager = manager(cli)?;
            let mut db = connect(cli, Open::Existing).await?;
            let report = manager.verify(&mut db).await?;
            let ok = report.is_ok();
            Ok(Outcome::new(cli.format, &report, output::verify, ok))
        }
        Command::Repair { dry_run } => {
            let manager = manager(cli)?;
            let mut db = connect(cli, Open::Existing).await?;
            let report = manager.repair(&mut db, *dry_run).await?;
            Ok(Outcome::new(cli.format, &report, output::repair, true))
        }
        Command::Adopt => {
            let manager = manager(cli)?;
            let mut db = connect(cli, Open::Existing).await?;
            let report = manager.adopt(&mut db).await?;
            Ok(Outcome::new(cli.format, &report, output::adopt, true))
        }
    }
}

async fn down(cli: &Cli, target: DownTarget, dry_run: bool) -> Result<Outcome, Failure> {
    let manager = manager(cli)?;
    let mut db = connect(cli, Open::Existing).await?;
    let report = manager.down(&mut db, target, dry_run).await?;
    Ok(Outcome::new(cli.format, &report, output::down, true))
}

/// Prints clap's message (help and version go to stdout with exit 0); for a usage error
/// under `--format json`, also the JSON error document, so scripts always get one. Exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                2
            } else {
                0
            },
        );
    }
    let args: Vec<String> = std::env::args().collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json");
    let _ = e.print();
    if json {
        let message = e.render().to_string();
        let first = message
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
        Err(e) => return usage_error(e),
    };
    let default_level = if cli.quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "engine_ops_migrate={default_level},migrate={default_level}"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(&cli));
    let mut stdout = std::io::stdout().lock();
    let code = match (&result, cli.format) {
        (
            Ok(Outcome {
                body: Body::Text(text),
                ok,
            }),
            _,
        ) => {
            let _ = stdout.write_all(text.as_bytes());
            u8::from(!ok)
        }
        (
            Ok(Outcome {
                body: Body::Json(report),
                ok,
            }),
            _,
        ) => {
            let doc = serde_json::json!({
                "command": command_name(&cli.command),
                "ok": ok,
                "report": report,
            });
            let _ = writeln!(stdout, "{doc:#}");
            u8::from(!ok)
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
