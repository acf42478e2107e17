//! Where SQL migrations come from: a directory read at run time, or files embedded at compile
//! time. Both go through the same file-name parser, directive parser and checksum, so an
//! embedded migration and the same file on disk are the same migration.
//!
//! The layout is sqlx-cli's: `<version>_<name>.up.sql` with an optional
//! `<version>_<name>.down.sql`, or a single `<version>_<name>.sql` (no down step). Ours adds an
//! optional `<version>_<name>.validate.sql`: one query that must return a true value after
//! `up`. Files that do not end in `.sql` (a README, `.gitkeep`) and directories are ignored.

use crate::checksum::{checksum, normalize, sqlx_checksum};
use crate::error::Error;
use crate::migration::{Body, Migration, MigrationOptions, Phase, SqlScripts};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a migration file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `.up.sql`
    Up,
    /// `.down.sql`
    Down,
    /// `.validate.sql`
    Validate,
    /// `<version>_<name>.sql`: an up step without a down step.
    Simple,
}

/// A parsed migration file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileName {
    pub(crate) version: u64,
    pub(crate) name: String,
    pub(crate) kind: FileKind,
}

/// Whether a migration name is acceptable: non-empty, letters, digits, `_` and `-`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Parses a file name. `Ok(None)`: not a `.sql` file, ignored. `Err(reason)`: a `.sql` file
/// that is not a valid migration file name.
pub(crate) fn parse_file_name(file_name: &str) -> Result<Option<FileName>, String> {
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Ok(None);
    };
    let (stem, kind) = if let Some(s) = stem.strip_suffix(".up") {
        (s, FileKind::Up)
    } else if let Some(s) = stem.strip_suffix(".down") {
        (s, FileKind::Down)
    } else if let Some(s) = stem.strip_suffix(".validate") {
        (s, FileKind::Validate)
    } else {
        (stem, FileKind::Simple)
    };
    let digits = stem.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return Err(
            "it must start with a version number, as in 001_create_users.up.sql".to_owned(),
        );
    }
    let (number, rest) = stem.split_at(digits);
    let version: u64 = match number.parse::<u64>() {
        Ok(v) if v <= i64::MAX as u64 => v,
        _ => {
            return Err(format!(
                "version {number} is too large (at most {})",
                i64::MAX
            ));
        }
    };
    let Some(name) = rest.strip_prefix('_') else {
        return Err(format!(
            "expected `_` after the version {number}, as in {number}_create_users.up.sql"
        ));
    };
    if !valid_name(name) {
        return Err(format!(
            "the name `{name}` must be non-empty and use letters, digits, `_` and `-` only \
             (files end in .up.sql, .down.sql, .validate.sql or .sql)"
        ));
    }
    Ok(Some(FileName {
        version,
        name: name.to_owned(),
        kind,
    }))
}

/// One migration file's name, path (for messages) and text as read.
pub(crate) struct SourceFile {
    pub(crate) file_name: String,
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

/// Reads every `.sql` file of a directory.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<SourceFile>, Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.is_dir() {
        return Err(Error::SourceMissing {
            dir: dir.to_path_buf(),
        });
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if file_name.starts_with('.') || !file_name.ends_with(".sql") || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::MalformedName {
            path: path.clone(),
            reason: "the file is not valid UTF-8; save it as UTF-8".to_owned(),
        })?;
        files.push(SourceFile {
            file_name,
            path,
            text,
        });
    }
    Ok(files)
}

/// Parses the directives of an up script (normalised text).
fn directives(path: &Path, up: &str) -> Result<MigrationOptions, Error> {
    let mut options = MigrationOptions::default();
    if up.starts_with("-- no-transaction") {
        options.transactional = false;
    }
    let mut leading = true;
    for (i, line) in up.lines().enumerate() {
        let trimmed = line.trim();
        let is_comment = trimmed.starts_with("--");
        if leading && !trimmed.is_empty() && !is_comment {
            leading = false;
        }
        let Some(rest) = trimmed
            .strip_prefix("--")
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix("engine-ops:"))
        else {
            continue;
        };
        if !leading {
            return Err(Error::InvalidDirective {
                path: path.to_path_buf(),
                line: i + 1,
                reason: "`-- engine-ops:` directives must come before the first statement"
                    .to_owned(),
            });
        }
        for word in rest.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
            match word {
                "no-transaction" => options.transactional = false,
                "contract" => options.phase = Phase::Contract,
                "expand" => options.phase = Phase::Expand,
                other => {
                    return Err(Error::InvalidDirective {
                        path: path.to_path_buf(),
                        line: i + 1,
                        reason: format!(
                            "unknown directive `{other}`: known are no-transaction, expand, contract"
                        ),
                    });
                }
            }
        }
    }
    Ok(options)
}

