//! Concurrent runners and locks (issue tests 3 and 12, and DDL lock waits): every migration is
//! applied exactly once however many runners start together, a failure never leaves the lock
//! behind, and a migration stuck behind a long transaction gives way instead of blocking the
//! application's queries.

mod common;

use common::{TestDb, write};
use engine_ops_migrate::{Database, Dialect, Error, MigrationManager, UpOptions};
use std::time::{Duration, Instant};

fn with_seed(db: &TestDb) -> std::path::PathBuf {
    let dir = db.migrations_dir("m");
    write(
        &dir,
        "001_create_events.up.sql",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind VARCHAR(20) NOT NULL);",
    );
    write(
        &dir,
        "002_seed_event.up.sql",
        "INSERT INTO events (id, kind) VALUES (1, 'seeded');",
    );
    write(
        &dir,
        "003_create_audits.up.sql",
        "CREATE TABLE audits (id INTEGER PRIMARY KEY);",
    );
    dir
}

async fn eight_runners_apply_each_migration_once(db: TestDb) {
    let dir = with_seed(&db);
    let mut runners = Vec::new();
    for _ in 0..8 {
        let url = db.url.clone();
        let dir = dir.clone();
        runners.push(tokio::spawn(async move {
            let manager = MigrationManager::new(dir).unwrap();
            let mut conn = Database::connect(&url).await.unwrap();
            manager.up(&mut conn, &UpOptions::default()).await
        }));
    }
    let mut applied_total = 0;
    for runner in runners {
        let report = runner.await.unwrap().expect("every runner succeeds");
        applied_total += report.applied.len();
    }
    assert_eq!(
        applied_total, 3,
        "each migration applied by exactly one runner"
    );
    let mut conn = db.connect().await;
    assert_eq!(
        common::scalar_i64(&mut conn, "SELECT COUNT(*) FROM events").await,
        1
    );
    let ledger = common::ledger(&mut conn).await;
    assert_eq!(ledger.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(ledger.iter().all(|r| r.2));
}

async fn failure_releases_the_lock(db: TestDb) {
    let dir = with_seed(&db);
    write(
        &dir,
        "004_broken.up.sql",
        "CREATE TABLE broken (id INTEGER PRIMARY KEY);\nSELEC 1;",
    );
    let manager = MigrationManager::new(&dir)
        .unwrap()
        .lock_timeout(Duration::from_secs(5));
    let mut conn = db.connect().await;
    let err = manager
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Migration { version: 4, .. }), "{err}");

    if db.dialect() == Dialect::Postgres {
        let mut observer = db.connect().await;
        let advisory = common::scalar_i64(
            &mut observer,
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await;
        assert_eq!(advisory, 0, "no advisory lock survives a failed migration");
    }

    // Another runner gets the lock at once (it does not wait for the lock timeout) and
    // meets the same failure; on MySQL the failure is now recorded, so it refuses.
    let started = Instant::now();
    let mut other = db.connect().await;
    let second = tokio::time::timeout(
        Duration::from_secs(4),
        manager.up(&mut other, &UpOptions::default()),
    )
    .await
    .expect("the second run does not hang on a leftover lock");
    assert!(second.is_err());
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(!matches!(second, Err(Error::LockTimeout { .. })));
}

