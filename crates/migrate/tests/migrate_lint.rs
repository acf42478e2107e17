//! The expand/contract lint on every dialect (issue test 9): each statement that breaks the
//! previous release is flagged in an expand migration and passes in a contract migration,
//! and `up --phase expand` refuses to run a flagged migration.

mod common;

use common::{TestDb, write};
use engine_ops_migrate::{Dialect, Error, LintRule, MigrationManager, Phase, UpOptions};

/// The dangerous statements this dialect can run, with the rule each must trigger.
fn dangerous(dialect: Dialect) -> Vec<(&'static str, LintRule)> {
    let mut cases = vec![
        ("DROP TABLE legacy_things;", LintRule::DropTable),
        (
            "ALTER TABLE users DROP COLUMN nickname;",
            LintRule::DropColumn,
        ),
        (
            "ALTER TABLE users RENAME COLUMN email TO mail;",
            LintRule::RenameColumn,
        ),
        ("ALTER TABLE users RENAME TO people;", LintRule::RenameTable),
        (
            "ALTER TABLE users ADD COLUMN level INTEGER NOT NULL;",
            LintRule::NotNullWithoutDefault,
        ),
    ];
    match dialect {
        Dialect::Postgres => {
            cases.push((
                "ALTER TABLE users ALTER COLUMN age TYPE BIGINT;",
                LintRule::ChangeColumnType,
            ));
            cases.push((
                "CREATE INDEX users_age ON users (age);",
                LintRule::NonConcurrentIndex,
            ));
        }
        Dialect::MySql => {
            cases.push((
                "ALTER TABLE users MODIFY age BIGINT;",
                LintRule::ChangeColumnType,
            ));
        }
        // SQLite cannot change a column's type in place.
        Dialect::Sqlite => {}
    }
    cases
}

const SETUP: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100), nickname VARCHAR(50), age INTEGER);\n\
                     CREATE TABLE legacy_things (id INTEGER PRIMARY KEY);\n";

async fn flags_breaking_statements_only_in_expand_steps(db: TestDb) {
    let dialect = db.dialect();
    for (statement, rule) in dangerous(dialect) {
        // A database of its own for each statement.
        let db = common::fresh(db.backend)
            .await
            .expect("the outer test database exists");
        let dir = db.migrations_dir("case");
        write(&dir, "001_setup.up.sql", SETUP);
        write(
            &dir,
            "002_change.up.sql",
            &format!("-- a comment line\n{statement}\n"),
        );
        let expand = MigrationManager::new(&dir).unwrap().lint(Some(dialect));
        assert_eq!(expand.checked, 2);
        assert_eq!(
            expand.findings.len(),
            1,
            "{dialect}: {statement}: {:?}",
            expand.findings
        );
        let finding = &expand.findings[0];
        assert_eq!(
            (finding.version, finding.line, finding.rule),
            (2, 2, rule),
            "{statement}"
        );
        assert!(finding.file.ends_with("002_change.up.sql"));
        assert!(finding.to_string().contains(rule.code()));

        // Applying it before the deploy is refused, and nothing runs.
        let manager = MigrationManager::new(&dir).unwrap();
        let mut conn = db.connect().await;
        let err = manager
            .up(&mut conn, &UpOptions::default().phase(Phase::Expand))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::UnsafeExpand { findings } if findings.len() == 1),
            "{err}"
        );
        assert!(!common::table_exists(&mut conn, "users").await);

        // Marked as a contract step, it passes the lint and runs after the deploy.
        write(
            &dir,
            "002_change.up.sql",
            &format!(
                "-- engine-ops: contract\n{}",
                statement.replace("NOT NULL;", "NOT NULL DEFAULT 0;")
            ),
        );
        let manager = MigrationManager::new(&dir).unwrap();
        let contract = manager.lint(Some(dialect));
        assert!(
            contract.findings.is_empty(),
            "{statement}: {:?}",
            contract.findings
        );
        assert_eq!(contract.contract, 1);
        let expand = manager
            .up(&mut conn, &UpOptions::default().phase(Phase::Expand))
            .await
            .unwrap();
        assert_eq!(expand.applied.len(), 1);
        assert_eq!(expand.held_back[0].version, 2);
        let contract = manager
            .up(&mut conn, &UpOptions::default().phase(Phase::Contract))
            .await
            .unwrap();
        assert_eq!(contract.applied[0].version, 2, "{dialect}: {statement}");
    }
}

async fn safe_changes_pass(db: TestDb) {
    let dialect = db.dialect();
    let dir = db.migrations_dir("safe");
    write(&dir, "001_setup.up.sql", SETUP);
    let index = if dialect == Dialect::Postgres {
        "-- engine-ops: no-transaction\nCREATE INDEX CONCURRENTLY users_age ON users (age);\n"
    } else {
        "CREATE INDEX users_age ON users (age);\n"
    };
    write(&dir, "002_index.up.sql", index);
    write(
        &dir,
        "003_add.up.sql",
        "ALTER TABLE users ADD COLUMN plan VARCHAR(20);\nALTER TABLE users ADD COLUMN level INTEGER NOT NULL DEFAULT 0;\n\
         CREATE TABLE fresh (id INTEGER PRIMARY KEY, v INTEGER);\nCREATE INDEX fresh_v ON fresh (v);\nINSERT INTO users (id, email) VALUES (1, 'DROP TABLE users');\n",
    );
    let manager = MigrationManager::new(&dir).unwrap();
    let report = manager.lint(Some(dialect));
    assert!(
        report.findings.is_empty(),
        "{dialect}: {:?}",
        report.findings
    );
    let mut conn = db.connect().await;
    let up = manager
        .up(&mut conn, &UpOptions::default().phase(Phase::Expand))
        .await
        .unwrap();
    assert_eq!(up.applied.len(), 3);
}

on_every_backend!(
    flags_breaking_statements_only_in_expand_steps,
    safe_changes_pass
);