#[derive(Default)]
struct Parts {
    up: Option<(FileName, SourceFile)>,
    down: Option<(FileName, SourceFile)>,
    validate: Option<(FileName, SourceFile)>,
}

/// Turns files into migrations ordered by version, checking names, pairs and directives.
pub(crate) fn assemble(files: Vec<SourceFile>) -> Result<Vec<Migration>, Error> {
    let mut by_version: BTreeMap<u64, Parts> = BTreeMap::new();
    for file in files {
        let parsed = match parse_file_name(&file.file_name) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(reason) => {
                return Err(Error::MalformedName {
                    path: file.path,
                    reason,
                });
            }
        };
        let parts = by_version.entry(parsed.version).or_default();
        let slot = match parsed.kind {
            FileKind::Up | FileKind::Simple => &mut parts.up,
            FileKind::Down => &mut parts.down,
            FileKind::Validate => &mut parts.validate,
        };
        if let Some((_, existing)) = slot {
            return Err(Error::DuplicateVersion {
                version: parsed.version,
                first: existing.path.display().to_string(),
                second: file.path.display().to_string(),
            });
        }
        *slot = Some((parsed, file));
    }

    let mut migrations = Vec::with_capacity(by_version.len());
    for (version, parts) in by_version {
        let Some((up_name, up_file)) = parts.up else {
            let (_, orphan) = parts
                .down
                .or(parts.validate)
                .expect("a version entry has at least one file");
            return Err(Error::OrphanFile {
                path: orphan.path,
                reason: format!(
                    "there is no {version}_<name>.up.sql for it; add the up script or remove this file"
                ),
            });
        };
        for (other_name, other_file) in [&parts.down, &parts.validate].into_iter().flatten() {
            if up_name.kind == FileKind::Simple && other_name.kind == FileKind::Down {
                return Err(Error::OrphanFile {
                    path: other_file.path.clone(),
                    reason: format!(
                        "a down script pairs with {version}_{}.up.sql, but the up script is {}; rename it to .up.sql",
                        up_name.name, up_file.file_name
                    ),
                });
            }
            if other_name.name != up_name.name {
                return Err(Error::OrphanFile {
                    path: other_file.path.clone(),
                    reason: format!(
                        "its name `{}` differs from the up script's `{}` ({}); use the same name",
                        other_name.name, up_name.name, up_file.file_name
                    ),
                });
            }
        }
        let up = normalize(&up_file.text).into_owned();
        let options = directives(&up_file.path, &up)?;
        let scripts = SqlScripts {
            sqlx_checksum: sqlx_checksum(&up_file.text),
            down: parts.down.map(|(_, f)| normalize(&f.text).into_owned()),
            validate: parts.validate.map(|(_, f)| normalize(&f.text).into_owned()),
            up,
        };
        migrations.push(Migration {
            version,
            name: up_name.name,
            checksum: checksum(&scripts.up),
            options,
            path: Some(up_file.path),
            body: Body::Sql(scripts),
        });
    }
    Ok(migrations)
}

/// Migrations compiled into the binary by `embed_migrations!` (feature `embed`).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedMigrations {
    dir: &'static str,
    files: &'static [(&'static str, &'static str)],
}

impl EmbeddedMigrations {
    /// Used by `embed_migrations!`; prefer the macro.
    #[doc(hidden)]
    pub const fn new(dir: &'static str, files: &'static [(&'static str, &'static str)]) -> Self {
        Self { dir, files }
    }

    /// The directory the files were read from at compile time.
    pub fn dir(&self) -> &'static str {
        self.dir
    }

    /// How many files were embedded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file was embedded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub(crate) fn files(&self) -> Vec<SourceFile> {
        self.files
            .iter()
            .map(|(file_name, text)| SourceFile {
                file_name: (*file_name).to_owned(),
                path: Path::new(self.dir).join(file_name),
                text: (*text).to_owned(),
            })
            .collect()
    }
}

