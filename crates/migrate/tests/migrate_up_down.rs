//! `up`, `status`, `down` and the ledger on every backend (issue tests 1, 2 and 15).

mod common;

use common::{TestDb, write};
use engine_ops_migrate::{DownTarget, Error, MigrationManager, MigrationState, UpOptions};

/// Three reversible migrations; the third inserts a row.
fn three(db: &TestDb) -> std::path::PathBuf {
    let dir = db.migrations_dir("three");
    write(
        &dir,
        "001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL);",
    );
    write(&dir, "001_create_users.down.sql", "DROP TABLE users;");
    write(
        &dir,
        "002_create_orders.up.sql",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL);\nCREATE INDEX orders_user_id ON orders (user_id);",
    );
    write(&dir, "002_create_orders.down.sql", "DROP TABLE orders;");
    write(
        &dir,
        "003_seed_admin.up.sql",
        "INSERT INTO users (id, email) VALUES (1, 'admin@example.com');",
    );
    write(
        &dir,
        "003_seed_admin.down.sql",
        "DELETE FROM users WHERE id = 1;",
    );
    dir
}

async fn fresh_database_applies_all_in_order(db: TestDb) {
    let manager = MigrationManager::new(three(&db)).unwrap();
    let mut conn = db.connect().await;

    let report = manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    let applied: Vec<u64> = report.applied.iter().map(|s| s.version).collect();
    assert_eq!(applied, [1, 2, 3]);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    assert!(common::table_exists(&mut conn, "users").await);
    assert!(common::table_exists(&mut conn, "orders").await);
    assert_eq!(
        common::scalar_i64(&mut conn, "SELECT COUNT(*) FROM users").await,
        1
    );
    assert_eq!(
        common::ledger(&mut conn).await,
        [
            (1, "create_users".to_owned(), true),
            (2, "create_orders".to_owned(), true),
            (3, "seed_admin".to_owned(), true)
        ]
    );
    // Ranks record the order of application; checksums are the files'.
    let ranks = common::scalar_i64(
        &mut conn,
        "SELECT COUNT(*) FROM engine_ops_migrations WHERE installed_rank = version",
    )
    .await;
    assert_eq!(ranks, 3);

    let status = manager.status(&mut conn).await.unwrap();
    assert_eq!(status.applied_count(), 3);
    assert_eq!(status.pending_count(), 0);
    for (entry, m) in status.migrations.iter().zip(manager.migrations()) {
        assert_eq!(entry.state, MigrationState::Applied);
        assert!(entry.applied_at.is_some());
        assert_eq!(entry.version, m.version());
    }
    let stamp = status.migrations[0].applied_at_rfc3339().unwrap();
    assert!(stamp.starts_with("20") && stamp.ends_with('Z'), "{stamp}");

    let again = manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(
        common::scalar_i64(&mut conn, "SELECT COUNT(*) FROM users").await,
        1
    );
    assert!(manager.verify(&mut conn).await.unwrap().is_ok());
}

async fn down_reverts_newest_first(db: TestDb) {
    let manager = MigrationManager::new(three(&db)).unwrap();
    let mut conn = db.connect().await;
    manager.up(&mut conn, &UpOptions::default()).await.unwrap();

    let report = manager
        .down(&mut conn, DownTarget::Count(2), false)
        .await
        .unwrap();
    let reverted: Vec<u64> = report.reverted.iter().map(|s| s.version).collect();
    assert_eq!(reverted, [3, 2]);
    assert!(!common::table_exists(&mut conn, "orders").await);
    assert_eq!(
        common::scalar_i64(&mut conn, "SELECT COUNT(*) FROM users").await,
        0
    );
    assert_eq!(common::ledger(&mut conn).await.len(), 1);

    let status = manager.status(&mut conn).await.unwrap();
    assert_eq!(status.pending_count(), 2);
}

async fn irreversible_down_is_refused_before_anything_runs(db: TestDb) {
    let dir = three(&db);
    std::fs::remove_file(dir.join("002_create_orders.down.sql")).unwrap();
    let manager = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;
    manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    let before = common::schema_dump(&mut conn).await;

    // down 2 would revert 3 (reversible) and then 2 (not): refused before 3 runs.
    let err = manager
        .down(&mut conn, DownTarget::Count(2), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Irreversible { version: 2, .. }),
        "{err}"
    );
    assert!(err.is_bad_input());
    assert!(
        err.to_string().contains("002_create_orders.down.sql"),
        "{err}"
    );
    assert_eq!(
        common::scalar_i64(&mut conn, "SELECT COUNT(*) FROM users").await,
        1
    );
    assert_eq!(common::ledger(&mut conn).await.len(), 3);
    assert_eq!(common::schema_dump(&mut conn).await, before);

    // down 1 (only the reversible 3) still works.
    manager
        .down(&mut conn, DownTarget::Count(1), false)
        .await
        .unwrap();
    assert_eq!(common::ledger(&mut conn).await.len(), 2);
}

