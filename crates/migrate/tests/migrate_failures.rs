//! Failures that must lose nothing, on every backend: a migration failing half way, a validate
//! step that says no, edited files, out-of-order versions, `BEGIN`/`COMMIT` in a transactional
//! migration, and PostgreSQL's concurrent index builds (issue tests 4, 5, 6 and 8).

mod common;

use common::{TestDb, write};
use engine_ops_migrate::{
    BoxError, CodeMigration, DbConn, Dialect, Direction, DownTarget, Error, MigrationManager,
    MigrationState, Problem, RepairAction, UpOptions,
};

fn base(db: &TestDb, dir_name: &str) -> std::path::PathBuf {
    let dir = db.migrations_dir(dir_name);
    write(
        &dir,
        "001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);",
    );
    write(&dir, "001_create_users.down.sql", "DROP TABLE users;");
    dir
}

async fn half_way_failure_loses_nothing(db: TestDb) {
    let dir = base(&db, "m");
    write(
        &dir,
        "002_half.up.sql",
        "CREATE TABLE half (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n",
    );
    write(&dir, "002_half.down.sql", "DROP TABLE half;");
    let manager = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;

    let err = manager
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    let message = err.to_string();
    let Error::Migration {
        version,
        statement,
        recorded_as_failed,
        completed,
        direction,
        ..
    } = &err
    else {
        panic!("expected a migration error, got {err}");
    };
    assert_eq!((*version, *direction), (2, Direction::Up));
    assert_eq!(completed, &[1]);
    let statement = statement.as_ref().expect("the failed statement is named");
    assert_eq!((statement.index, statement.line), (2, 2));
    assert!(message.contains("002_half.up.sql"), "{message}");
    assert!(message.contains("INSERT INTO no_such_table"), "{message}");
    // The earlier migration stays applied.
    assert!(common::table_exists(&mut conn, "users").await);

    if db.dialect().transactional_ddl() {
        assert!(!recorded_as_failed);
        assert!(
            !common::table_exists(&mut conn, "half").await,
            "rolled back"
        );
        assert_eq!(common::ledger(&mut conn).await.len(), 1, "no ledger row");
        // Fixed file: the next run just works.
        write(
            &dir,
            "002_half.up.sql",
            "CREATE TABLE half (id INTEGER PRIMARY KEY);\n",
        );
        let manager = MigrationManager::new(&dir).unwrap();
        let report = manager.up(&mut conn, &UpOptions::default()).await.unwrap();
        assert_eq!(report.applied[0].version, 2);
    } else {
        // MySQL: DDL is not transactional; the failure is recorded and blocks further runs.
        assert!(recorded_as_failed);
        assert!(message.contains("repair"), "{message}");
        assert!(
            common::table_exists(&mut conn, "half").await,
            "MySQL keeps the DDL"
        );
        assert_eq!(
            common::ledger(&mut conn).await,
            [
                (1, "create_users".to_owned(), true),
                (2, "half".to_owned(), false)
            ]
        );
        let status = manager.status(&mut conn).await.unwrap();
        assert_eq!(status.migrations[1].state, MigrationState::Failed);
        assert!(
            status.migrations[1]
                .failure
                .as_deref()
                .unwrap()
                .contains("no_such_table")
        );
        let verify = manager.verify(&mut conn).await.unwrap();
        assert!(verify.problems.contains(&Problem::Failed {
            version: 2,
            name: "half".into()
        }));

        let again = manager
            .up(&mut conn, &UpOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(again, Error::Dirty { version: 2, .. }), "{again}");
        assert!(again.to_string().contains("migrate repair"), "{again}");
        let down = manager
            .down(&mut conn, DownTarget::Count(1), false)
            .await
            .unwrap_err();
        assert!(matches!(down, Error::Dirty { .. }), "{down}");

        // The operator undoes the partial work and fixes the file, then repairs.
        conn.execute_for_test("DROP TABLE half").await;
        write(
            &dir,
            "002_half.up.sql",
            "CREATE TABLE half (id INTEGER PRIMARY KEY);\n",
        );
        let manager = MigrationManager::new(&dir).unwrap();
        let dry = manager.repair(&mut conn, true).await.unwrap();
        assert_eq!(
            dry.actions,
            [RepairAction::RemoveFailed {
                version: 2,
                name: "half".into()
            }]
        );
        assert_eq!(
            common::ledger(&mut conn).await.len(),
            2,
            "dry run changed nothing"
        );
        manager.repair(&mut conn, false).await.unwrap();
        let report = manager.up(&mut conn, &UpOptions::default()).await.unwrap();
        assert_eq!(report.applied[0].version, 2);
        assert!(manager.verify(&mut conn).await.unwrap().is_ok());
    }
}