/// Creates `<version>_<name>.up.sql` and `<version>_<name>.down.sql` in `dir` (created if
/// missing) and returns their paths.
///
/// The version follows the directory's style: after sequential versions (`001`, `002`) the
/// next number with the same width; otherwise (an empty directory, or timestamp versions) the
/// current UTC time as `YYYYMMDDHHMMSS`, like sqlx-cli, so that branches rarely collide.
pub fn new_migration_files(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), Error> {
    if !valid_name(name) {
        return Err(Error::InvalidName {
            name: name.to_owned(),
        });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let existing = assemble(read_dir(dir)?)?;
    let max = existing.iter().map(|m| m.version).max();
    let widest = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| matches!(parse_file_name(n), Ok(Some(_))))
        .map(|n| n.chars().take_while(char::is_ascii_digit).count())
        .max()
        .unwrap_or(3);
    let version = match max {
        Some(max) if max < 10_000_000_000 => format!("{:0widest$}", max + 1),
        _ => {
            let now = crate::report::utc_timestamp_version(std::time::SystemTime::now());
            match max {
                Some(max) if now <= max => (max + 1).to_string(),
                _ => now.to_string(),
            }
        }
    };
    let up = dir.join(format!("{version}_{name}.up.sql"));
    let down = dir.join(format!("{version}_{name}.down.sql"));
    write_new(
        &up,
        "-- Applied before the deploy while the previous release still runs: only add.\n\
         -- Breaking statements (DROP, RENAME, NOT NULL without DEFAULT) go in a migration\n\
         -- whose first line is `-- engine-ops: contract`.\n",
    )?;
    write_new(&down, "-- Revert what the .up.sql does.\n")?;
    Ok((up, down))
}

