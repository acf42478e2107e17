//! `PoolCheck` against real databases: a SQLite file, and the PostgreSQL and MariaDB servers
//! named by `ENGINE_OPS_PG_URL` and `ENGINE_OPS_MYSQL_URL` (skipped with a notice when
//! unset; CI sets both). Each passes against a live database and fails against a dead one.
#![allow(clippy::print_stderr)]

mod common;

use common::{axum_server, get, ms};
use engine_ops_probes::checks::PoolCheck;
use engine_ops_probes::{Check, Detail, Lifecycle, Probe, Probes, Status};
use http::StatusCode;
use sqlx::{Database, Pool};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

fn probes_for<DB: Database>(pool: Pool<DB>, timeout: Duration) -> Probes {
    let lifecycle = Lifecycle::new();
    lifecycle.mark_started();
    Probes::builder(lifecycle)
        .check(Check::new("db", PoolCheck::new(pool)).timeout(timeout))
        .detail(Detail::Always)
        .build()
        .unwrap()
}

/// A live database: readiness passes over HTTP.
async fn assert_passes<DB: Database>(pool: Pool<DB>) {
    let addr = axum_server(probes_for(pool, Duration::from_secs(5)).router()).await;
    let r = get(addr, "/health/ready").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["checks"]["db"][0]["status"], "pass");
}

/// A dead database: readiness fails, with a message naming the database, within the
/// check's timeout.
async fn assert_fails<DB: Database>(pool: Pool<DB>, expect: &str) {
    let timeout = ms(1500);
    let probes = probes_for(pool, timeout);
    let start = Instant::now();
    let report = probes.report(Probe::Readiness).await;
    assert!(start.elapsed() < timeout + ms(300), "{:?}", start.elapsed());
    assert_eq!(report.status, Status::Fail);
    let output = report.check("db").unwrap().output.clone().unwrap();
    assert!(output.contains(expect), "{output}");
}

/// A server that accepts connections and never answers: a hung database.
async fn black_hole() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

/// A port nothing listens on.
async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn sqlite_file() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("app.db"))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (id INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    assert_passes(pool.clone()).await;

    // A closed pool fails.
    pool.close().await;
    assert_fails(pool, "the SQLite pool is closed").await;

    // A database file that cannot be opened fails.
    let missing = SqliteConnectOptions::new()
        .filename(dir.path().join("no-such-dir").join("app.db"))
        .create_if_missing(false);
    let pool = SqlitePoolOptions::new().connect_lazy_with(missing);
    assert_fails(pool, "cannot connect to SQLite").await;
}

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped: set {var} to run this test against a real server");
            None
        }
    }
}

#[tokio::test]
async fn postgres() {
    use sqlx::postgres::PgPoolOptions;
    let Some(url) = server_url("ENGINE_OPS_PG_URL") else {
        return;
    };
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("ENGINE_OPS_PG_URL={url} is unreachable: {e}"));
    assert_passes(pool).await;

    let refused = format!("postgres://postgres@127.0.0.1:{}/test", dead_port().await);
    let pool = PgPoolOptions::new().connect_lazy(&refused).unwrap();
    assert_fails(pool, "cannot connect to PostgreSQL").await;

    let hung = format!("postgres://postgres@{}/test", black_hole().await);
    let pool = PgPoolOptions::new().connect_lazy(&hung).unwrap();
    assert_fails(pool, "timed out after 1.5s").await;
}

#[tokio::test]
async fn mariadb() {
    use sqlx::mysql::MySqlPoolOptions;
    let Some(url) = server_url("ENGINE_OPS_MYSQL_URL") else {
        return;
    };
    let pool = MySqlPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("ENGINE_OPS_MYSQL_URL={url} is unreachable: {e}"));
    assert_passes(pool).await;

    let refused = format!("mysql://root@127.0.0.1:{}/test", dead_port().await);
    let pool = MySqlPoolOptions::new().connect_lazy(&refused).unwrap();
    assert_fails(pool, "cannot connect to MySQL").await;

    let hung = format!("mysql://root@{}/test", black_hole().await);
    let pool = MySqlPoolOptions::new().connect_lazy(&hung).unwrap();
    assert_fails(pool, "timed out after 1.5s").await;
}
