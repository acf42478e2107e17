//! Where migrations come from: SQL files and Rust code migrations mixed in one manager,
//! migrations embedded at compile time, and a sqlx-cli ledger adopted without running
//! anything again.

mod common;

use common::{Backend, TestDb, write};
use engine_ops_migrate::{
    BoxError, CodeMigration, DbConn, Error, MigrationManager, UpOptions, embed_migrations,
};
use sqlx::Connection;
use std::path::Path;

/// Inserts rows with a typed, bound sqlx query on whichever backend it runs.
struct SeedPlans;

#[async_trait::async_trait]
impl CodeMigration for SeedPlans {
    async fn up(&self, db: &mut DbConn<'_>) -> Result<(), BoxError> {
        db.execute("CREATE TABLE plans (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL)")
            .await?;
        for (id, name) in [(1_i64, "free"), (2, "team")] {
            match db {
                DbConn::Sqlite(c) => {
                    sqlx::query("INSERT INTO plans (id, name) VALUES (?, ?)")
                        .bind(id)
                        .bind(name)
                        .execute(&mut **c)
                        .await?;
                }
                DbConn::Postgres(c) => {
                    sqlx::query("INSERT INTO plans (id, name) VALUES ($1, $2)")
                        .bind(id)
                        .bind(name)
                        .execute(&mut **c)
                        .await?;
                }
                DbConn::MySql(c) => {
                    sqlx::query("INSERT INTO plans (id, name) VALUES (?, ?)")
                        .bind(id)
                        .bind(name)
                        .execute(&mut **c)
                        .await?;
                }
                _ => return Err("unexpected backend".into()),
            }
        }
        Ok(())
    }

    fn reversible(&self) -> bool {
        true
    }

    async fn down(&self, db: &mut DbConn<'_>) -> Result<(), BoxError> {
        db.execute("DROP TABLE plans").await?;
        Ok(())
    }
}

/// Fails after doing some work.
struct Broken;

#[async_trait::async_trait]
impl CodeMigration for Broken {
    async fn up(&self, db: &mut DbConn<'_>) -> Result<(), BoxError> {
        db.execute("CREATE TABLE broken_code (id INTEGER PRIMARY KEY)")
            .await?;
        Err("the backfill found rows it cannot convert".into())
    }
}

async fn code_and_sql_migrations_mix_in_version_order(db: TestDb) {
    let dir = db.migrations_dir("m");
    write(
        &dir,
        "001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, plan_id INTEGER);",
    );
    write(&dir, "001_create_users.down.sql", "DROP TABLE users;");
    // 003 needs the table that code migration 002 creates.
    write(
        &dir,
        "003_default_plan.up.sql",
        "UPDATE users SET plan_id = (SELECT id FROM plans WHERE name = 'free');",
    );
    write(
        &dir,
        "003_default_plan.down.sql",
        "UPDATE users SET plan_id = NULL;",
    );
    let manager = MigrationManager::new(&dir)
        .unwrap()
        .register_migration(2, "seed_plans", SeedPlans)
        .unwrap();
    let versions: Vec<u64> = manager.migrations().iter().map(|m| m.version()).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert!(manager.migrations()[1].is_code());

    let mut conn = db.connect().await;
    let report = manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert_eq!(
        report.applied.iter().map(|s| s.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        common::scalar_i64(&mut conn, "SELECT COUNT(*) FROM plans").await,
        2
    );
    assert!(manager.verify(&mut conn).await.unwrap().is_ok());

    manager
        .down(&mut conn, engine_ops_migrate::DownTarget::To(1), false)
        .await
        .unwrap();
    assert!(!common::table_exists(&mut conn, "plans").await);

    // Registering a version twice is refused.
    let dup = MigrationManager::new(&dir)
        .unwrap()
        .register_migration(1, "again", SeedPlans);
    assert!(matches!(
        dup,
        Err(Error::DuplicateVersion { version: 1, .. })
    ));
    let bad = MigrationManager::empty().register_migration(9, "has space", SeedPlans);
    assert!(matches!(bad, Err(Error::InvalidName { .. })));
}

async fn failing_code_migration_names_itself(db: TestDb) {
    let manager = MigrationManager::empty()
        .register_migration(1, "backfill", Broken)
        .unwrap();
    let mut conn = db.connect().await;
    let err = manager
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("migration 1 (backfill) from code"), "{text}");
    assert!(text.contains("cannot convert"), "{text}");
    let transactional = db.dialect().transactional_ddl();
    assert!(
        matches!(err, Error::Migration { recorded_as_failed, .. } if recorded_as_failed != transactional)
    );
    assert_eq!(
        common::table_exists(&mut conn, "broken_code").await,
        !transactional
    );
}

