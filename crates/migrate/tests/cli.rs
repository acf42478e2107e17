//! The `migrate` binary, run as a real process against fresh SQLite, PostgreSQL and MariaDB
//! databases: exit codes, text and JSON output, and what each command leaves in the database.
//!
//! Exit codes under test: 0 success, 1 a failed migration, verification, lint or lock timeout,
//! 2 bad usage or bad input (and then nothing is written).

mod common;

use common::{Backend, TestDb};
use engine_ops_migrate::{
    BoxError, CodeMigration, Database, DbConn, Error, MigrationManager, UpOptions,
};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The longest any one `migrate` process may take before the test fails.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The ledger table.
const LEDGER: &str = "engine_ops_migrations";

// ----- running the binary ---------------------------------------------------------------------

/// A `migrate` command: `--database-url` (when given), `--source`, then `args`. `DATABASE_URL`
/// and `RUST_LOG` are removed from its environment so the caller's shell cannot leak in.
fn command(url: Option<&str>, source: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(common::migrate_bin());
    c.env_remove("DATABASE_URL").env_remove("RUST_LOG");
    if let Some(url) = url {
        c.arg("--database-url").arg(url);
    }
    c.arg("--source")
        .arg(source)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// What a finished `migrate` process printed.
#[derive(Debug)]
struct Run {
    /// The arguments, for messages.
    args: String,
    /// The exit code (`None`: killed by a signal).
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Panics with the whole output unless the process exited with `code`.
    #[track_caller]
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`migrate {}` exited {:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Stdout and stderr together.
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics unless stdout or stderr (as chosen) contains every needle.
    #[track_caller]
    fn mentions(&self, needles: &[&str]) -> &Self {
        let all = self.all();
        for needle in needles {
            assert!(
                all.contains(needle),
                "`migrate {}`: output does not mention {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.args,
                self.stdout,
                self.stderr
            );
        }
        self
    }

    /// Panics unless stderr contains every needle.
    #[track_caller]
    fn stderr_mentions(&self, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "`migrate {}`: stderr does not mention {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.args,
                self.stdout,
                self.stderr
            );
        }
        self
    }

    /// Stdout parsed as the one JSON document of `--format json`.
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`migrate {}`: stdout is not one JSON document ({e})\n--- stdout\n{}\n--- stderr\n{}",
                self.args, self.stdout, self.stderr
            )
        })
    }
}