/// Runs SQL on a `Database` from a test.
trait ExecuteForTest {
    async fn execute_for_test(&mut self, sql: &str);
}

impl ExecuteForTest for engine_ops_migrate::Database {
    async fn execute_for_test(&mut self, sql: &str) {
        self.conn()
            .execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

async fn validate_sql_that_fails_rolls_back(db: TestDb) {
    let dir = base(&db, "m");
    write(
        &dir,
        "002_seed.up.sql",
        "CREATE TABLE seeds (id INTEGER PRIMARY KEY);\nINSERT INTO seeds (id) VALUES (1);\n",
    );
    write(&dir, "002_seed.down.sql", "DROP TABLE seeds;");
    write(
        &dir,
        "002_seed.validate.sql",
        "SELECT COUNT(*) = 2 FROM seeds",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;

    let err = manager
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { version: 2, rolled_back: true, completed, .. } if completed == &[1]),
        "{err}"
    );
    assert!(err.to_string().contains("seed"), "{err}");
    assert!(!common::table_exists(&mut conn, "seeds").await);
    assert_eq!(common::ledger(&mut conn).await.len(), 1);

    // A validate query that passes lets it through.
    write(
        &dir,
        "002_seed.validate.sql",
        "SELECT COUNT(*) = 1 FROM seeds",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert_eq!(common::ledger(&mut conn).await.len(), 2);
}

struct AddFlag {
    valid: bool,
}

#[async_trait::async_trait]
impl CodeMigration for AddFlag {
    async fn up(&self, db: &mut DbConn<'_>) -> Result<(), BoxError> {
        db.execute("CREATE TABLE flags (id INTEGER PRIMARY KEY)")
            .await?;
        Ok(())
    }

    fn reversible(&self) -> bool {
        true
    }

    async fn down(&self, db: &mut DbConn<'_>) -> Result<(), BoxError> {
        db.execute("DROP TABLE flags").await?;
        Ok(())
    }

    async fn validate_up(&self, db: &mut DbConn<'_>) -> Result<bool, BoxError> {
        let exists = db.query_truth("SELECT COUNT(*) = 0 FROM flags").await?;
        Ok(exists && self.valid)
    }
}

async fn validate_hook_that_fails_rolls_back(db: TestDb) {
    let dir = base(&db, "m");
    let manager = MigrationManager::new(&dir)
        .unwrap()
        .register_migration(2, "add_flags", AddFlag { valid: false })
        .unwrap();
    let mut conn = db.connect().await;
    let err = manager
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Validation {
                version: 2,
                rolled_back: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("validate_up returned false"),
        "{err}"
    );
    assert!(!common::table_exists(&mut conn, "flags").await);
    assert_eq!(common::ledger(&mut conn).await.len(), 1);

    let manager = MigrationManager::new(&dir)
        .unwrap()
        .register_migration(2, "add_flags", AddFlag { valid: true })
        .unwrap();
    manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert!(common::table_exists(&mut conn, "flags").await);
    manager
        .down(&mut conn, DownTarget::Count(1), false)
        .await
        .unwrap();
    assert!(!common::table_exists(&mut conn, "flags").await);
}

async fn edited_applied_file_is_drift(db: TestDb) {
    let dir = db.migrations_dir("m");
    write(
        &dir,
        "001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;
    manager.up(&mut conn, &UpOptions::default()).await.unwrap();

    // The same file checked out on Windows (CRLF, BOM) is not drift.
    write(
        &dir,
        "001_create_users.up.sql",
        "\u{feff}CREATE TABLE users (id INTEGER PRIMARY KEY);\r\n",
    );
    let windows = MigrationManager::new(&dir).unwrap();
    assert!(windows.verify(&mut conn).await.unwrap().is_ok());

    // A real edit is.
    write(
        &dir,
        "001_create_users.up.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(10));",
    );
    write(
        &dir,
        "002_next.up.sql",
        "CREATE TABLE next_one (id INTEGER PRIMARY KEY);",
    );
    let edited = MigrationManager::new(&dir).unwrap();
    let verify = edited.verify(&mut conn).await.unwrap();
    assert_eq!(
        verify.problems,
        [Problem::ChecksumMismatch {
            version: 1,
            name: "create_users".into()
        }]
    );
    let err = edited
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ChecksumMismatch { version: 1, .. }),
        "{err}"
    );
    assert!(!err.is_bad_input());
    assert!(
        !common::table_exists(&mut conn, "next_one").await,
        "up refused to run"
    );
    let status = edited.status(&mut conn).await.unwrap();
    assert_eq!(status.migrations[0].state, MigrationState::ChecksumMismatch);

    // repair records the new checksum; then up proceeds.
    let repaired = edited.repair(&mut conn, false).await.unwrap();
    assert!(matches!(
        repaired.actions[..],
        [RepairAction::RealignChecksum { version: 1, .. }]
    ));
    assert!(edited.verify(&mut conn).await.unwrap().is_ok());
    edited.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert!(common::table_exists(&mut conn, "next_one").await);
}

async fn out_of_order_is_refused_unless_allowed(db: TestDb) {
    let dir = base(&db, "m");
    write(
        &dir,
        "003_c.up.sql",
        "CREATE TABLE c (id INTEGER PRIMARY KEY);",
    );
    write(&dir, "003_c.down.sql", "DROP TABLE c;");
    let mut conn = db.connect().await;
    MigrationManager::new(&dir)
        .unwrap()
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap();

    // A branch merged late brings version 2.
    write(
        &dir,
        "002_b.up.sql",
        "CREATE TABLE b (id INTEGER PRIMARY KEY);",
    );
    write(&dir, "002_b.down.sql", "DROP TABLE b;");
    let manager = MigrationManager::new(&dir).unwrap();
    let err = manager
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::OutOfOrder { pending, highest_applied: 3 } if pending[0].0 == 2),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-out-of-order"), "{err}");
    assert!(!common::table_exists(&mut conn, "b").await);
    let verify = manager.verify(&mut conn).await.unwrap();
    assert_eq!(
        verify.problems,
        [Problem::Gap {
            version: 2,
            name: "b".into()
        }]
    );