async fn down_more_than_applied_is_refused(db: TestDb) {
    let manager = MigrationManager::new(three(&db)).unwrap();
    let mut conn = db.connect().await;
    manager
        .up(&mut conn, &UpOptions::default().target(2))
        .await
        .unwrap();
    let before = common::schema_dump(&mut conn).await;
    let err = manager
        .down(&mut conn, DownTarget::Count(3), false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyToRevert {
                requested: 3,
                applied: 2
            }
        ),
        "{err}"
    );
    assert_eq!(common::schema_dump(&mut conn).await, before);
    assert_eq!(common::ledger(&mut conn).await.len(), 2);
    let err = manager
        .down(&mut conn, DownTarget::To(42), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownVersion { version: 42 }),
        "{err}"
    );
}

async fn up_down_all_up_leaves_the_same_schema(db: TestDb) {
    let manager = MigrationManager::new(three(&db)).unwrap();
    let mut conn = db.connect().await;
    manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    let first = common::schema_dump(&mut conn).await;
    assert!(
        first.iter().any(|c| c.starts_with("orders.user_id")),
        "{first:?}"
    );

    let report = manager
        .down(&mut conn, DownTarget::To(0), false)
        .await
        .unwrap();
    assert_eq!(report.reverted.len(), 3);
    assert!(common::schema_dump(&mut conn).await.is_empty());
    assert!(common::ledger(&mut conn).await.is_empty());

    manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert_eq!(common::schema_dump(&mut conn).await, first);
}

async fn target_and_dry_run(db: TestDb) {
    let manager = MigrationManager::new(three(&db)).unwrap();
    let mut conn = db.connect().await;

    let dry = manager
        .up(&mut conn, &UpOptions::default().dry_run(true))
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.planned.len(), 3);
    assert!(dry.planned[1].statements[1].starts_with("CREATE INDEX orders_user_id"));
    assert!(!common::table_exists(&mut conn, "users").await);
    assert!(!common::table_exists(&mut conn, "engine_ops_migrations").await);

    let report = manager
        .up(&mut conn, &UpOptions::default().target(2))
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 2);
    assert_eq!(report.held_back[0].version, 3);

    let dry_down = manager
        .down(&mut conn, DownTarget::Count(1), true)
        .await
        .unwrap();
    assert_eq!(dry_down.planned[0].version, 2);
    assert_eq!(dry_down.planned[0].statements, ["DROP TABLE orders"]);
    assert!(common::table_exists(&mut conn, "orders").await);
}

/// Sleeps 300 ms inside the migration.
struct Slow;

#[async_trait::async_trait]
impl engine_ops_migrate::CodeMigration for Slow {
    async fn up(
        &self,
        db: &mut engine_ops_migrate::DbConn<'_>,
    ) -> Result<(), engine_ops_migrate::BoxError> {
        db.execute("CREATE TABLE slow (id INTEGER PRIMARY KEY)")
            .await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        Ok(())
    }
}

async fn execution_time_is_recorded(db: TestDb) {
    let dir = three(&db);
    let manager = MigrationManager::new(&dir)
        .unwrap()
        .register_migration(4, "slow", Slow)
        .unwrap();
    let mut conn = db.connect().await;
    let report = manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert!(
        report.applied[3].duration_ms >= 300,
        "{:?}",
        report.applied[3]
    );
    let status = manager.status(&mut conn).await.unwrap();
    let recorded: Vec<u64> = status
        .migrations
        .iter()
        .map(|m| m.duration_ms.unwrap())
        .collect();
    assert!((300..10_000).contains(&recorded[3]), "{recorded:?}");
    assert!(recorded[..3].iter().all(|ms| *ms < 10_000), "{recorded:?}");
}

on_every_backend!(
    execution_time_is_recorded,
    fresh_database_applies_all_in_order,
    down_reverts_newest_first,
    irreversible_down_is_refused_before_anything_runs,
    down_more_than_applied_is_refused,
    up_down_all_up_leaves_the_same_schema,
    target_and_dry_run,
);
