//! SQLite specifics: the migration lock is an OS file lock on `<database>.migrate-lock`.
//!
//! SQLite has no session locks, and holding its own write lock across several migrations would
//! block the application for the whole run. An exclusive `flock` on a file beside the database
//! serialises runners on this machine (the only place a SQLite file can be shared safely); the
//! kernel releases it when the process dies, so a killed runner never leaves a stale lock. An
//! in-memory database needs no lock.
//!
//! The ledger is read as one JSON document (`json_group_array`) rather than row by row: sqlx
//! hands every SQLite row from its worker thread to the caller separately, which made reading
//! 10,000 rows take ~150 ms; one row of JSON takes a few milliseconds.

use super::LedgerRow;
use crate::error::Error;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file for a database, or `None` for an in-memory one.
pub(super) fn lock_path(options: &sqlx::sqlite::SqliteConnectOptions) -> Option<PathBuf> {
    let file = options.get_filename();
    let name = file.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file::memory:") {
        return None;
    }
    let mut path = file.as_os_str().to_owned();
    path.push(".migrate-lock");
    Some(PathBuf::from(path))
}

/// Takes the lock, polling until `timeout`; `Ok(None)` when it timed out.
pub(super) async fn lock_file(path: &Path, timeout: Duration) -> Result<Option<File>, Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Every ledger row, by version, in one round trip.
pub(super) async fn read_ledger(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
) -> Result<Vec<LedgerRow>, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT json_group_array(json_array(version, name, checksum, applied_at, execution_ms, \
         completed, installed_rank, failure)) FROM (SELECT * FROM {table} ORDER BY version)"
    ));
    let json: String = sqlx::query_scalar(sql).fetch_one(&mut *conn).await?;
    type Row = (u64, String, String, String, i64, i64, i64, Option<String>);
    let rows: Vec<Row> =
        serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let mut rows: Vec<LedgerRow> = rows
        .into_iter()
        .map(
            |(version, name, checksum, applied_at, ms, completed, rank, failure)| LedgerRow {
                version,
                name,
                checksum,
                applied_at: crate::report::parse_sqlite_timestamp(&applied_at),
                execution_ms: ms.max(0) as u64,
                completed: completed != 0,
                installed_rank: rank,
                failure,
            },
        )
        .collect();
    rows.sort_by_key(|r| r.version);
    Ok(rows)
}