    manager
        .up(&mut conn, &UpOptions::default().allow_out_of_order(true))
        .await
        .unwrap();
    assert!(common::table_exists(&mut conn, "b").await);
    // down reverts in applied order: 2 was applied last.
    let report = manager
        .down(&mut conn, DownTarget::Count(1), false)
        .await
        .unwrap();
    assert_eq!(report.reverted[0].version, 2);
    assert!(common::table_exists(&mut conn, "c").await);
}

async fn begin_commit_in_a_transactional_migration_is_refused(db: TestDb) {
    let dir = base(&db, "m");
    write(
        &dir,
        "002_tx.up.sql",
        "CREATE TABLE tx_a (id INTEGER PRIMARY KEY);\nCOMMIT;\nCREATE TABLE tx_b (id INTEGER PRIMARY KEY);\n",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;
    let result = manager.up(&mut conn, &UpOptions::default()).await;
    if db.dialect().transactional_ddl() {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::TransactionControl { version: 2, line: 2, keyword, .. } if keyword == "COMMIT"),
            "{err}"
        );
        assert!(err.to_string().contains("no-transaction"), "{err}");
        // Refused before anything ran, migration 1 included.
        assert!(!common::table_exists(&mut conn, "users").await);
        assert!(!common::table_exists(&mut conn, "tx_a").await);
    } else {
        // MySQL runs migrations outside a transaction: a COMMIT is harmless there.
        result.unwrap();
        assert!(common::table_exists(&mut conn, "tx_b").await);
    }
}