/// Waits (bounded) for a spawned `migrate` process and collects its output.
async fn finish(args: String, child: Child) -> Run {
    let out = tokio::time::timeout(PROCESS_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`migrate {args}` did not finish within {PROCESS_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("`migrate {args}`: {e}"));
    Run {
        args,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `migrate` without waiting for it.
fn spawn(url: Option<&str>, source: &Path, args: &[&str]) -> (String, Child) {
    let child = command(url, source, args)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", common::migrate_bin()));
    (args.join(" "), child)
}

/// Runs `migrate` to completion.
async fn migrate(url: Option<&str>, source: &Path, args: &[&str]) -> Run {
    let (args, child) = spawn(url, source, args);
    finish(args, child).await
}

/// Runs `migrate` against the test database.
async fn on(db: &TestDb, source: &Path, args: &[&str]) -> Run {
    migrate(Some(&db.url), source, args).await
}

/// Polls the integer query `sql` every 50 ms until it returns more than 0; panics after
/// `limit`.
async fn wait_for_rows(conn: &mut Database, sql: &str, limit: Duration, what: &str) {
    let started = Instant::now();
    while common::scalar_i64(conn, sql).await == 0 {
        assert!(
            started.elapsed() < limit,
            "gave up after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----- reading JSON reports -------------------------------------------------------------------

/// `(version, name)` of each element of a report array.
#[track_caller]
fn steps(report: &Value, field: &str) -> Vec<(u64, String)> {
    report[field]
        .as_array()
        .unwrap_or_else(|| panic!("report has no array `{field}`: {report:#}"))
        .iter()
        .map(|s| {
            (
                s["version"].as_u64().expect("version"),
                s["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect()
}

/// The versions of each element of a report array.
#[track_caller]
fn versions(report: &Value, field: &str) -> Vec<u64> {
    steps(report, field).into_iter().map(|(v, _)| v).collect()
}

/// Checks the envelope of a successful `--format json` document and returns its report.
#[track_caller]
fn report_of(doc: &Value, command: &str, ok: bool) -> Value {
    assert_eq!(doc["command"], command, "{doc:#}");
    assert_eq!(doc["ok"], ok, "{doc:#}");
    assert!(doc.get("error").is_none(), "{doc:#}");
    doc["report"].clone()
}

/// `(version, name)` of the lines `  <version> <name> …` that follow a heading line of the text
/// output (up to the next line that is not indented by exactly two spaces).
fn text_steps(text: &str, heading: &str) -> Vec<(u64, String)> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(heading));
    if lines.next().is_none() {
        return Vec::new();
    }
    lines
        .filter(|l| !l.starts_with("      "))
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let version = words.next()?.parse().ok()?;
            let name = words.next()?.trim_end_matches(':').to_owned();
            Some((version, name))
        })
        .collect()
}

// ----- fixtures -------------------------------------------------------------------------------

/// `NNN_create_<table>.up.sql` / `.down.sql` creating and dropping `table`.
fn create_table(dir: &Path, version: u32, table: &str) {
    common::write(
        dir,
        &format!("{version:03}_create_{table}.up.sql"),
        &format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, v VARCHAR(50));\n"),
    );
    common::write(
        dir,
        &format!("{version:03}_create_{table}.down.sql"),
        &format!("DROP TABLE {table};\n"),
    );
}

/// Asserts the database holds neither the ledger table nor any user table.
async fn assert_untouched(db: &TestDb, case: &str) {
    let mut conn = db.connect().await;
    assert!(
        !common::table_exists(&mut conn, LEDGER).await,
        "{:?} {case}: the ledger table was created",
        db.backend
    );
    assert_eq!(
        common::schema_dump(&mut conn).await,
        Vec::<String>::new(),
        "{:?} {case}: user tables were created",
        db.backend
    );
}

/// The ledger as (version, name, completed), or empty when the table does not exist.
async fn ledger_or_empty(conn: &mut Database) -> Vec<(i64, String, bool)> {
    if common::table_exists(conn, LEDGER).await {
        common::ledger(conn).await
    } else {
        Vec::new()
    }
}

fn completed(versions_names: &[(i64, &str)]) -> Vec<(i64, String, bool)> {
    versions_names
        .iter()
        .map(|(v, n)| (*v, (*n).to_owned(), true))
        .collect()
}

// ----- 1. concurrent runners ------------------------------------------------------------------

/// Eight `migrate up` processes started at once apply each migration exactly once.
async fn eight_concurrent_runners_apply_each_migration_once(db: TestDb) {
    let dir = db.migrations_dir("m");
    create_table(&dir, 1, "items");
    common::write(
        &dir,
        "002_seed_items.up.sql",
        "INSERT INTO items (id, v) VALUES (1, 'one');\n",
    );
    create_table(&dir, 3, "other");

    let children: Vec<_> = (0..8)
        .map(|_| spawn(Some(&db.url), &dir, &["--format", "json", "up"]))
        .collect();
    let mut applied = Vec::new();
    for (args, child) in children {
        let run = finish(args, child).await;
        run.expect(0);
        let report = report_of(&run.json(), "up", true);
        applied.extend(versions(&report, "applied"));
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        [1, 2, 3],
        "versions applied across the eight runners"
    );

    let mut conn = db.connect().await;
    assert_eq!(
        common::scalar_i64(&mut conn, "SELECT COUNT(*) FROM items").await,
        1
    );
    assert_eq!(
        common::ledger(&mut conn).await,
        completed(&[(1, "create_items"), (2, "seed_items"), (3, "create_other")])
    );
}

// ----- 2. bad input ---------------------------------------------------------------------------

/// Every kind of bad input exits 2, names the file, and writes nothing.
async fn bad_input_exits_2_and_writes_nothing(db: TestDb) {
    struct Case {
        what: &'static str,
        files: Vec<(&'static str, &'static str)>,
        /// Substrings of stderr; `{dir}` is replaced by the source directory.
        says: Vec<&'static str>,
    }
    let create_a = "CREATE TABLE a (id INTEGER PRIMARY KEY);\n";
    let cases = [
        Case {
            what: "a name without a version",
            files: vec![("001_a.up.sql", create_a), ("abc.up.sql", "SELECT 1;\n")],
            says: vec!["malformed migration file name", "abc.up.sql"],
        },
        Case {
            what: "a dash after the version",
            files: vec![("001_a.up.sql", create_a), ("002-x.up.sql", "SELECT 1;\n")],
            says: vec!["malformed migration file name", "002-x.up.sql"],
        },
        Case {
            what: "a dash after the only version",
            files: vec![("001-x.up.sql", create_a)],
            says: vec!["malformed migration file name", "001-x.up.sql"],
        },
        Case {
            what: "two files with one version",
            files: vec![
                ("001_a.up.sql", create_a),
                ("001_b.up.sql", "CREATE TABLE b (id INTEGER PRIMARY KEY);\n"),
            ],
            says: vec![
                "duplicate migration version 1",
                "001_a.up.sql",
                "001_b.up.sql",
            ],
        },
        Case {
            what: "a down file without its up file",
            files: vec![
                ("001_a.up.sql", create_a),
                ("002_b.down.sql", "DROP TABLE b;\n"),
            ],
            says: vec!["002_b.down.sql", "no 2_<name>.up.sql"],
        },
        Case {
            what: "an empty directory",
            files: vec![],
            says: vec!["no migrations found in {dir}"],
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let dir = db.migrations_dir(&format!("case{i}"));
        for (name, text) in &case.files {
            common::write(&dir, name, text);
        }
        let run = on(&db, &dir, &["up"]).await;
        run.expect(2);
        let dir_text = dir.display().to_string();
        let says: Vec<String> = case
            .says
            .iter()
            .map(|s| s.replace("{dir}", &dir_text))
            .collect();
        run.stderr_mentions(&says.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            run.stderr.starts_with("error: "),
            "{}: {}",
            case.what,
            run.stderr
        );
        assert_untouched(&db, case.what).await;
    }

    // The same failure as JSON: one document on stdout with the message and exit code.
    let dir = db.migrations_dir("json");
    common::write(&dir, "abc.up.sql", create_a);
    let run = on(&db, &dir, &["--format", "json", "up"]).await;
    run.expect(2);
    let doc = run.json();
    assert_eq!(doc["command"], "up", "{doc:#}");
    assert_eq!(doc["ok"], false, "{doc:#}");
    assert_eq!(doc["exit_code"], 2, "{doc:#}");
    let message = doc["error"].as_str().expect("error message");
    assert!(message.contains("abc.up.sql"), "{message}");
    assert!(doc.get("report").is_none(), "{doc:#}");
    assert_untouched(&db, "json").await;

    // A directory that does not exist.
    let missing = db.dir.path().join("no-such-dir");
    let run = on(&db, &missing, &["up"]).await;
    run.expect(2)
        .stderr_mentions(&[&missing.display().to_string(), "does not exist"]);
    assert_untouched(&db, "a missing directory").await;

    // `down N` with N above the number applied: refused, nothing reverted.
    let dir = db.migrations_dir("down");
    create_table(&dir, 1, "a");
    create_table(&dir, 2, "b");
    on(&db, &dir, &["up"]).await.expect(0);
    let mut conn = db.connect().await;
    let schema = common::schema_dump(&mut conn).await;
    let ledger = common::ledger(&mut conn).await;
    assert_eq!(ledger.len(), 2);
    on(&db, &dir, &["down", "3"])
        .await
        .expect(2)
        .stderr_mentions(&[
            "cannot revert 3 migrations: only 2 are applied",
            "nothing was reverted",
        ]);
    assert_eq!(
        common::schema_dump(&mut conn).await,
        schema,
        "down 3 changed the schema"
    );
    assert_eq!(
        common::ledger(&mut conn).await,
        ledger,
        "down 3 changed the ledger"
    );
}

/// Bad input that `up` can only see once it has the lock and the ledger (a target no migration
/// has; `COMMIT` inside a migration that runs in a transaction) also exits 2 and writes
/// nothing: not even the ledger table.
async fn bad_input_found_under_the_lock_writes_nothing(db: TestDb) {
    let mut written = Vec::new();
    let dir = db.migrations_dir("target");
    create_table(&dir, 1, "a");
    on(&db, &dir, &["up", "--target", "7"])
        .await
        .expect(2)
        .stderr_mentions(&["no migration has version 7"]);
    let mut conn = db.connect().await;
    assert_eq!(common::schema_dump(&mut conn).await, Vec::<String>::new());
    if common::table_exists(&mut conn, LEDGER).await {
        written.push("up --target 7 created the ledger table");
    }

    if db.dialect().transactional_ddl() {
        let db = common::fresh(db.backend).await.expect("the same server");
        let dir = db.migrations_dir("commit");
        common::write(
            &dir,
            "001_a.up.sql",
            "CREATE TABLE a (id INTEGER PRIMARY KEY);\nCOMMIT;\n",
        );
        on(&db, &dir, &["up"]).await.expect(2).stderr_mentions(&[
            "migration 1 (a) contains `COMMIT` at line 2",
            "nothing was applied",
        ]);
        let mut conn = db.connect().await;
        assert_eq!(common::schema_dump(&mut conn).await, Vec::<String>::new());
        if common::table_exists(&mut conn, LEDGER).await {
            written
                .push("up with a COMMIT inside a transactional migration created the ledger table");
        }
    }
    assert!(
        written.is_empty(),
        "{:?}: exit 2 (\"nothing was written\") but: {}",
        db.backend,
        written.join("; ")
    );
}

/// No URL, an unknown scheme, unreachable servers: exit 2 naming the setting. These need no
/// database server.
#[tokio::test]
async fn bad_database_urls_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    create_table(&dir, 1, "a");
    let sqlite = tmp.path().join("app.db");

    // No --database-url and no DATABASE_URL.
    migrate(None, &dir, &["up"])
        .await
        .expect(2)
        .stderr_mentions(&["no database URL", "--database-url", "DATABASE_URL"]);
    assert!(!sqlite.exists());
    // The same command with DATABASE_URL set works: the failure above was the missing URL.
    let (args, child) = {
        let mut c = command(None, &dir, &["up"]);
        c.env("DATABASE_URL", format!("sqlite://{}", sqlite.display()));
        ("up (DATABASE_URL set)".to_owned(), c.spawn().unwrap())
    };
    finish(args, child)
        .await
        .expect(0)
        .mentions(&["Applied 1 migration(s)", "1 create_a"]);

    // An unknown scheme.
    migrate(Some("foo://x"), &dir, &["up"])
        .await
        .expect(2)
        .stderr_mentions(&["unsupported database URL `foo://x`", "sqlite://"]);

    // Nothing listens on port 1.
    for url in [
        "postgres://postgres@127.0.0.1:1/x",
        "mysql://root@127.0.0.1:1/x",
    ] {
        migrate(Some(url), &dir, &["up"])
            .await
            .expect(2)
            .stderr_mentions(&[&format!("cannot connect to {url}"), "--database-url"]);
        let doc = migrate(Some(url), &dir, &["--format", "json", "status"])
            .await
            .expect(2)
            .json();
        assert_eq!(doc["exit_code"], 2, "{doc:#}");
        assert_eq!(doc["command"], "status", "{doc:#}");
    }
}

/// Malformed command lines exit 2 (clap's usage errors), before anything runs.
#[tokio::test]
async fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    create_table(&dir, 1, "a");
    let sqlite = tmp.path().join("app.db");
    let url = format!("sqlite://{}", sqlite.display());
    for (args, says) in [
        (&["down"][..], "required"),
        (&["down", "1", "--to", "0"][..], "cannot be used with"),
        (&["up", "--phase", "sideways"][..], "sideways"),
        (&["up", "--target", "x"][..], "--target"),
        (&["sideways"][..], "unrecognized subcommand"),
    ] {
        migrate(Some(&url), &dir, args)
            .await
            .expect(2)
            .stderr_mentions(&[says]);
    }
    assert!(!sqlite.exists(), "a usage error opened the database");
    // `--dry-run` goes with N and with --to.
    for args in [
        &["down", "1", "--dry-run"][..],
        &["down", "--to", "0", "--dry-run"][..],
    ] {
        migrate(Some(&url), &dir, &["up"]).await.expect(0);
        migrate(Some(&url), &dir, args)
            .await
            .expect(0)
            .mentions(&["Dry run: would revert 1 migration(s):", "1 create_a"]);
    }
}

// ----- 3. dry runs and JSON -------------------------------------------------------------------

/// Dry runs change nothing; `--format json` reports the same facts as the text output.
async fn dry_runs_change_nothing_and_json_matches_text(db: TestDb) {
    let dir = db.migrations_dir("m");
    common::write(
        &dir,
        "001_create_a.up.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v VARCHAR(50));\nINSERT INTO a (id, v) VALUES (1, 'x');\n",
    );
    common::write(&dir, "001_create_a.down.sql", "DROP TABLE a;\n");
    create_table(&dir, 2, "b");
    create_table(&dir, 3, "c");

    // up --dry-run, text: lists every migration and its statements; changes nothing.
    let text = on(&db, &dir, &["up", "--dry-run"]).await;
    text.expect(0).mentions(&[
        "Dry run: would apply 3 migration(s):",
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v VARCHAR(50));",
        "INSERT INTO a (id, v) VALUES (1, 'x');",
        "CREATE TABLE c (id INTEGER PRIMARY KEY, v VARCHAR(50));",
    ]);
    let planned_text = text_steps(&text.stdout, "Dry run: would apply");
    assert_eq!(
        planned_text,
        [
            (1, "create_a".into()),
            (2, "create_b".into()),
            (3, "create_c".into())
        ]
    );
    assert_untouched(&db, "up --dry-run").await;

    // up --dry-run, JSON: the same plan, with the statements.
    let doc = on(&db, &dir, &["--format", "json", "up", "--dry-run"]).await;
    let report = report_of(&doc.expect(0).json(), "up", true);
    assert_eq!(report["dry_run"], true);
    assert_eq!(steps(&report, "planned"), planned_text);
    assert_eq!(report["applied"], serde_json::json!([]));
    assert_eq!(
        report["planned"][0]["statements"],
        serde_json::json!([
            "CREATE TABLE a (id INTEGER PRIMARY KEY, v VARCHAR(50))",
            "INSERT INTO a (id, v) VALUES (1, 'x')"
        ]),
        "{report:#}"
    );
    assert_untouched(&db, "up --dry-run --format json").await;

    // up --target 2 as text here, and as JSON on a second fresh database: same facts.
    let twin = common::fresh(db.backend).await.expect("the same server");
    let text = on(&db, &dir, &["up", "--target", "2"]).await;
    text.expect(0).mentions(&[
        "Applied 2 migration(s):",
        "Not applied now (1):",
        "3 create_c: above the target 2",
    ]);
    let doc = on(&twin, &dir, &["--format", "json", "up", "--target", "2"]).await;
    let report = report_of(&doc.expect(0).json(), "up", true);
    assert_eq!(report["dry_run"], false);
    assert_eq!(
        steps(&report, "applied"),
        text_steps(&text.stdout, "Applied")
    );
    assert_eq!(versions(&report, "applied"), [1, 2]);
    assert_eq!(
        steps(&report, "held_back"),
        text_steps(&text.stdout, "Not applied now")
    );
    assert_eq!(versions(&report, "held_back"), [3]);
    assert_eq!(report["held_back"][0]["reason"], "above the target 2");
    let mut conn = db.connect().await;
    let mut twin_conn = twin.connect().await;
    let expected = completed(&[(1, "create_a"), (2, "create_b")]);
    assert_eq!(common::ledger(&mut conn).await, expected);
    assert_eq!(common::ledger(&mut twin_conn).await, expected);

    // status: 2 applied, 1 pending, in both formats.
    let text = on(&db, &dir, &["status"]).await;
    text.expect(0).mentions(&["2 applied, 1 pending"]);
    let states_text: Vec<(u64, String)> = text
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() < 6 {
                return None; // the "N applied, M pending" summary
            }
            Some((w[0].parse().ok()?, w[3].to_owned()))
        })
        .collect();
    assert_eq!(
        states_text,
        [
            (1, "applied".into()),
            (2, "applied".into()),
            (3, "pending".into())
        ],
        "{}",
        text.stdout
    );
    let report = report_of(
        &on(&db, &dir, &["--format", "json", "status"])
            .await
            .expect(0)
            .json(),
        "status",
        true,
    );
    let states_json: Vec<(u64, String)> = report["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| {
            (
                m["version"].as_u64().unwrap(),
                m["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states_json, states_text);
    assert!(
        report["migrations"][0]["applied_at"].is_string(),
        "{report:#}"
    );
    assert!(
        report["migrations"][2]["applied_at"].is_null(),
        "{report:#}"
    );

    // verify: OK in both formats; then, with a file changed, the same problem in both.
    on(&db, &dir, &["verify"])
        .await
        .expect(0)
        .mentions(&["verify: OK (2 applied migration(s) checked)"]);
    let report = report_of(
        &on(&db, &dir, &["--format", "json", "verify"])
            .await
            .expect(0)
            .json(),
        "verify",
        true,
    );
    assert_eq!(report["checked"], 2);
    assert_eq!(report["problems"], serde_json::json!([]));
    let original = std::fs::read_to_string(dir.join("002_create_b.up.sql")).unwrap();
    common::write(
        &dir,
        "002_create_b.up.sql",
        &format!("{original}-- edited\n"),
    );
    on(&db, &dir, &["verify"]).await.expect(1).mentions(&[
        "verify: 1 problem(s):",
        "migration 2 (create_b): file changed since it was applied (checksum mismatch)",
    ]);
    let doc = on(&db, &dir, &["--format", "json", "verify"]).await;
    let report = report_of(&doc.expect(1).json(), "verify", false);
    assert_eq!(
        report["problems"],
        serde_json::json!([{"kind": "checksum-mismatch", "version": 2, "name": "create_b"}])
    );
    common::write(&dir, "002_create_b.up.sql", &original);

    // down 1 --dry-run: lists 2 and its down statement; changes nothing.
    let schema = common::schema_dump(&mut conn).await;
    let text = on(&db, &dir, &["down", "1", "--dry-run"]).await;
    text.expect(0)
        .mentions(&["Dry run: would revert 1 migration(s):", "DROP TABLE b;"]);
    assert_eq!(
        text_steps(&text.stdout, "Dry run: would revert"),
        [(2, "create_b".into())]
    );
    let report = report_of(
        &on(&db, &dir, &["--format", "json", "down", "1", "--dry-run"])
            .await
            .expect(0)
            .json(),
        "down",
        true,
    );
    assert_eq!(steps(&report, "planned"), [(2, "create_b".into())]);
    assert_eq!(
        report["planned"][0]["statements"],
        serde_json::json!(["DROP TABLE b"])
    );
    assert_eq!(report["reverted"], serde_json::json!([]));
    assert_eq!(
        common::schema_dump(&mut conn).await,
        schema,
        "down --dry-run changed the schema"
    );
    assert_eq!(
        common::ledger(&mut conn).await,
        expected,
        "down --dry-run changed the ledger"
    );
    assert!(common::table_exists(&mut conn, "b").await);

    // down 1 for real: text here, JSON on the twin.
    let text = on(&db, &dir, &["down", "1"]).await;
    text.expect(0).mentions(&["Reverted 1 migration(s):"]);
    let report = report_of(
        &on(&twin, &dir, &["--format", "json", "down", "1"])
            .await
            .expect(0)
            .json(),
        "down",
        true,
    );
    assert_eq!(
        steps(&report, "reverted"),
        text_steps(&text.stdout, "Reverted")
    );
    assert_eq!(versions(&report, "reverted"), [2]);
    for c in [&mut conn, &mut twin_conn] {
        assert!(!common::table_exists(c, "b").await);
        assert_eq!(common::ledger(c).await, completed(&[(1, "create_a")]));
    }

    // lint: a clean directory in both formats, then one finding in both.
    on(&db, &dir, &["lint"])
        .await
        .expect(0)
        .mentions(&["lint: 0 finding(s) in 3 expand migration(s) (0 contract"]);
    let report = report_of(
        &on(&db, &dir, &["--format", "json", "lint"])
            .await
            .expect(0)
            .json(),
        "lint",
        true,
    );
    assert_eq!(report["checked"], 3);
    assert_eq!(report["findings"], serde_json::json!([]));
    common::write(&dir, "004_drop_b.up.sql", "DROP TABLE b;\n");
    let text = on(&db, &dir, &["lint"]).await;
    text.expect(1).mentions(&[
        "004_drop_b.up.sql:1: drops a table [drop-table]",
        "lint: 1 finding(s) in 4 expand",
    ]);
    let report = report_of(
        &on(&db, &dir, &["--format", "json", "lint"])
            .await
            .expect(1)
            .json(),
        "lint",
        false,
    );
    assert_eq!(
        report["findings"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert_eq!(report["findings"][0]["rule"], "drop-table");
    assert_eq!(report["findings"][0]["version"], 4);
    assert_eq!(report["findings"][0]["line"], 1);
}

// ----- 4. an applied migration's file edited --------------------------------------------------

/// An edited applied migration blocks `verify` and `up` until `repair` records it.
async fn edited_applied_migration_blocks_until_repaired(db: TestDb) {
    let dir = db.migrations_dir("m");
    create_table(&dir, 1, "a");
    on(&db, &dir, &["up"]).await.expect(0);
    create_table(&dir, 2, "b");
    let up_file = dir.join("001_create_a.up.sql");
    let original = std::fs::read_to_string(&up_file).unwrap();
    common::write(
        &dir,
        "001_create_a.up.sql",
        &format!("-- reformatted\n{original}"),
    );

    on(&db, &dir, &["verify"]).await.expect(1).mentions(&[
        "migration 1 (create_a): file changed since it was applied (checksum mismatch)",
    ]);

    let mut conn = db.connect().await;
    let before = common::ledger(&mut conn).await;
    on(&db, &dir, &["up"]).await.expect(1).stderr_mentions(&[
        "migration 1 (create_a) was applied with checksum",
        "migrate repair",
    ]);
    assert!(
        !common::table_exists(&mut conn, "b").await,
        "up ran the next migration"
    );
    assert_eq!(common::ledger(&mut conn).await, before);

    on(&db, &dir, &["repair", "--dry-run"])
        .await
        .expect(0)
        .mentions(&[
            "repair: would take 1 action(s):",
            "record the new checksum of migration 1 (create_a)",
        ]);
    // Still drifted: the dry run recorded nothing.
    on(&db, &dir, &["verify"]).await.expect(1);
    on(&db, &dir, &["up"]).await.expect(1);
    assert!(!common::table_exists(&mut conn, "b").await);

    on(&db, &dir, &["repair"]).await.expect(0).mentions(&[
        "repair: took 1 action(s):",
        "record the new checksum of migration 1 (create_a)",
    ]);
    on(&db, &dir, &["verify"])
        .await
        .expect(0)
        .mentions(&["verify: OK (1 applied migration(s) checked)"]);
    on(&db, &dir, &["repair"])
        .await
        .expect(0)
        .mentions(&["repair: nothing to repair."]);
    on(&db, &dir, &["up"])
        .await
        .expect(0)
        .mentions(&["Applied 1 migration(s):", "2 create_b"]);
    assert!(common::table_exists(&mut conn, "b").await);
    assert_eq!(
        common::ledger(&mut conn).await,
        completed(&[(1, "create_a"), (2, "create_b")])
    );
}

// ----- 5. database ahead of the binary --------------------------------------------------------

/// A database migrated by a newer release: `up` warns and changes nothing, `verify` fails,
/// `status` lists the unknown version.
async fn database_ahead_of_the_binary(db: TestDb) {
    let newer = db.migrations_dir("newer");
    let older = db.migrations_dir("older");
    for v in 1..=6 {
        create_table(&newer, v, &format!("t{v}"));
        if v <= 5 {
            create_table(&older, v, &format!("t{v}"));
        }
    }
    on(&db, &newer, &["up"]).await.expect(0);
    let mut conn = db.connect().await;
    let ledger = common::ledger(&mut conn).await;
    assert_eq!(ledger.len(), 6);
    let schema = common::schema_dump(&mut conn).await;
    let status_before = on(&db, &newer, &["--format", "json", "status"])
        .await
        .expect(0)
        .json();

    let run = on(&db, &older, &["up"]).await;
    run.expect(0)
        .mentions(&["the database is ahead of this binary", "6 (create_t6)"]);
    assert!(run.stdout.contains("Nothing to apply"), "{}", run.stdout);
    let doc = on(&db, &older, &["--format", "json", "up"])
        .await
        .expect(0)
        .json();
    let report = report_of(&doc, "up", true);
    assert_eq!(report["applied"], serde_json::json!([]));
    assert_eq!(
        report["unknown_applied"],
        serde_json::json!([{"version": 6, "name": "create_t6", "ahead": true}])
    );
    assert_eq!(common::ledger(&mut conn).await, ledger);
    assert_eq!(common::schema_dump(&mut conn).await, schema);
    let status_after = on(&db, &newer, &["--format", "json", "status"])
        .await
        .expect(0)
        .json();
    assert_eq!(
        status_after, status_before,
        "up with the older files touched the ledger"
    );

    on(&db, &older, &["verify"]).await.expect(1).mentions(&[
        "migration 6 (create_t6): applied by a newer release; this binary does not know it",
    ]);
    let report = report_of(
        &on(&db, &older, &["--format", "json", "verify"])
            .await
            .expect(1)
            .json(),
        "verify",
        false,
    );
    assert_eq!(
        report["problems"],
        serde_json::json!([{"kind": "database-ahead", "version": 6, "name": "create_t6"}])
    );

    on(&db, &older, &["status"]).await.expect(0).mentions(&[
        "5 applied, 0 pending",
        "warning: 6 create_t6 is applied but unknown to this binary",
    ]);
    let report = report_of(
        &on(&db, &older, &["--format", "json", "status"])
            .await
            .expect(0)
            .json(),
        "status",
        true,
    );
    assert_eq!(
        report["unknown_applied"],
        serde_json::json!([{"version": 6, "name": "create_t6", "ahead": true}])
    );
    assert_eq!(report["migrations"].as_array().map(Vec::len), Some(5));
}

// ----- 6. a runner killed mid-migration (PostgreSQL) ------------------------------------------

/// A runner killed with SIGKILL inside a long migration leaves no table, no ledger row and no
/// advisory lock; the next run applies the migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_runner_leaves_no_trace() {
    let Some(db) = common::fresh(Backend::Postgres).await else {
        return;
    };
    let mut conn = db.connect().await;
    conn.conn()
        .execute("CREATE TABLE test_sleep (secs INT); INSERT INTO test_sleep VALUES (30);")
        .await
        .unwrap();
    let dir = db.migrations_dir("m");
    common::write(
        &dir,
        "001_killed.up.sql",
        "CREATE TABLE killed (id INT);\nSELECT pg_sleep(COALESCE((SELECT secs FROM test_sleep), 0));\n",
    );

    let (args, mut child) = spawn(Some(&db.url), &dir, &["up"]);
    wait_for_rows(
        &mut conn,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%pg_sleep(%'",
        Duration::from_secs(20),
        "the runner sleeps in pg_sleep",
    )
    .await;
    child.start_kill().unwrap();
    let killed = finish(args, child).await;
    assert_eq!(
        killed.code, None,
        "the runner was not killed by a signal: {killed:?}"
    );
    conn.conn().execute("DELETE FROM test_sleep").await.unwrap();

    let advisory = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' \
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    // The server should drop the dead session (and its lock) within ~10 s. If it does not,
    // keep waiting (bounded) only to say in the failure how long the lock outlived the runner,
    // and check the rest first.
    let started = Instant::now();
    let mut released = None;
    while started.elapsed() < Duration::from_secs(45) {
        if common::scalar_i64(&mut conn, advisory).await == 0 {
            released = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let released = released.expect("the killed runner's advisory lock was never released");
    assert!(!common::table_exists(&mut conn, "killed").await);
    assert_eq!(ledger_or_empty(&mut conn).await, Vec::new());

    on(&db, &dir, &["up"])
        .await
        .expect(0)
        .mentions(&["Applied 1 migration(s):", "1 killed"]);
    assert!(common::table_exists(&mut conn, "killed").await);
    assert_eq!(common::ledger(&mut conn).await, completed(&[(1, "killed")]));

    assert!(
        released <= Duration::from_secs(10),
        "the killed runner's advisory lock outlived it by {released:?}: the server only noticed \
         the dead connection when the migration's pg_sleep(30) ended, so every other runner \
         waited that long"
    );
}

// ----- 7. many runners behind a slow migration, and the lock timeout --------------------------

/// A code migration that sleeps 3 s, then creates `slow` (SQLite has no SQL sleep function).
struct SlowCreate {
    calls: Arc<AtomicUsize>,
    started: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl CodeMigration for SlowCreate {
    async fn up(&self, db: &mut DbConn<'_>) -> Result<(), BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        tokio::time::sleep(Duration::from_secs(3)).await;
        db.execute("CREATE TABLE slow (id INTEGER PRIMARY KEY)")
            .await?;
        Ok(())
    }
}

/// Sixteen runners started while one migration sleeps ~3 s all succeed and apply each
/// migration once; a runner with a 1 s lock timeout gives up with a lock timeout error.
async fn sixteen_runners_wait_for_a_slow_migration(db: TestDb) {
    if db.backend == Backend::Sqlite {
        return sixteen_tasks_wait_for_a_slow_code_migration(db).await;
    }
    let dir = db.migrations_dir("m");
    create_table(&dir, 1, "a");
    let (sleep, sleeping) = match db.backend {
        Backend::Postgres => (
            "SELECT pg_sleep(3);\n",
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%pg_sleep(3)%'",
        ),
        _ => (
            "SELECT SLEEP(3);\n",
            "SELECT COUNT(*) FROM information_schema.processlist \
             WHERE db = DATABASE() AND info LIKE 'SELECT SLEEP(3)%'",
        ),
    };
    common::write(&dir, "002_sleep.up.sql", sleep);
    create_table(&dir, 3, "c");

    let children: Vec<_> = (0..16)
        .map(|_| spawn(Some(&db.url), &dir, &["--format", "json", "up"]))
        .collect();
    let mut conn = db.connect().await;
    wait_for_rows(
        &mut conn,
        sleeping,
        Duration::from_secs(20),
        "a runner sleeps in migration 2",
    )
    .await;

    // While the sleeping runner holds the lock, a runner that waits at most 1 s gives up.
    let started = Instant::now();
    let impatient = on(&db, &dir, &["--lock-timeout", "1", "up"]).await;
    let waited = started.elapsed();
    impatient
        .expect(1)
        .stderr_mentions(&["migration lock", "lock timeout"]);
    assert!(
        common::scalar_i64(&mut conn, sleeping).await > 0,
        "the slow migration finished before the impatient runner gave up ({waited:?}); the test proved nothing"
    );

    let mut applied = Vec::new();
    for (args, child) in children {
        let run = finish(args, child).await;
        run.expect(0);
        applied.extend(versions(&report_of(&run.json(), "up", true), "applied"));
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        [1, 2, 3],
        "versions applied across the sixteen runners"
    );
    assert_eq!(
        common::ledger(&mut conn).await,
        completed(&[(1, "create_a"), (2, "sleep"), (3, "create_c")])
    );
    assert!(common::table_exists(&mut conn, "c").await);
}

/// SQLite, at library level: sixteen tasks, each with its own connection, run a manager whose
/// code migration sleeps 3 s; a manager with a 1 s lock timeout fails with `LockTimeout`.
async fn sixteen_tasks_wait_for_a_slow_code_migration(db: TestDb) {
    let dir = db.migrations_dir("m");
    create_table(&dir, 1, "a");
    create_table(&dir, 3, "c");
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let manager = MigrationManager::new(&dir)
        .unwrap()
        .register_migration(
            2,
            "slow",
            SlowCreate {
                calls: Arc::clone(&calls),
                started: Arc::clone(&started),
            },
        )
        .unwrap();

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let manager = manager.clone();
            let url = db.url.clone();
            tokio::spawn(async move {
                let mut conn = Database::connect(&url).await?;
                manager.up(&mut conn, &UpOptions::default()).await
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(20), started.notified())
        .await
        .expect("the slow migration started");

    let mut conn = db.connect().await;
    let begun = Instant::now();
    let impatient = manager
        .clone()
        .lock_timeout(Duration::from_secs(1))
        .up(&mut conn, &UpOptions::default())
        .await;
    match impatient {
        Err(Error::LockTimeout { waited }) => {
            assert!(
                waited >= Duration::from_millis(900),
                "gave up after {waited:?}"
            )
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    assert!(
        begun.elapsed() < Duration::from_millis(2500),
        "the impatient runner waited {:?}",
        begun.elapsed()
    );
    drop(conn);

    let mut applied = Vec::new();
    for task in tasks {
        let report = tokio::time::timeout(PROCESS_TIMEOUT, task)
            .await
            .expect("a runner finished")
            .expect("a runner did not panic")
            .expect("a runner succeeded");
        applied.extend(report.applied.iter().map(|s| s.version));
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        [1, 2, 3],
        "versions applied across the sixteen tasks"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the code migration ran more than once"
    );
    let mut conn = db.connect().await;
    assert!(common::table_exists(&mut conn, "slow").await);
    assert_eq!(
        common::ledger(&mut conn).await,
        completed(&[(1, "create_a"), (2, "slow"), (3, "create_c")])
    );
}

// ----- 8. a migration failing half way --------------------------------------------------------

/// MariaDB: a half-applied migration is recorded as failed and blocks `up` until repaired.
/// PostgreSQL and SQLite: it is rolled back and leaves no trace.
async fn migration_failing_half_way(db: TestDb) {
    let dir = db.migrations_dir("m");
    create_table(&dir, 1, "base");
    let half = "CREATE TABLE half (id INTEGER PRIMARY KEY);\nCREATE TABLEX broken (id INTEGER);\n";
    common::write(&dir, "002_half.up.sql", half);
    let path = dir.join("002_half.up.sql").display().to_string();

    let run = on(&db, &dir, &["up"]).await;
    run.expect(1).stderr_mentions(&[
        "while applying migration 2 (half)",
        &path,
        "at statement 2 (line 2: `CREATE TABLEX broken (id INTEGER)`)",
    ]);
    let mut conn = db.connect().await;
    assert!(
        common::table_exists(&mut conn, "base").await,
        "migration 1 was undone"
    );
    let fixed = "CREATE TABLE half (id INTEGER PRIMARY KEY);\nCREATE TABLE whole (id INTEGER);\n";

    if db.backend == Backend::MySql {
        run.stderr_mentions(&["recorded as failed", "migrate repair"]);
        assert!(
            common::table_exists(&mut conn, "half").await,
            "MariaDB DDL is not transactional"
        );
        assert_eq!(
            common::ledger(&mut conn).await,
            vec![
                (1, "create_base".to_owned(), true),
                (2, "half".to_owned(), false)
            ]
        );
        on(&db, &dir, &["up"])
            .await
            .expect(1)
            .stderr_mentions(&["migration 2 (half) failed part-way", "migrate repair"]);
        on(&db, &dir, &["status"])
            .await
            .expect(0)
            .mentions(&["FAILED"]);
        on(&db, &dir, &["verify"])
            .await
            .expect(1)
            .mentions(&["migration 2 (half): recorded as failed"]);

        conn.conn().execute("DROP TABLE half").await.unwrap();
        common::write(&dir, "002_half.up.sql", fixed);
        on(&db, &dir, &["repair"]).await.expect(0).mentions(&[
            "repair: took 1 action(s):",
            "remove the failed record of migration 2 (half)",
        ]);
        assert_eq!(
            common::ledger(&mut conn).await,
            completed(&[(1, "create_base")])
        );
    } else {
        run.stderr_mentions(&["it was rolled back"]);
        assert!(
            !common::table_exists(&mut conn, "half").await,
            "the failed migration left its table"
        );
        assert_eq!(
            common::ledger(&mut conn).await,
            completed(&[(1, "create_base")])
        );
        common::write(&dir, "002_half.up.sql", fixed);
    }

    on(&db, &dir, &["up"])
        .await
        .expect(0)
        .mentions(&["Applied 1 migration(s):", "2 half"]);
    assert!(common::table_exists(&mut conn, "half").await);
    assert!(common::table_exists(&mut conn, "whole").await);
    assert_eq!(
        common::ledger(&mut conn).await,
        completed(&[(1, "create_base"), (2, "half")])
    );
    on(&db, &dir, &["verify"]).await.expect(0);
}

// ----- 9. new -------------------------------------------------------------------------------

/// The files `.up.sql` / `.down.sql` of a directory, sorted.
fn sql_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `new NAME` creates a file pair with the directory's version style; the files apply.
#[tokio::test]
async fn new_creates_a_migration_pair() {
    let tmp = tempfile::tempdir().unwrap();

    // An empty directory: a UTC timestamp version.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = migrate(None, &empty, &["new", "add_users"]).await;
    run.expect(0);
    let files = sql_files(&empty);
    assert_eq!(files.len(), 2, "{files:?}");
    let version = &files[0][..14];
    assert!(version.bytes().all(|b| b.is_ascii_digit()), "{files:?}");
    assert!(version.starts_with("20"), "not a timestamp: {version}");
    let month: u32 = version[4..6].parse().unwrap();
    let day: u32 = version[6..8].parse().unwrap();
    assert!(
        (1..=12).contains(&month) && (1..=31).contains(&day),
        "{version}"
    );
    assert_eq!(
        files,
        [
            format!("{version}_add_users.down.sql"),
            format!("{version}_add_users.up.sql")
        ]
    );
    run.mentions(&[&format!("Created {}", empty.join(&files[1]).display())]);

    // After 001: 002, same width.
    let seq = tmp.path().join("seq");
    create_table(&seq, 1, "a");
    let doc = migrate(None, &seq, &["--format", "json", "new", "add_b"])
        .await
        .expect(0)
        .json();
    let report = report_of(&doc, "new", true);
    assert_eq!(
        report["up"],
        seq.join("002_add_b.up.sql").display().to_string()
    );
    assert_eq!(
        report["down"],
        seq.join("002_add_b.down.sql").display().to_string()
    );
    assert_eq!(
        sql_files(&seq),
        [
            "001_create_a.down.sql",
            "001_create_a.up.sql",
            "002_add_b.down.sql",
            "002_add_b.up.sql"
        ]
    );

    // An invalid name: exit 2, no file.
    migrate(None, &seq, &["new", "bad name"])
        .await
        .expect(2)
        .stderr_mentions(&["invalid migration name `bad name`"]);
    assert_eq!(sql_files(&seq).len(), 4);

    // The created files are accepted by `up` (and `lint`), and reverted by `down`.
    for (dir, expected) in [
        (&empty, vec![version.parse::<u64>().unwrap()]),
        (&seq, vec![1, 2]),
    ] {
        let url = format!("sqlite://{}", dir.join("app.db").display());
        let doc = migrate(Some(&url), dir, &["--format", "json", "up"])
            .await
            .expect(0)
            .json();
        assert_eq!(versions(&report_of(&doc, "up", true), "applied"), expected);
        migrate(Some(&url), dir, &["lint"]).await.expect(0);
        migrate(Some(&url), dir, &["rollback"]).await.expect(0);
    }
}

// ----- 10. lint and phases ------------------------------------------------------------------

/// The lint flags a DROP COLUMN in an expand migration, not in a contract one; `up --phase
/// expand` refuses the flagged migration; expand then contract applies both steps.
async fn lint_and_expand_contract_phases(db: TestDb) {
    let drop_v = "-- v is no longer read\nALTER TABLE t DROP COLUMN v;\n";
    let flagged = db.migrations_dir("flagged");
    create_table(&flagged, 1, "t");
    common::write(&flagged, "002_drop_v.up.sql", drop_v);
    let contract = db.migrations_dir("contract");
    create_table(&contract, 1, "t");
    common::write(
        &contract,
        "002_drop_v.up.sql",
        &format!("-- engine-ops: contract\n{drop_v}"),
    );
    let flagged_file = flagged.join("002_drop_v.up.sql").display().to_string();

    for url in [None, Some(db.url.as_str())] {
        let run = migrate(url, &flagged, &["lint"]).await;
        run.expect(1).mentions(&[
            &format!(
                "{flagged_file}:2: drops a column [drop-column] `ALTER TABLE t DROP COLUMN v`"
            ),
            "lint: 1 finding(s) in 2 expand migration(s) (0 contract",
        ]);
        let report = report_of(
            &migrate(url, &flagged, &["--format", "json", "lint"])
                .await
                .expect(1)
                .json(),
            "lint",
            false,
        );
        assert_eq!(
            report["findings"].as_array().map(Vec::len),
            Some(1),
            "{report:#}"
        );
        let finding = &report["findings"][0];
        assert_eq!(finding["rule"], "drop-column");
        assert_eq!(finding["version"], 2);
        assert_eq!(finding["line"], 2);
        assert_eq!(finding["file"], flagged_file.as_str());

        migrate(url, &contract, &["lint"])
            .await
            .expect(0)
            .mentions(&["lint: 0 finding(s) in 1 expand migration(s) (1 contract"]);
        let report = report_of(
            &migrate(url, &contract, &["--format", "json", "lint"])
                .await
                .expect(0)
                .json(),
            "lint",
            true,
        );
        assert_eq!(report["findings"], serde_json::json!([]));
        assert_eq!(report["contract"], 1);
    }

    // up --phase expand refuses the flagged migration before anything runs.
    on(&db, &flagged, &["up", "--phase", "expand"])
        .await
        .expect(1)
        .stderr_mentions(&[&flagged_file, "drop-column", "nothing was applied"]);
    let mut conn = db.connect().await;
    assert!(
        !common::table_exists(&mut conn, "t").await,
        "migration 1 was applied"
    );
    assert_eq!(ledger_or_empty(&mut conn).await, Vec::new());

    // Expand before the deploy, contract after it.
    let run = on(&db, &contract, &["up", "--phase", "expand"]).await;
    run.expect(0).mentions(&[
        "Applied 1 migration(s):",
        "1 create_t [expand]",
        "2 drop_v: at or after contract migration 2",
    ]);
    assert_eq!(
        common::ledger(&mut conn).await,
        completed(&[(1, "create_t")])
    );
    let has_v = |schema: &[String]| schema.iter().any(|c| c.starts_with("t.v "));
    assert!(has_v(&common::schema_dump(&mut conn).await));
    on(&db, &contract, &["up", "--phase", "contract"])
        .await
        .expect(0)
        .mentions(&["Applied 1 migration(s):", "2 drop_v [contract]"]);
    assert_eq!(
        common::ledger(&mut conn).await,
        completed(&[(1, "create_t"), (2, "drop_v")])
    );
    assert!(!has_v(&common::schema_dump(&mut conn).await));
}

on_every_backend!(
    eight_concurrent_runners_apply_each_migration_once,
    bad_input_exits_2_and_writes_nothing,
    bad_input_found_under_the_lock_writes_nothing,
    dry_runs_change_nothing_and_json_matches_text,
    edited_applied_migration_blocks_until_repaired,
    database_ahead_of_the_binary,
    sixteen_runners_wait_for_a_slow_migration,
    migration_failing_half_way,
    lint_and_expand_contract_phases,
);

/// A mistyped SQLite path is reported, never answered from a new empty database: only `up`
/// creates the file, and a dry run plans against an empty database without creating it.
#[tokio::test]
async fn missing_sqlite_file_is_only_created_by_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    create_table(&dir, 1, "a");
    let file = tmp.path().join("typo.db");
    let url = format!("sqlite://{}", file.display());

    for args in [
        &["status"][..],
        &["verify"],
        &["rollback"],
        &["down", "1"],
        &["repair"],
        &["adopt"],
    ] {
        migrate(Some(&url), &dir, args)
            .await
            .expect(2)
            .stderr_mentions(&[
                "no SQLite database at",
                "typo.db",
                "`migrate up` creates the file",
            ]);
        assert!(
            !file.exists(),
            "`migrate {}` created the file",
            args.join(" ")
        );
    }

    migrate(Some(&url), &dir, &["up", "--dry-run"])
        .await
        .expect(0)
        .mentions(&["Dry run: would apply 1 migration(s):", "1 create_a"]);
    assert!(!file.exists(), "a dry run created the file");

    migrate(Some(&url), &dir, &["up"]).await.expect(0);
    assert!(file.exists());
    migrate(Some(&url), &dir, &["status"])
        .await
        .expect(0)
        .mentions(&["1 applied, 0 pending"]);
}
