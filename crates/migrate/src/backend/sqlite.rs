//! SQLite specifics: the migration lock is an OS file lock on `<database>.migrate-lock`.
//!
//! SQLite has no session locks, and holding its own write lock across several migrations would
//! block the application for the whole run. An exclusive `flock` on a file beside the database
//! serialises runners on this machine (the only place a SQLite file can be shared safely); the
//! kernel releases it when the process dies, so a killed runner never leaves a stale lock. An
//! in-memory database needs no lock.

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