async fn concurrent_index_needs_no_transaction(db: TestDb) {
    if db.dialect() != Dialect::Postgres {
        return;
    }
    let dir = base(&db, "m");
    write(
        &dir,
        "002_emails.up.sql",
        "ALTER TABLE users ADD COLUMN email VARCHAR(100);",
    );
    write(
        &dir,
        "003_email_index.up.sql",
        "-- engine-ops: no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n",
    );
    write(
        &dir,
        "003_email_index.down.sql",
        "DROP INDEX CONCURRENTLY users_email;",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;
    let report = manager.up(&mut conn, &UpOptions::default()).await.unwrap();
    assert_eq!(report.applied.len(), 3);
    assert!(report.lint.is_empty(), "{:?}", report.lint);
    assert_eq!(
        common::scalar_i64(
            &mut conn,
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'users_email'"
        )
        .await,
        1
    );
    manager
        .down(&mut conn, DownTarget::Count(1), false)
        .await
        .unwrap();
    assert_eq!(
        common::scalar_i64(
            &mut conn,
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'users_email'"
        )
        .await,
        0
    );

    // The same statement inside a transaction fails, and leaves nothing.
    let tx_dir = db.migrations_dir("tx");
    write(
        &tx_dir,
        "001_idx.up.sql",
        "CREATE TABLE t (v INTEGER);\nCREATE INDEX CONCURRENTLY t_v ON t (v);\n",
    );
    let err = MigrationManager::new(&tx_dir)
        .unwrap()
        .ledger_table("tx_ledger")
        .unwrap()
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CONCURRENTLY"), "{err}");
    assert!(!common::table_exists(&mut conn, "t").await);
}

async fn failed_concurrent_index_is_reported_invalid(db: TestDb) {
    if db.dialect() != Dialect::Postgres {
        return;
    }
    let dir = db.migrations_dir("m");
    write(
        &dir,
        "001_dups.up.sql",
        "CREATE TABLE dups (v INTEGER);\nINSERT INTO dups VALUES (1), (1);",
    );
    write(
        &dir,
        "002_unique.up.sql",
        "-- engine-ops: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY dups_v ON dups (v);",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    let mut conn = db.connect().await;
    let err = manager
        .up(&mut conn, &UpOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Migration {
                version: 2,
                recorded_as_failed: true,
                ..
            }
        ),
        "{err}"
    );

    // A failed concurrent build leaves an INVALID index behind: status and verify say so.
    let status = manager.status(&mut conn).await.unwrap();
    assert_eq!(status.invalid_indexes, ["public.dups_v"]);
    let verify = manager.verify(&mut conn).await.unwrap();
    assert!(verify.problems.contains(&Problem::InvalidIndex {
        index: "public.dups_v".into()
    }));
    assert!(verify.problems.contains(&Problem::Failed {
        version: 2,
        name: "unique".into()
    }));
}

on_every_backend!(
    half_way_failure_loses_nothing,
    validate_sql_that_fails_rolls_back,
    validate_hook_that_fails_rolls_back,
    edited_applied_file_is_drift,
    out_of_order_is_refused_unless_allowed,
    begin_commit_in_a_transactional_migration_is_refused,
    concurrent_index_needs_no_transaction,
    failed_concurrent_index_is_reported_invalid,
);
