//! `cargo run --example migrations`: the migration lifecycle on the embedded default, SQLite.
//!
//! Creates a fresh SQLite file, applies the example service's migrations from
//! `schemas/migrations` (embedded in the binary at compile time), prints the status, rolls the
//! newest migration back, verifies the ledger against the files, and applies again. The same
//! steps on the command line: `cargo migrate --database-url sqlite://app.db up`, `status`,
//! `rollback`, `verify`.

// An example talks to its user on stdout.
#![allow(clippy::print_stdout)]

use engine_ops_migrate::{Database, DownTarget, MigrationManager, UpOptions, embed_migrations};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path =
        std::env::temp_dir().join(format!("engine-ops-migrations-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let manager = MigrationManager::embedded(embed_migrations!("../schemas/migrations"))?;
    println!(
        "{} migrations from {} -> {url}",
        manager.migrations().len(),
        manager
            .source()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let mut db = Database::connect(&url).await?;

    println!("\n== up");
    let report = manager.up(&mut db, &UpOptions::default()).await?;
    for step in &report.applied {
        println!(
            "applied  {:>3} {:<24} {:>4} ms  [{}]",
            step.version, step.name, step.duration_ms, step.phase
        );
    }

    println!("\n== status");
    let status = manager.status(&mut db).await?;
    for m in &status.migrations {
        println!(
            "{:>3} {:<24} {:<8} {}",
            m.version,
            m.name,
            m.state,
            m.applied_at_rfc3339().unwrap_or_default()
        );
    }

    println!("\n== rollback (down 1)");
    let down = manager.down(&mut db, DownTarget::Count(1), false).await?;
    for step in &down.reverted {
        println!(
            "reverted {:>3} {:<24} {:>4} ms",
            step.version, step.name, step.duration_ms
        );
    }

    println!("\n== verify");
    let verify = manager.verify(&mut db).await?;
    println!(
        "{} applied migrations checked, {} problems",
        verify.checked,
        verify.problems.len()
    );
    if !verify.is_ok() {
        return Err("verification failed".into());
    }

    println!("\n== up again");
    let again = manager.up(&mut db, &UpOptions::default()).await?;
    println!(
        "applied {} migration(s); {} pending",
        again.applied.len(),
        manager.status(&mut db).await?.pending_count()
    );

    db.close().await?;
    for suffix in ["", "-wal", "-shm", ".migrate-lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    println!("\ndone: removed {}", path.display());
    Ok(())
}
