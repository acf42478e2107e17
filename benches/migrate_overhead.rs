//! Alternating (rotating) runs of `MigrationManager::up` and of the same SQL executed directly through
//! sqlx (no ledger, one autocommit execution per file), each from a fresh database, reporting
//! the medians and their ratio. A third contender, `sqlx + ledger row`, runs each file through
//! sqlx in a transaction together with one ledger insert: the floor for any tool that records
//! what it applied, which separates the cost of the ledger write itself from our overhead. Alternating keeps disk write-back and server state from
//! favouring whichever contender runs second; criterion's `migrate` bench runs them in turn.
//!
//! ```sh
//! cargo bench -p benches --bench migrate_overhead                      # SQLite
//! ENGINE_OPS_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p benches --bench migrate_overhead                    # and PostgreSQL
//! MIGRATIONS=1000 RUNS=7 cargo bench -p benches --bench migrate_overhead
//! ```

// A benchmark reports to its user.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use engine_ops_migrate::{Database, DbConn, MigrationManager, UpOptions};
use sqlx::{AssertSqlSafe, Connection};
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn fresh_url(kind: &str, n: usize, dir: &std::path::Path) -> String {
    match kind {
        "sqlite" => format!("sqlite://{}", dir.join(format!("run-{n}.db")).display()),
        _ => {
            let admin = std::env::var("ENGINE_OPS_PG_URL").unwrap();
            let name = format!("eo_overhead_{}_{n}", std::process::id());
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut c)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
    }
}

async fn drop_pg(n: usize) {
    if let Ok(admin) = std::env::var("ENGINE_OPS_PG_URL") {
        let name = format!("eo_overhead_{}_{n}", std::process::id());
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
            .execute(&mut c)
            .await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let migrations = env_usize("MIGRATIONS", 1000);
    let runs = env_usize("RUNS", 7);
    let source = tempfile::tempdir().unwrap();
    for i in 1..=migrations {
        std::fs::write(
            source.path().join(format!("{i:05}_create_t{i}.up.sql")),
            format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY);\n"),
        )
        .unwrap();
    }
    let manager = MigrationManager::new(source.path()).unwrap();
    let scripts: Vec<String> = (1..=migrations)
        .map(|i| format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY);\n"))
        .collect();
    let scratch = tempfile::tempdir().unwrap();

    let mut kinds = vec!["sqlite"];
    if std::env::var("ENGINE_OPS_PG_URL").is_ok() {
        kinds.push("postgres");
    } else {
        eprintln!("ENGINE_OPS_PG_URL is not set: PostgreSQL skipped");
    }
    println!(
        "{migrations} trivial migrations (CREATE TABLE), {runs} alternating runs each, medians:"
    );
    let mut counter = 0;
    for kind in kinds {
        let (mut ours, mut direct, mut floor) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            // Rotate who goes first, so background write-back of the previous run's files
            // does not always fall on the same contender.
            let mut order = ["ours", "direct", "floor"];
            order.rotate_left(run % 3);
            for contender in order {
                counter += 1;
                let url = fresh_url(kind, counter, scratch.path()).await;
                let mut db = Database::connect(&url).await.unwrap();
                let started = Instant::now();
                if contender == "ours" {
                    let report = manager.up(&mut db, &UpOptions::default()).await.unwrap();
                    assert_eq!(report.applied.len(), migrations);
                    ours.push(started.elapsed());
                } else if contender == "floor" {
                    let begin = if kind == "sqlite" {
                        "BEGIN IMMEDIATE"
                    } else {
                        "BEGIN"
                    };
                    let now = if kind == "sqlite" {
                        "strftime('%Y-%m-%d %H:%M:%f', 'now')"
                    } else {
                        "clock_timestamp()"
                    };
                    let ledger = "CREATE TABLE floor_ledger (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                                  checksum TEXT NOT NULL, applied_at TEXT NOT NULL, execution_ms BIGINT NOT NULL)";
                    db.conn().execute(ledger).await.unwrap();
                    let started = Instant::now();
                    for (i, (sql, m)) in scripts.iter().zip(manager.migrations()).enumerate() {
                        let batch = format!(
                            "{begin};\n{sql};\nINSERT INTO floor_ledger VALUES ({}, '{}', '{}', {now}, 0);\nCOMMIT",
                            i + 1,
                            m.name(),
                            m.checksum()
                        );
                        db.conn().execute(&batch).await.unwrap();
                    }
                    floor.push(started.elapsed());
                } else {
                    for sql in &scripts {
                        let sql = AssertSqlSafe(sql.clone());
                        match db.conn() {
                            DbConn::Sqlite(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
                            DbConn::Postgres(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
                            _ => unreachable!("sqlite and postgres only"),
                        }
                        .unwrap();
                    }
                    direct.push(started.elapsed());
                }
                db.close().await.unwrap();
                drop_pg(counter).await;
            }
        }
        let (o, d, f) = (median(ours), median(direct), median(floor));
        let ms = |t: Duration| t.as_secs_f64() * 1e3;
        println!(
            "{kind:<9} engine-ops up {:>8.1} ms | sqlx direct {:>8.1} ms | sqlx + ledger row {:>8.1} ms | ours/direct {:.3} | ours/(sqlx + ledger) {:.3}",
            ms(o),
            ms(d),
            ms(f),
            o.as_secs_f64() / d.as_secs_f64(),
            o.as_secs_f64() / f.as_secs_f64(),
        );
    }
}