fn write_new(path: &Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    file.write_all(contents.as_bytes())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile {
            file_name: name.to_owned(),
            path: PathBuf::from("m").join(name),
            text: text.to_owned(),
        }
    }

    #[test]
    fn parses_sqlx_layouts() {
        let p = parse_file_name("001_create_users.up.sql").unwrap().unwrap();
        assert_eq!(
            (p.version, p.name.as_str(), p.kind),
            (1, "create_users", FileKind::Up)
        );
        let p = parse_file_name("20261126120000_add-index.down.sql")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.version, p.name.as_str(), p.kind),
            (20261126120000, "add-index", FileKind::Down)
        );
        let p = parse_file_name("7_seed.sql").unwrap().unwrap();
        assert_eq!((p.version, p.kind), (7, FileKind::Simple));
        assert_eq!(parse_file_name("README.md"), Ok(None));
        assert_eq!(parse_file_name("001_x.up.sql.bak"), Ok(None));
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "create_users.up.sql",
            "001-create.up.sql",
            "001_.up.sql",
            "001.up.sql",
            "001_has space.up.sql",
            "99999999999999999999_big.up.sql",
            "001_x.UP.sql",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad} should be malformed");
        }
    }

    #[test]
    fn assembles_pairs_and_orders_by_version() {
        let ms = assemble(vec![
            file("002_b.up.sql", "SELECT 2;"),
            file("001_a.up.sql", "SELECT 1;"),
            file("001_a.down.sql", "SELECT -1;"),
            file("001_a.validate.sql", "SELECT 1 = 1"),
        ])
        .unwrap();
        assert_eq!(ms.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2]);
        assert!(ms[0].is_reversible());
        assert!(!ms[1].is_reversible());
        assert!(ms[0].sql().unwrap().validate.is_some());
    }

    #[test]
    fn rejects_duplicates_orphans_and_mismatched_pairs() {
        let dup = assemble(vec![file("001_a.up.sql", ""), file("001_b.up.sql", "")]);
        assert!(matches!(
            dup,
            Err(Error::DuplicateVersion { version: 1, .. })
        ));
        let simple_and_up = assemble(vec![file("001_a.sql", ""), file("001_a.up.sql", "")]);
        assert!(matches!(simple_and_up, Err(Error::DuplicateVersion { .. })));
        let orphan = assemble(vec![file("003_c.down.sql", "")]);
        assert!(
            matches!(&orphan, Err(Error::OrphanFile { path, .. }) if path.ends_with("003_c.down.sql"))
        );
        let mismatch = assemble(vec![file("001_a.up.sql", ""), file("001_b.down.sql", "")]);
        assert!(matches!(mismatch, Err(Error::OrphanFile { .. })));
    }

    #[test]
    fn reads_directives() {
        let ms = assemble(vec![
            file(
                "001_a.up.sql",
                "-- engine-ops: no-transaction, contract\nDROP INDEX CONCURRENTLY x;",
            ),
            file(
                "002_b.up.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY y ON t (c);",
            ),
            file("003_c.up.sql", "CREATE TABLE t (id INT);"),
        ])
        .unwrap();
        assert!(!ms[0].options.transactional);
        assert_eq!(ms[0].options.phase, Phase::Contract);
        assert!(!ms[1].options.transactional);
        assert_eq!(ms[1].options.phase, Phase::Expand);
        assert!(ms[2].options.transactional);
        let unknown = assemble(vec![file(
            "001_a.up.sql",
            "-- engine-ops: contrat\nSELECT 1;",
        )]);
        assert!(matches!(
            unknown,
            Err(Error::InvalidDirective { line: 1, .. })
        ));
        let late = assemble(vec![file(
            "001_a.up.sql",
            "SELECT 1;\n-- engine-ops: contract\n",
        )]);
        assert!(matches!(late, Err(Error::InvalidDirective { line: 2, .. })));
    }

    #[test]
    fn crlf_and_bom_files_have_the_lf_checksum() {
        let lf = assemble(vec![file("001_a.up.sql", "CREATE TABLE t (id INT);\n")]).unwrap();
        let crlf = assemble(vec![file(
            "001_a.up.sql",
            "\u{feff}CREATE TABLE t (id INT);\r\n",
        )])
        .unwrap();
        assert_eq!(lf[0].checksum, crlf[0].checksum);
        assert_ne!(
            lf[0].sql().unwrap().sqlx_checksum,
            crlf[0].sql().unwrap().sqlx_checksum
        );
    }

    /// A simple model of the file-name grammar.
    fn model(name: &str) -> Option<Option<(u64, String, FileKind)>> {
        let stem = match name.strip_suffix(".sql") {
            Some(s) => s,
            None => return Some(None),
        };
        let (stem, kind) = [
            (".up", FileKind::Up),
            (".down", FileKind::Down),
            (".validate", FileKind::Validate),
        ]
        .iter()
        .find_map(|(suffix, kind)| stem.strip_suffix(suffix).map(|s| (s, *kind)))
        .unwrap_or((stem, FileKind::Simple));
        let (number, rest) = stem.split_once('_')?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let version: u64 = number.parse().ok().filter(|v| *v <= i64::MAX as u64)?;
        if rest.is_empty()
            || !rest
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        Some(Some((version, rest.to_owned(), kind)))
    }

    proptest! {
        #[test]
        fn parser_never_panics_and_agrees_with_the_model(
            name in "[0-9]{0,21}[_.-]?[a-zA-Z0-9_ .-]{0,12}(\\.up|\\.down|\\.validate|\\.UP)?(\\.sql|\\.txt)?"
        ) {
            let parsed = parse_file_name(&name);
            let expected = model(&name);
            match (parsed, expected) {
                (Ok(got), Some(want)) => prop_assert_eq!(got.map(|p| (p.version, p.name, p.kind)), want),
                (Err(_), None) => {}
                (got, want) => prop_assert!(false, "{name}: parser {got:?}, model {want:?}"),
            }
        }

        #[test]
        fn versions_order_numerically(a in 0u64..=i64::MAX as u64, b in 0u64..=i64::MAX as u64, pad in 0usize..4) {
            let files = vec![
                file(&format!("{a:0pad$}_a.up.sql"), "SELECT 1;"),
                file(&format!("{b:0pad$}_b.up.sql"), "SELECT 2;"),
            ];
            match assemble(files) {
                Ok(ms) => {
                    prop_assert_ne!(a, b);
                    prop_assert!(ms.windows(2).all(|w| w[0].version < w[1].version));
                    prop_assert_eq!(ms.len(), 2);
                }
                Err(Error::DuplicateVersion { version, .. }) => {
                    prop_assert_eq!(a, b);
                    prop_assert_eq!(version, a);
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}
