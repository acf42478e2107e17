//! Migration throughput: `MigrationManager::up` against the same SQL executed directly through
//! sqlx with no ledger, and `status` over 10,000 recorded migrations.
//!
//! ```sh
//! cargo bench -p benches --bench migrate                       # SQLite only
//! ENGINE_OPS_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p benches --bench migrate                     # and PostgreSQL
//! ```
//!
//! Each measured iteration starts from a fresh, empty database (created outside the timed
//! part) and an already connected dedicated connection, for both contenders.

// A benchmark reports to its user.
#![allow(clippy::print_stderr, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use engine_ops_migrate::{Database, DbConn, MigrationManager, UpOptions};
use sqlx::{AssertSqlSafe, Connection};
use std::path::Path;
use std::time::{Duration, Instant};

const APPLY: usize = 1_000;
const RECORDED: usize = 10_000;

/// `n` trivial migrations in sqlx's layout.
fn write_migrations(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 1..=n {
        std::fs::write(
            dir.join(format!("{i:05}_create_t{i}.up.sql")),
            format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY);\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{i:05}_create_t{i}.down.sql")),
            format!("DROP TABLE t{i};\n"),
        )
        .unwrap();
    }
}

/// A fresh empty database URL for one iteration.
enum Target {
    Sqlite {
        dir: tempfile::TempDir,
        counter: usize,
    },
    Postgres {
        admin: String,
        counter: usize,
    },
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    async fn fresh(&mut self) -> String {
        match self {
            Self::Sqlite { dir, counter } => {
                *counter += 1;
                format!(
                    "sqlite://{}",
                    dir.path().join(format!("bench-{counter}.db")).display()
                )
            }
            Self::Postgres { admin, counter } => {
                *counter += 1;
                let name = format!("eo_bench_{}_{}", std::process::id(), counter);
                let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
                format!("{base}/{name}")
            }
        }
    }
}

fn targets() -> Vec<Target> {
    let mut targets = vec![Target::Sqlite {
        dir: tempfile::tempdir().unwrap(),
        counter: 0,
    }];
    match std::env::var("ENGINE_OPS_PG_URL") {
        Ok(admin) => targets.push(Target::Postgres { admin, counter: 0 }),
        Err(_) => eprintln!("ENGINE_OPS_PG_URL is not set: PostgreSQL benchmarks skipped"),
    }
    targets
}

/// Runs each migration's SQL directly, one autocommit execution per file: the baseline.
async fn apply_direct(db: &mut Database, scripts: &[String]) {
    for sql in scripts {
        let sql = AssertSqlSafe(sql.clone());
        match db.conn() {
            DbConn::Sqlite(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
            DbConn::Postgres(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
            _ => unreachable!("the benches build sqlite and postgres only"),
        }
        .unwrap();
    }
}

fn apply_1000(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = tempfile::tempdir().unwrap();
    write_migrations(source.path(), APPLY);
    let manager = MigrationManager::new(source.path()).unwrap();
    let scripts: Vec<String> = (1..=APPLY)
        .map(|i| {
            std::fs::read_to_string(source.path().join(format!("{i:05}_create_t{i}.up.sql")))
                .unwrap()
        })
        .collect();

    let mut group = c.benchmark_group("apply_1000");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30));
    for mut target in targets() {
        let name = target.name();
        let target = tokio::sync::Mutex::new(&mut target);
        group.bench_function(format!("{name}/engine_ops_up"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (manager, target) = (&manager, &target);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let url = target.lock().await.fresh().await;
                        let mut db = Database::connect(&url).await.unwrap();
                        let started = Instant::now();
                        let report = manager.up(&mut db, &UpOptions::default()).await.unwrap();
                        total += started.elapsed();
                        assert_eq!(report.applied.len(), APPLY);
                        db.close().await.unwrap();
                    }
                    total
                }
            })
        });
        group.bench_function(format!("{name}/sqlx_direct"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (scripts, target) = (&scripts, &target);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let url = target.lock().await.fresh().await;
                        let mut db = Database::connect(&url).await.unwrap();
                        let started = Instant::now();
                        apply_direct(&mut db, scripts).await;
                        total += started.elapsed();
                        db.close().await.unwrap();
                    }
                    total
                }
            })
        });
    }
    group.finish();
}

/// `status` with 10,000 migrations recorded in the ledger (rows written in bulk as setup).
fn status_10000(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = tempfile::tempdir().unwrap();
    write_migrations(source.path(), RECORDED);
    let manager = MigrationManager::new(source.path()).unwrap();

    let mut group = c.benchmark_group("status_10000");
    group.sample_size(20);
    for mut target in targets() {
        let name = target.name();
        let db = rt.block_on(async {
            let url = target.fresh().await;
            let mut db = Database::connect(&url).await.unwrap();
            // Apply the first migration (creating the ledger), then record the rest in bulk.
            manager.up(&mut db, &UpOptions::default().target(1)).await.unwrap();
            let mut sql = String::from("BEGIN;");
            for (rank, m) in manager.migrations().iter().enumerate().skip(1) {
                let now = if name == "sqlite" { "strftime('%Y-%m-%d %H:%M:%f','now')" } else { "now()" };
                sql.push_str(&format!(
                    "INSERT INTO engine_ops_migrations (version, name, checksum, applied_at, execution_ms, completed, installed_rank) VALUES ({}, '{}', '{}', {now}, 1, TRUE, {});",
                    m.version(),
                    m.name(),
                    m.checksum(),
                    rank + 1
                ));
            }
            sql.push_str("COMMIT;");
            db.conn().execute(&sql).await.unwrap();
            db
        });
        let db = tokio::sync::Mutex::new(db);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let status = manager.status(&mut *db.lock().await).await.unwrap();
                assert_eq!(status.applied_count(), RECORDED);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, apply_1000, status_10000);
criterion_main!(benches);