async fn ddl_behind_a_long_transaction_gives_way(db: TestDb) {
    if db.dialect() != Dialect::Postgres {
        return;
    }
    let dir = db.migrations_dir("m");
    write(
        &dir,
        "001_create_accounts.up.sql",
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY);\nINSERT INTO accounts VALUES (1);",
    );
    write(
        &dir,
        "002_add_column.up.sql",
        "ALTER TABLE accounts ADD COLUMN note VARCHAR(20);",
    );
    let manager = MigrationManager::new(&dir)
        .unwrap()
        .ddl_lock_timeout(Duration::from_millis(200))
        .ddl_attempts(30);
    let mut conn = db.connect().await;
    manager
        .up(&mut conn, &UpOptions::default().target(1))
        .await
        .unwrap();

    // A long transaction holds a lock on the table.
    let mut long = db.connect().await;
    long.conn()
        .execute("BEGIN; SELECT * FROM accounts;")
        .await
        .unwrap();

    let migrating = tokio::spawn({
        let manager = manager.clone();
        async move { manager.up(&mut conn, &UpOptions::default()).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The application keeps reading while the migration waits: the ALTER gives up its place
    // in the lock queue every 200 ms instead of queueing readers behind it.
    let mut app = db.connect().await;
    let read = tokio::time::timeout(
        Duration::from_secs(3),
        common::scalar_i64(&mut app, "SELECT COUNT(*) FROM accounts"),
    )
    .await
    .expect("reads are not blocked behind the waiting migration");
    assert_eq!(read, 1);

    tokio::time::sleep(Duration::from_millis(500)).await;
    long.conn().execute("COMMIT").await.unwrap();
    let report = migrating.await.unwrap().unwrap();
    assert_eq!(report.applied[0].version, 2);
    assert!(
        report.applied[0].attempts > 1,
        "it was retried: {:?}",
        report.applied[0]
    );

    // With too few attempts, it gives up with the lock error and leaves nothing.
    write(
        &dir,
        "003_add_other.up.sql",
        "ALTER TABLE accounts ADD COLUMN other INTEGER;",
    );
    let impatient = MigrationManager::new(&dir)
        .unwrap()
        .ddl_lock_timeout(Duration::from_millis(100))
        .ddl_attempts(2);
    long.conn()
        .execute("BEGIN; SELECT * FROM accounts;")
        .await
        .unwrap();
    let mut conn = db.connect().await;
    let err = impatient
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lock timeout"), "{err}");
    long.conn().execute("COMMIT").await.unwrap();
    assert_eq!(common::ledger(&mut conn).await.len(), 2);
}

/// Creates a table, then panics (a bug in a code migration).
struct Panics;

#[async_trait::async_trait]
impl engine_ops_migrate::CodeMigration for Panics {
    async fn up(
        &self,
        db: &mut engine_ops_migrate::DbConn<'_>,
    ) -> Result<(), engine_ops_migrate::BoxError> {
        db.execute("CREATE TABLE panicked (id INTEGER PRIMARY KEY)")
            .await?;
        panic!("a bug in a code migration");
    }
}

/// The fixed version of the same migration.
struct Fixed;

#[async_trait::async_trait]
impl engine_ops_migrate::CodeMigration for Fixed {
    async fn up(
        &self,
        db: &mut engine_ops_migrate::DbConn<'_>,
    ) -> Result<(), engine_ops_migrate::BoxError> {
        db.execute("CREATE TABLE panicked (id INTEGER PRIMARY KEY)")
            .await?;
        Ok(())
    }
}

async fn panic_releases_the_lock(db: TestDb) {
    let dir = with_seed(&db);
    let url = db.url.clone();
    let buggy_dir = dir.clone();
    let crashed = tokio::spawn(async move {
        let manager = MigrationManager::new(buggy_dir)
            .unwrap()
            .register_migration(4, "code", Panics)
            .unwrap();
        let mut conn = Database::connect(&url).await.unwrap();
        manager.up(&mut conn, &UpOptions::default()).await
    })
    .await;
    assert!(crashed.unwrap_err().is_panic());

    // The next runner gets the lock well within its timeout.
    let manager = MigrationManager::new(&dir)
        .unwrap()
        .register_migration(4, "code", Fixed)
        .unwrap()
        .lock_timeout(Duration::from_secs(10));
    let mut conn = db.connect().await;
    let result = manager.up(&mut conn, &UpOptions::default()).await;
    if db.dialect().transactional_ddl() {
        // The panicking migration's transaction died with its connection.
        let report = result.expect("the lock was released and nothing of the panic remains");
        assert_eq!(
            report.applied.iter().map(|s| s.version).collect::<Vec<_>>(),
            [4]
        );
    } else {
        // MySQL recorded the migration before running it: it refuses until repaired.
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Dirty { version: 4, .. }), "{err}");
    }
}

on_every_backend!(
    panic_releases_the_lock,
    eight_runners_apply_each_migration_once,
    failure_releases_the_lock,
    ddl_behind_a_long_transaction_gives_way,
);