async fn embedded_migrations_equal_the_files(db: TestDb) {
    let embedded =
        MigrationManager::embedded(embed_migrations!("../../schemas/migrations")).unwrap();
    let on_disk = MigrationManager::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/migrations"),
    )
    .unwrap();
    let fingerprint = |m: &MigrationManager| {
        m.migrations()
            .iter()
            .map(|m| {
                (
                    m.version(),
                    m.name().to_owned(),
                    m.checksum().to_owned(),
                    m.is_reversible(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(fingerprint(&embedded), fingerprint(&on_disk));
    assert!(embedded.migrations().len() >= 3);

    // Applying the embedded set, then verifying with the files: no drift.
    let mut conn = db.connect().await;
    embedded.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert!(on_disk.verify(&mut conn).await.unwrap().is_ok());
}

async fn crlf_files_have_the_lf_checksum(db: TestDb) {
    // Embedded with CRLF line endings and a BOM, compared with the LF file written now.
    let crlf = MigrationManager::embedded(embed_migrations!("tests/fixtures/crlf")).unwrap();
    let dir = db.migrations_dir("lf");
    write(
        &dir,
        "001_crlf_things.up.sql",
        "-- written on Windows\nCREATE TABLE crlf_things (id INTEGER PRIMARY KEY);\n",
    );
    write(
        &dir,
        "001_crlf_things.down.sql",
        "DROP TABLE crlf_things;\n",
    );
    let lf = MigrationManager::new(&dir).unwrap();
    assert_eq!(
        crlf.migrations()[0].checksum(),
        lf.migrations()[0].checksum()
    );

    let mut conn = db.connect().await;
    crlf.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert!(common::table_exists(&mut conn, "crlf_things").await);
    assert!(lf.verify(&mut conn).await.unwrap().is_ok());
}

/// Runs sqlx's own migrator (what `sqlx migrate run` does) over `dir`.
async fn sqlx_migrate_run(db: &TestDb, dir: &Path) {
    let migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    match db.backend {
        Backend::Sqlite => {
            let url = format!("{}?mode=rwc", db.url.replacen("sqlite://", "sqlite:", 1));
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            migrator.run(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            migrator.run(&mut c).await.unwrap();
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            migrator.run(&mut c).await.unwrap();
        }
    }
}

async fn adopt_imports_a_sqlx_ledger(db: TestDb) {
    let dir = db.migrations_dir("m");
    write(
        &dir,
        "20260101000000_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\r\n",
    );
    write(
        &dir,
        "20260101000000_create_users.down.sql",
        "DROP TABLE users;",
    );
    write(
        &dir,
        "20260102000000_create_teams.up.sql",
        "CREATE TABLE teams (id INTEGER PRIMARY KEY);",
    );
    write(
        &dir,
        "20260102000000_create_teams.down.sql",
        "DROP TABLE teams;",
    );
    sqlx_migrate_run(&db, &dir).await;

    let manager = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;
    assert!(matches!(
        MigrationManager::new(&dir).unwrap().ledger_table("x_ledger").unwrap().status(&mut conn).await,
        Ok(s) if s.pending_count() == 2
    ));
    let report = manager.adopt(&mut conn).await.unwrap();
    assert_eq!(report.imported, [20260101000000, 20260102000000]);
    let status = manager.status(&mut conn).await.unwrap();
    assert_eq!(status.pending_count(), 0);
    assert!(status.migrations.iter().all(|m| m.applied_at.is_some()));

    // Idempotent.
    let again = manager.adopt(&mut conn).await.unwrap();
    assert!(again.imported.is_empty());
    assert_eq!(again.already_present.len(), 2);

    // New migrations after the switch are applied by us; adopted ones are not run again
    // (re-running them would fail: the tables exist).
    write(
        &dir,
        "20260103000000_create_roles.up.sql",
        "CREATE TABLE roles (id INTEGER PRIMARY KEY);",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    let up = manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert_eq!(
        up.applied.iter().map(|s| s.version).collect::<Vec<_>>(),
        [20260103000000]
    );
    assert!(manager.verify(&mut conn).await.unwrap().is_ok());
}

async fn adopt_refuses_files_that_do_not_match(db: TestDb) {
    let dir = db.migrations_dir("m");
    write(
        &dir,
        "1_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);",
    );
    write(&dir, "1_create_users.down.sql", "DROP TABLE users;");
    let mut conn = db.connect().await;
    let none = MigrationManager::new(&dir)
        .unwrap()
        .adopt(&mut conn)
        .await
        .unwrap_err();
    assert!(matches!(none, Error::NoSqlxLedger), "{none}");

    sqlx_migrate_run(&db, &dir).await;
    write(
        &dir,
        "1_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(10));",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    let err = manager.adopt(&mut conn).await.unwrap_err();
    assert!(
        matches!(&err, Error::AdoptMismatch { problems } if problems[0].contains("1_create_users.up.sql")),
        "{err}"
    );
    assert!(
        common::ledger(&mut conn).await.is_empty(),
        "nothing imported"
    );

    // A file sqlx applied that is gone from the directory is refused too.
    std::fs::remove_file(dir.join("1_create_users.up.sql")).unwrap();
    std::fs::remove_file(dir.join("1_create_users.down.sql")).unwrap();
    write(&dir, "2_other.up.sql", "SELECT 1;");
    let err = MigrationManager::new(&dir)
        .unwrap()
        .adopt(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no file has it"), "{err}");
}

on_every_backend!(
    code_and_sql_migrations_mix_in_version_order,
    failing_code_migration_names_itself,
    embedded_migrations_equal_the_files,
    crlf_files_have_the_lf_checksum,
    adopt_imports_a_sqlx_ledger,
    adopt_refuses_files_that_do_not_match,
);
