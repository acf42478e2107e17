//! Checksums of migration scripts.
//!
//! A checksum is the SHA-384 of the script after [`normalize`]: a UTF-8 byte order mark is
//! dropped and CRLF / CR line endings become LF, so a checkout on another OS (git's
//! `core.autocrlf`) does not report drift. The same function runs for files read from disk
//! and for files embedded at compile time, so both give the same checksum.
//!
//! [`sqlx_checksum`] is sqlx-cli's checksum (SHA-384 of the file as it is), used only to match
//! an existing `_sqlx_migrations` ledger when adopting it.

use sha2::{Digest, Sha384};
use std::borrow::Cow;

/// Drops a leading UTF-8 BOM and turns CRLF and lone CR line endings into LF.
pub(crate) fn normalize(text: &str) -> Cow<'_, str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Lowercase hex SHA-384 of a normalised script.
pub(crate) fn checksum(normalized: &str) -> String {
    hex(&Sha384::digest(normalized.as_bytes()))
}

/// sqlx-cli's checksum: SHA-384 of the file's text exactly as it is on disk.
pub(crate) fn sqlx_checksum(raw: &str) -> Vec<u8> {
    Sha384::digest(raw.as_bytes()).to_vec()
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_and_bom_do_not_change_the_checksum() {
        let lf = "CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);\n";
        let crlf = "CREATE TABLE t (id INT);\r\nINSERT INTO t VALUES (1);\r\n";
        let bom_crlf = "\u{feff}CREATE TABLE t (id INT);\r\nINSERT INTO t VALUES (1);\r\n";
        let cr = "CREATE TABLE t (id INT);\rINSERT INTO t VALUES (1);\r";
        let expected = checksum(&normalize(lf));
        assert_eq!(checksum(&normalize(crlf)), expected);
        assert_eq!(checksum(&normalize(bom_crlf)), expected);
        assert_eq!(checksum(&normalize(cr)), expected);
        assert_ne!(
            checksum(&normalize("CREATE TABLE t (id BIGINT);\n")),
            expected
        );
    }

    #[test]
    fn checksum_is_sha384_hex() {
        // SHA-384 of the empty string.
        assert_eq!(
            checksum(""),
            "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"
        );
        assert_eq!(hex(&sqlx_checksum("")), checksum(""));
    }
}
