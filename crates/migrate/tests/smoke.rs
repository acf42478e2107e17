//! Smoke test: one migration on every backend.
mod common;
use common::TestDb;
use engine_ops_migrate::{MigrationManager, UpOptions};

async fn applies(db: TestDb) {
    let dir = db.migrations_dir("m");
    common::write(
        &dir,
        "001_a.up.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY);",
    );
    let m = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;
    m.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert!(common::table_exists(&mut conn, "a").await);
    assert_eq!(common::ledger(&mut conn).await.len(), 1);
    let _ = common::migrate_bin();
    let _ = common::schema_dump(&mut conn).await;
}
on_every_backend!(applies);
