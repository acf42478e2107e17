//! The expand/contract lint.
//!
//! In a zero-downtime deploy the previous release keeps running against the
//! database while the new release's "expand" migrations are applied. A
//! statement that drops, renames or retypes something the old code uses, or
//! that makes old inserts fail, breaks that release mid-deploy; such
//! statements belong in a migration marked as a "contract" step, applied once
//! no old code is left. This module finds those statements in a script (the
//! caller decides what to do about the marking). It is pure: it works on
//! the script text alone, through the lexer in [`crate::sql`].

use std::fmt;

use crate::Dialect;
use crate::sql::{Token, split_statements, tokens};

/// What a breaking statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LintRule {
    /// `DROP TABLE`.
    DropTable,
    /// `ALTER TABLE ... DROP [COLUMN]`.
    DropColumn,
    /// `ALTER TABLE ... RENAME TO`, MySQL `RENAME TABLE`.
    RenameTable,
    /// `ALTER TABLE ... RENAME [COLUMN] a TO b`, MySQL `CHANGE old new`.
    RenameColumn,
    /// `ALTER [COLUMN] c [SET DATA] TYPE`, MySQL `MODIFY` and `CHANGE c c`.
    ChangeColumnType,
    /// `ADD [COLUMN] ... NOT NULL` without a default, `ALTER [COLUMN] c SET NOT NULL`.
    NotNullWithoutDefault,
    /// PostgreSQL `CREATE INDEX` without `CONCURRENTLY`.
    NonConcurrentIndex,
}

impl LintRule {
    /// Stable kebab-case code, e.g. "drop-column".
    pub fn code(self) -> &'static str {
        match self {
            LintRule::DropTable => "drop-table",
            LintRule::DropColumn => "drop-column",
            LintRule::RenameTable => "rename-table",
            LintRule::RenameColumn => "rename-column",
            LintRule::ChangeColumnType => "change-column-type",
            LintRule::NotNullWithoutDefault => "not-null-without-default",
            LintRule::NonConcurrentIndex => "non-concurrent-index",
        }
    }

    /// Why it breaks the previous release and what to do instead (one or two sentences, lowercase start, no trailing period).
    pub fn advice(self) -> &'static str {
        match self {
            LintRule::DropTable => {
                "the previous release still reads and writes this table; stop using it in one release, drop it in a contract migration of the next"
            }
            LintRule::DropColumn => {
                "the previous release still reads this column; stop using it in one release, drop it in a contract migration of the next"
            }
            LintRule::RenameTable => {
                "the previous release still queries the table by its old name; create the new table (or a view) alongside, move the code over, and remove the old name in a contract migration"
            }
            LintRule::RenameColumn => {
                "the previous release still uses the old column name; add the new column, write both and backfill, then drop the old one in a contract migration"
            }
            LintRule::ChangeColumnType => {
                "the previous release still reads and writes the old type, and the rewrite can lock the table; add a column of the new type, backfill it, and drop the old one in a contract migration"
            }
            LintRule::NotNullWithoutDefault => {
                "the previous release inserts rows without a value for this column, which now fail; add it nullable or with a default, backfill, and enforce NOT NULL in a contract migration"
            }
            LintRule::NonConcurrentIndex => {
                "a plain CREATE INDEX blocks writes to the table while it builds; use CREATE INDEX CONCURRENTLY, in a migration that runs outside a transaction"
            }
        }
    }
}

impl fmt::Display for LintRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LintRule::DropTable => "drops a table",
            LintRule::DropColumn => "drops a column",
            LintRule::RenameTable => "renames a table",
            LintRule::RenameColumn => "renames a column",
            LintRule::ChangeColumnType => "changes a column's type",
            LintRule::NotNullWithoutDefault => "makes a column NOT NULL without a default",
            LintRule::NonConcurrentIndex => "creates an index without CONCURRENTLY",
        })
    }
}

/// One breaking statement found in a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptFinding {
    /// What the statement does.
    pub(crate) rule: LintRule,
    /// 1-based line of the statement's first token.
    pub(crate) line: usize,
    /// The statement on one line, whitespace collapsed, cut to 100 chars with "…".
    pub(crate) excerpt: String,
}

/// Lints one script. `dialect` None means unknown: dialect-specific rules (NonConcurrentIndex) are skipped.
///
/// An unknown dialect is lexed as PostgreSQL. A statement yields at most one
/// finding per rule, in script order. Statements acting on a table created
/// earlier in the same script are never flagged.
pub(crate) fn lint_script(sql: &str, dialect: Option<Dialect>) -> Vec<ScriptFinding> {
    let lex = dialect.unwrap_or(Dialect::Postgres);
    let mut created = Vec::new();
    let mut out = Vec::new();
    for statement in split_statements(sql, lex) {
        let toks = tokens(statement.text, lex);
        let mut rules = Vec::new();
        lint_statement(&toks, dialect, &mut created, &mut rules);
        if rules.is_empty() {
            continue;
        }
        let excerpt = excerpt(statement.text);
        out.extend(rules.into_iter().map(|rule| ScriptFinding {
            rule,
            line: statement.line,
            excerpt: excerpt.clone(),
        }));
    }
    out
}

/// Longest excerpt, in chars.
const EXCERPT_CHARS: usize = 100;

/// The statement on one line, whitespace collapsed, cut to [`EXCERPT_CHARS`] chars with "…".
fn excerpt(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= EXCERPT_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(EXCERPT_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// A table or column name: the last segment of a possibly qualified name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    /// The name (uppercased if unquoted).
    text: String,
    /// Whether it was a quoted identifier.
    quoted: bool,
}

impl Name {
    /// Whether both name the same object: exactly if both are quoted, case-insensitively otherwise.
    fn same(&self, other: &Name) -> bool {
        if self.quoted && other.quoted {
            self.text == other.text
        } else {
            self.text.to_lowercase() == other.text.to_lowercase()
        }
    }
}

/// Whether `name` is one of the tables created earlier in the script.
fn is_new(created: &[Name], name: &Name) -> bool {
    created.iter().any(|c| c.same(name))
}

/// The word at `i`, if the token there is one.
fn word_at(t: &[Token], i: usize) -> Option<&str> {
    match t.get(i) {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

/// Whether the tokens at `i..` are the words `kws`.
fn words_at(t: &[Token], i: usize, kws: &[&str]) -> bool {
    kws.iter()
        .enumerate()
        .all(|(k, kw)| word_at(t, i + k) == Some(kw))
}

/// The token as a name, if it is an identifier.
fn ident(tok: &Token) -> Option<Name> {
    match tok {
        Token::Word(w) => Some(Name {
            text: w.clone(),
            quoted: false,
        }),
        Token::Quoted(q) => Some(Name {
            text: q.clone(),
            quoted: true,
        }),
        _ => None,
    }
}

/// Reads a possibly schema-qualified name at `i`: its last segment and the index after it.
fn qualified_name(t: &[Token], i: usize) -> Option<(Name, usize)> {
    let mut last = ident(t.get(i)?)?;
    let mut i = i + 1;
    while t.get(i) == Some(&Token::Symbol('.')) {
        match t.get(i + 1).and_then(ident) {
            Some(next) => {
                last = next;
                i += 2;
            }
            None => break,
        }
    }
    Some((last, i))
}

/// Index just past `IF EXISTS` (or `IF NOT EXISTS` when `not`) at `i`, or `i`.
fn skip_if_exists(t: &[Token], i: usize, not: bool) -> usize {
    let kws: &[&str] = if not {
        &["IF", "NOT", "EXISTS"]
    } else {
        &["IF", "EXISTS"]
    };
    if words_at(t, i, kws) {
        i + kws.len()
    } else {
        i
    }
}

/// Splits tokens at commas outside parentheses, dropping empty parts.
fn split_top_level(t: &[Token]) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut from = 0;
    for (i, tok) in t.iter().enumerate() {
        match tok {
            Token::Symbol('(') => depth += 1,
            Token::Symbol(')') => depth = depth.saturating_sub(1),
            Token::Symbol(',') if depth == 0 => {
                parts.push(&t[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&t[from..]);
    parts.retain(|p| !p.is_empty());
    parts
}

/// The tokens outside any parentheses (the parentheses themselves left out).
fn top_level(t: &[Token]) -> Vec<&Token> {
    let mut depth = 0usize;
    let mut out = Vec::new();
    for tok in t {
        match tok {
            Token::Symbol('(') => depth += 1,
            Token::Symbol(')') => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(tok),
            _ => {}
        }
    }
    out
}

/// The tokens inside the parenthesis opened at `open`, up to its match (or the end).
fn parenthesised(t: &[Token], open: usize) -> &[Token] {
    let mut depth = 0usize;
    for (i, tok) in t.iter().enumerate().skip(open) {
        match tok {
            Token::Symbol('(') => depth += 1,
            Token::Symbol(')') => {
                depth -= 1;
                if depth == 0 {
                    return &t[open + 1..i];
                }
            }
            _ => {}
        }
    }
    &t[(open + 1).min(t.len())..]
}

/// Adds `rule` to `rules` unless it is there already.
fn add(rules: &mut Vec<LintRule>, rule: LintRule) {
    if !rules.contains(&rule) {
        rules.push(rule);
    }
}

/// Lints one statement's tokens, recording tables it creates in `created`.
fn lint_statement(
    t: &[Token],
    dialect: Option<Dialect>,
    created: &mut Vec<Name>,
    rules: &mut Vec<LintRule>,
) {
    match word_at(t, 0) {
        Some("CREATE") => lint_create(t, dialect, created, rules),
        Some("DROP") => lint_drop(t, created, rules),
        Some("ALTER") => lint_alter(t, created, rules),
        Some("RENAME") => lint_rename_table(t, created, rules),
        _ => {}
    }
}

/// Words that may stand between `CREATE` and `TABLE`.
const TABLE_MODIFIERS: &[&str] = &[
    "OR",
    "REPLACE",
    "GLOBAL",
    "LOCAL",
    "TEMP",
    "TEMPORARY",
    "UNLOGGED",
    "VIRTUAL",
];

/// `CREATE TABLE` (recorded) and PostgreSQL `CREATE [UNIQUE] INDEX` without `CONCURRENTLY`.
fn lint_create(
    t: &[Token],
    dialect: Option<Dialect>,
    created: &mut Vec<Name>,
    rules: &mut Vec<LintRule>,
) {
    let mut i = 1;
    while word_at(t, i).is_some_and(|w| TABLE_MODIFIERS.contains(&w)) {
        i += 1;
    }
    if word_at(t, i) == Some("TABLE") {
        if let Some((name, _)) = qualified_name(t, skip_if_exists(t, i + 1, true)) {
            created.push(name);
        }
        return;
    }
    let mut i = 1;
    if word_at(t, i) == Some("UNIQUE") {
        i += 1;
    }
    if dialect != Some(Dialect::Postgres)
        || word_at(t, i) != Some("INDEX")
        || word_at(t, i + 1) == Some("CONCURRENTLY")
    {
        return;
    }
    let table = (i + 1..t.len())
        .find(|&j| word_at(t, j) == Some("ON"))
        .and_then(|on| {
            let at = if word_at(t, on + 1) == Some("ONLY") {
                on + 2
            } else {
                on + 1
            };
            qualified_name(t, at)
        });
    if !table.is_some_and(|(name, _)| is_new(created, &name)) {
        add(rules, LintRule::NonConcurrentIndex);
    }
}

/// `DROP TABLE [IF EXISTS] a[, b]`.
fn lint_drop(t: &[Token], created: &[Name], rules: &mut Vec<LintRule>) {
    if word_at(t, 1) != Some("TABLE") {
        return;
    }
    let mut i = skip_if_exists(t, 2, false);
    let mut names = 0;
    let mut old = false;
    while let Some((name, next)) = qualified_name(t, i) {
        names += 1;
        old |= !is_new(created, &name);
        if t.get(next) != Some(&Token::Symbol(',')) {
            break;
        }
        i = next + 1;
    }
    if old || names == 0 {
        add(rules, LintRule::DropTable);
    }
}

/// MySQL `RENAME TABLE a TO b[, c TO d]`.
fn lint_rename_table(t: &[Token], created: &mut Vec<Name>, rules: &mut Vec<LintRule>) {
    if word_at(t, 1) != Some("TABLE") {
        return;
    }
    let mut i = 2;
    let mut pairs = 0;
    let mut old = false;
    while let Some((from, j)) = qualified_name(t, i) {
        if word_at(t, j) != Some("TO") {
            break;
        }
        let Some((to, next)) = qualified_name(t, j + 1) else {
            break;
        };
        pairs += 1;
        if is_new(created, &from) {
            created.push(to);
        } else {
            old = true;
        }
        if t.get(next) != Some(&Token::Symbol(',')) {
            break;
        }
        i = next + 1;
    }
    if old || pairs == 0 {
        add(rules, LintRule::RenameTable);
    }
}

/// `ALTER TABLE [IF EXISTS] [ONLY] t action[, action...]`.
fn lint_alter(t: &[Token], created: &mut Vec<Name>, rules: &mut Vec<LintRule>) {
    let mut i = 1;
    while matches!(word_at(t, i), Some("ONLINE" | "IGNORE")) {
        i += 1;
    }
    if word_at(t, i) != Some("TABLE") {
        return;
    }
    i = skip_if_exists(t, i + 1, false);
    if word_at(t, i) == Some("ONLY") {
        i += 1;
    }
    let Some((table, mut i)) = qualified_name(t, i) else {
        return;
    };
    if t.get(i) == Some(&Token::Symbol('*')) {
        i += 1;
    }
    let actions = split_top_level(&t[i..]);
    if is_new(created, &table) {
        // Exempt; a rename keeps the table new under its new name.
        for action in actions {
            if let Rename::Table(Some(name)) = rename_action(action) {
                created.push(name);
            }
        }
        return;
    }
    for action in actions {
        if let Some(rule) = action_rule(action) {
            add(rules, rule);
        }
    }
}

/// What an `ALTER TABLE ... RENAME` action renames.
#[derive(Debug)]
enum Rename {
    /// The table, to this name if known.
    Table(Option<Name>),
    /// A column.
    Column,
    /// Something else (index, constraint), or not a rename.
    Other,
}

/// Classifies an `ALTER TABLE` action starting with `RENAME`.
fn rename_action(a: &[Token]) -> Rename {
    if word_at(a, 0) != Some("RENAME") {
        return Rename::Other;
    }
    match word_at(a, 1) {
        Some("TO" | "AS") => return Rename::Table(qualified_name(a, 2).map(|(n, _)| n)),
        Some("COLUMN") => return Rename::Column,
        Some("INDEX" | "KEY" | "CONSTRAINT") => return Rename::Other,
        _ => {}
    }
    match qualified_name(a, 1) {
        // `RENAME a TO b`: a column (PostgreSQL, SQLite).
        Some((_, j)) if word_at(a, j) == Some("TO") => Rename::Column,
        // `RENAME new_name`: the table (MySQL).
        Some((name, j)) if j == a.len() => Rename::Table(Some(name)),
        _ => Rename::Other,
    }
}

/// What `ALTER TABLE t DROP x` may drop besides a column.
const NOT_COLUMN_DROPS: &[&str] = &[
    "CONSTRAINT",
    "INDEX",
    "KEY",
    "PRIMARY",
    "FOREIGN",
    "CHECK",
    "DEFAULT",
    "PARTITION",
    "UNIQUE",
    "FULLTEXT",
    "SPATIAL",
    "SYSTEM",
    "PERIOD",
];

/// What `ALTER TABLE t ADD x` may add besides a column.
const NOT_COLUMN_ADDS: &[&str] = &[
    "CONSTRAINT",
    "PRIMARY",
    "INDEX",
    "KEY",
    "UNIQUE",
    "FOREIGN",
    "CHECK",
    "FULLTEXT",
    "SPATIAL",
    "PARTITION",
    "PERIOD",
    "SYSTEM",
    "EXCLUDE",
];

/// The rule one `ALTER TABLE` action breaks, if any.
fn action_rule(a: &[Token]) -> Option<LintRule> {
    match word_at(a, 0)? {
        "DROP" => match a.get(1)? {
            Token::Word(w) if w == "COLUMN" => Some(LintRule::DropColumn),
            Token::Word(w) if NOT_COLUMN_DROPS.contains(&w.as_str()) => None,
            tok => ident(tok).map(|_| LintRule::DropColumn),
        },
        "ADD" => add_rule(a),
        "ALTER" => {
            let j = match word_at(a, 1) {
                Some("COLUMN") => 2,
                Some("CONSTRAINT" | "INDEX" | "CHECK" | "PARTITION" | "KEY") => return None,
                _ => 1,
            };
            ident(a.get(j)?)?;
            if word_at(a, j + 1) == Some("TYPE") || words_at(a, j + 1, &["SET", "DATA", "TYPE"]) {
                Some(LintRule::ChangeColumnType)
            } else if words_at(a, j + 1, &["SET", "NOT", "NULL"]) {
                Some(LintRule::NotNullWithoutDefault)
            } else {
                None
            }
        }
        "MODIFY" => Some(LintRule::ChangeColumnType),
        "CHANGE" => {
            let j = if word_at(a, 1) == Some("COLUMN") {
                2
            } else {
                1
            };
            let old = ident(a.get(j)?)?;
            let new = ident(a.get(j + 1)?)?;
            Some(if old.same(&new) {
                LintRule::ChangeColumnType
            } else {
                LintRule::RenameColumn
            })
        }
        "RENAME" => match rename_action(a) {
            Rename::Table(_) => Some(LintRule::RenameTable),
            Rename::Column => Some(LintRule::RenameColumn),
            Rename::Other => None,
        },
        _ => None,
    }
}

/// The rule an `ADD ...` action breaks, if any: a NOT NULL column without a default.
fn add_rule(a: &[Token]) -> Option<LintRule> {
    let mut j = 1;
    if word_at(a, j) == Some("COLUMN") {
        j += 1;
    } else if word_at(a, j).is_some_and(|w| NOT_COLUMN_ADDS.contains(&w)) {
        return None;
    }
    j = skip_if_exists(a, j, true);
    if a.get(j) == Some(&Token::Symbol('(')) {
        // MySQL `ADD [COLUMN] (a int, b int)`.
        return split_top_level(parenthesised(a, j))
            .into_iter()
            .find_map(column_rule);
    }
    column_rule(&a[j.min(a.len())..])
}

/// Types that fill themselves in (PostgreSQL and MySQL serials).
const SERIAL_TYPES: &[&str] = &[
    "SERIAL",
    "BIGSERIAL",
    "SMALLSERIAL",
    "SERIAL2",
    "SERIAL4",
    "SERIAL8",
];

/// Words in a column definition that give the column a value on insert.
const VALUE_GIVERS: &[&str] = &["DEFAULT", "GENERATED", "AS", "AUTO_INCREMENT", "IDENTITY"];

/// The rule a column definition `name type ...` breaks, if any.
fn column_rule(def: &[Token]) -> Option<LintRule> {
    ident(def.first()?)?;
    let top = top_level(&def[1..]);
    let is_word =
        |tok: &Token, kws: &[&str]| matches!(tok, Token::Word(w) if kws.contains(&w.as_str()));
    let not_null = top
        .windows(2)
        .any(|p| is_word(p[0], &["NOT"]) && is_word(p[1], &["NULL"]));
    let filled = top.iter().any(|tok| is_word(tok, VALUE_GIVERS))
        || top.first().is_some_and(|tok| is_word(tok, SERIAL_TYPES));
    (not_null && !filled).then_some(LintRule::NotNullWithoutDefault)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every dialect.
    const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql];

    /// Every rule.
    const ALL_RULES: [LintRule; 7] = [
        LintRule::DropTable,
        LintRule::DropColumn,
        LintRule::RenameTable,
        LintRule::RenameColumn,
        LintRule::ChangeColumnType,
        LintRule::NotNullWithoutDefault,
        LintRule::NonConcurrentIndex,
    ];

    /// The rules found in `sql`, in order.
    fn rules(sql: &str, dialect: Option<Dialect>) -> Vec<LintRule> {
        lint_script(sql, dialect)
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    /// Asserts that `sql` yields exactly `want` in each of `dialects` ().
    fn expect(sql: &str, dialects: &[Dialect], want: &[LintRule]) {
        for &d in dialects {
            assert_eq!(rules(sql, Some(d)), want, "{d:?}: {sql}");
        }
    }

    /// Asserts that `sql` yields nothing in any dialect, known or not.
    fn clean(sql: &str) {
        for d in ALL {
            assert_eq!(rules(sql, Some(d)), [], "{d:?}: {sql}");
        }
        assert_eq!(rules(sql, None), [], "unknown dialect: {sql}");
    }

    /// Codes are unique kebab-case; advice starts lowercase with no final period.
    #[test]
    fn rule_codes_titles_and_advice() {
        assert_eq!(LintRule::DropColumn.code(), "drop-column");
        assert_eq!(LintRule::DropColumn.to_string(), "drops a column");
        let mut codes = std::collections::HashSet::new();
        for rule in ALL_RULES {
            let code = rule.code();
            assert!(codes.insert(code), "duplicate code {code}");
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            let advice = rule.advice();
            assert!(
                advice.starts_with(|c: char| c.is_ascii_lowercase()),
                "{advice}"
            );
            assert!(!advice.ends_with('.'), "{advice}");
            assert!(!rule.to_string().is_empty());
        }
    }

    /// The serialised form of a rule is its code.
    #[test]
    fn serialises_as_code() {
        for rule in ALL_RULES {
            let json = serde_json::to_string(&rule).expect("serialise");
            assert_eq!(json, format!("\"{}\"", rule.code()));
        }
    }

    /// DROP TABLE, qualified, quoted and listed, in every dialect.
    #[test]
    fn drop_table() {
        expect("DROP TABLE users", &ALL, &[LintRule::DropTable]);
        expect(
            "drop table if exists public.users, \"Other\" cascade",
            &[Dialect::Postgres, Dialect::Sqlite],
            &[LintRule::DropTable],
        );
        expect(
            "DROP TABLE IF EXISTS `users`",
            &[Dialect::MySql, Dialect::Sqlite],
            &[LintRule::DropTable],
        );
        assert_eq!(rules("DROP TABLE users", None), [LintRule::DropTable]);
    }

    /// Dropping anything but a table, or a MySQL temporary table, is fine.
    #[test]
    fn drop_table_negatives() {
        clean("DROP VIEW v; DROP INDEX i; DROP SEQUENCE s; DROP TRIGGER t");
        assert_eq!(rules("DROP TEMPORARY TABLE t", Some(Dialect::MySql)), []);
    }

    /// DROP [COLUMN] in ALTER TABLE, in any action.
    #[test]
    fn drop_column() {
        expect("ALTER TABLE t DROP COLUMN c", &ALL, &[LintRule::DropColumn]);
        expect(
            "ALTER TABLE IF EXISTS ONLY public.t DROP COLUMN IF EXISTS c CASCADE",
            &[Dialect::Postgres],
            &[LintRule::DropColumn],
        );
        expect(
            "ALTER TABLE `t` DROP `c`",
            &[Dialect::MySql],
            &[LintRule::DropColumn],
        );
        expect(
            "alter table t drop c",
            &[Dialect::Postgres, Dialect::MySql],
            &[LintRule::DropColumn],
        );
        expect(
            "ALTER TABLE \"t\" DROP COLUMN \"c\"",
            &[Dialect::Sqlite, Dialect::Postgres],
            &[LintRule::DropColumn],
        );
        // Any action of a multi-action ALTER TABLE counts.
        expect(
            "ALTER TABLE t ADD COLUMN x int, DROP COLUMN c, DROP COLUMN d",
            &[Dialect::Postgres, Dialect::MySql],
            &[LintRule::DropColumn],
        );
    }

    /// Dropping constraints, keys, defaults, partitions and column properties is fine.
    #[test]
    fn drop_column_negatives() {
        clean(
            "ALTER TABLE t DROP CONSTRAINT c;
             ALTER TABLE t DROP CONSTRAINT IF EXISTS c;
             ALTER TABLE t DROP INDEX i;
             ALTER TABLE t DROP KEY k;
             ALTER TABLE t DROP PRIMARY KEY;
             ALTER TABLE t DROP FOREIGN KEY fk;
             ALTER TABLE t DROP CHECK ck;
             ALTER TABLE t DROP DEFAULT;
             ALTER TABLE t DROP PARTITION p1;
             ALTER TABLE t ALTER COLUMN c DROP DEFAULT;
             ALTER TABLE t ALTER COLUMN c DROP NOT NULL;
             ALTER TABLE t ALTER c DROP IDENTITY IF EXISTS;
             ALTER TABLE t ALTER COLUMN c DROP EXPRESSION;
             ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0), DROP CONSTRAINT d",
        );
    }

    /// ALTER TABLE ... RENAME TO/AS/bare name, and MySQL RENAME TABLE.
    #[test]
    fn rename_table() {
        expect("ALTER TABLE t RENAME TO u", &ALL, &[LintRule::RenameTable]);
        expect(
            "ALTER TABLE t RENAME AS u",
            &[Dialect::MySql],
            &[LintRule::RenameTable],
        );
        expect(
            "ALTER TABLE t RENAME u",
            &[Dialect::MySql],
            &[LintRule::RenameTable],
        );
        expect(
            "RENAME TABLE a TO b, c TO d",
            &[Dialect::MySql],
            &[LintRule::RenameTable],
        );
        expect(
            "RENAME TABLE db.a TO db.b",
            &[Dialect::MySql],
            &[LintRule::RenameTable],
        );
    }

    /// Renaming indexes, keys, constraints, views and sequences is fine.
    #[test]
    fn rename_negatives() {
        clean(
            "ALTER TABLE t RENAME INDEX a TO b;
             ALTER TABLE t RENAME KEY a TO b;
             ALTER TABLE t RENAME CONSTRAINT a TO b;
             ALTER VIEW v RENAME TO w;
             ALTER INDEX i RENAME TO j;
             ALTER SEQUENCE s RENAME TO r",
        );
    }

    /// RENAME [COLUMN] a TO b, and MySQL CHANGE with a new name.
    #[test]
    fn rename_column() {
        expect(
            "ALTER TABLE t RENAME COLUMN a TO b",
            &ALL,
            &[LintRule::RenameColumn],
        );
        expect(
            "ALTER TABLE t RENAME a TO b",
            &[Dialect::Postgres, Dialect::Sqlite],
            &[LintRule::RenameColumn],
        );
        expect(
            "ALTER TABLE t CHANGE old_name new_name int NOT NULL DEFAULT 0",
            &[Dialect::MySql],
            &[LintRule::RenameColumn],
        );
        expect(
            "ALTER TABLE t CHANGE COLUMN `a` `b` text",
            &[Dialect::MySql],
            &[LintRule::RenameColumn],
        );
    }

    /// ALTER ... TYPE, SET DATA TYPE, MySQL MODIFY and CHANGE keeping the name.
    #[test]
    fn change_column_type() {
        expect(
            "ALTER TABLE t ALTER COLUMN c TYPE bigint",
            &[Dialect::Postgres],
            &[LintRule::ChangeColumnType],
        );
        expect(
            "ALTER TABLE t ALTER c SET DATA TYPE text USING c::text",
            &[Dialect::Postgres],
            &[LintRule::ChangeColumnType],
        );
        expect(
            "ALTER TABLE t MODIFY COLUMN c bigint",
            &[Dialect::MySql],
            &[LintRule::ChangeColumnType],
        );
        expect(
            "ALTER TABLE t MODIFY c varchar(20) NULL",
            &[Dialect::MySql],
            &[LintRule::ChangeColumnType],
        );
        expect(
            "ALTER TABLE t CHANGE c c bigint",
            &[Dialect::MySql],
            &[LintRule::ChangeColumnType],
        );
        // Same name in another case is not a rename.
        expect(
            "ALTER TABLE t CHANGE COLUMN Col col bigint",
            &[Dialect::MySql],
            &[LintRule::ChangeColumnType],
        );
    }

    /// Other ALTER COLUMN actions are fine.
    #[test]
    fn change_column_negatives() {
        clean(
            "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0;
             ALTER TABLE t ALTER c SET STATISTICS 100;
             ALTER TABLE t ALTER COLUMN c SET STORAGE EXTERNAL;
             ALTER TABLE t ALTER CONSTRAINT c DEFERRABLE;
             ALTER TABLE t ALTER INDEX i INVISIBLE",
        );
    }

    /// NOT NULL columns added without a default, and SET NOT NULL.
    #[test]
    fn not_null_without_default() {
        expect(
            "ALTER TABLE t ADD COLUMN c int NOT NULL",
            &ALL,
            &[LintRule::NotNullWithoutDefault],
        );
        expect(
            "ALTER TABLE t ADD c int NOT NULL",
            &[Dialect::MySql, Dialect::Postgres],
            &[LintRule::NotNullWithoutDefault],
        );
        expect(
            "ALTER TABLE t ADD COLUMN IF NOT EXISTS c int CONSTRAINT c_nn NOT NULL",
            &[Dialect::Postgres],
            &[LintRule::NotNullWithoutDefault],
        );
        expect(
            "ALTER TABLE t ALTER COLUMN c SET NOT NULL",
            &[Dialect::Postgres],
            &[LintRule::NotNullWithoutDefault],
        );
        expect(
            "ALTER TABLE t ALTER c SET NOT NULL",
            &[Dialect::Postgres],
            &[LintRule::NotNullWithoutDefault],
        );
        expect(
            "ALTER TABLE t ADD (a int NULL, b int NOT NULL)",
            &[Dialect::MySql],
            &[LintRule::NotNullWithoutDefault],
        );
        expect(
            "ALTER TABLE t ADD COLUMN a int NULL, ADD COLUMN b text NOT NULL CHECK (b <> '')",
            &[Dialect::Postgres],
            &[LintRule::NotNullWithoutDefault],
        );
    }

    /// Defaults, generated values, nullable columns and non-column additions are fine.
    #[test]
    fn not_null_negatives() {
        clean(
            "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;
             ALTER TABLE t ADD COLUMN c int DEFAULT 0 NOT NULL;
             ALTER TABLE t ADD COLUMN c int;
             ALTER TABLE t ADD COLUMN c int NULL;
             ALTER TABLE t ADD COLUMN c int CHECK (c IS NOT NULL);
             ALTER TABLE t ADD COLUMN c int NOT NULL GENERATED ALWAYS AS (a * 2) STORED;
             ALTER TABLE t ADD COLUMN id bigint NOT NULL GENERATED ALWAYS AS IDENTITY;
             ALTER TABLE t ADD COLUMN c int AS (a + 1) NOT NULL;
             ALTER TABLE t ADD COLUMN id int NOT NULL AUTO_INCREMENT;
             ALTER TABLE t ADD COLUMN id bigserial NOT NULL;
             ALTER TABLE t ADD CONSTRAINT c CHECK (x IS NOT NULL);
             ALTER TABLE t ADD CONSTRAINT c NOT NULL x;
             ALTER TABLE t ADD PRIMARY KEY (id);
             ALTER TABLE t ADD INDEX i (a);
             ALTER TABLE t ADD UNIQUE (a);
             ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES u (id);
             ALTER TABLE t ADD CHECK (a IS NOT NULL);
             ALTER TABLE t ALTER COLUMN c DROP NOT NULL",
        );
    }

    /// CREATE INDEX without CONCURRENTLY is flagged for PostgreSQL only.
    #[test]
    fn non_concurrent_index_in_postgres() {
        for sql in [
            "CREATE INDEX i ON t (a)",
            "CREATE UNIQUE INDEX i ON public.t (a)",
            "create index on t(a)",
            "CREATE INDEX IF NOT EXISTS i ON ONLY t (a)",
        ] {
            assert_eq!(
                rules(sql, Some(Dialect::Postgres)),
                [LintRule::NonConcurrentIndex],
                "{sql}"
            );
            assert_eq!(rules(sql, None), [], "unknown dialect: {sql}");
            assert_eq!(rules(sql, Some(Dialect::MySql)), [], "{sql}");
            assert_eq!(rules(sql, Some(Dialect::Sqlite)), [], "{sql}");
        }
        clean(
            "CREATE INDEX CONCURRENTLY i ON t (a); CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
        );
    }

    /// Statements on a table created earlier in the script are exempt.
    #[test]
    fn tables_created_earlier_are_exempt() {
        let script = "CREATE TABLE IF NOT EXISTS Orders (id int);
            ALTER TABLE orders ADD COLUMN total int NOT NULL;
            ALTER TABLE public.ORDERS DROP COLUMN id, RENAME COLUMN a TO b;
            ALTER TABLE orders ALTER COLUMN total TYPE bigint;
            CREATE INDEX orders_total ON orders (total);
            DROP TABLE orders";
        for d in ALL {
            assert_eq!(rules(script, Some(d)), [], "{d:?}");
        }
        assert_eq!(rules(script, None), []);
        // Quoted on both sides: exact.
        expect(
            "CREATE TABLE \"Users\" (id int); DROP TABLE \"Users\"; DROP TABLE \"users\"",
            &[Dialect::Postgres, Dialect::Sqlite],
            &[LintRule::DropTable],
        );
        // Quoted against unquoted, and schema-qualified on one side only.
        expect(
            "CREATE TABLE app.`items` (id int); ALTER TABLE ITEMS DROP COLUMN id",
            &[Dialect::MySql],
            &[],
        );
    }

    /// Only an earlier CREATE TABLE of that very table exempts.
    #[test]
    fn exemption_needs_an_earlier_create() {
        let findings = lint_script(
            "ALTER TABLE t DROP COLUMN c;\nCREATE TABLE t (id int);\nALTER TABLE t DROP COLUMN d;",
            Some(Dialect::Postgres),
        );
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].line, 1);
        // Another table, or a table only mentioned, is not exempt.
        expect(
            "CREATE TABLE a (id int); CREATE VIEW b AS SELECT 1; DROP TABLE a, b",
            &ALL,
            &[LintRule::DropTable],
        );
    }

    /// A new table stays exempt under its new name; an old one does not become new.
    #[test]
    fn renamed_new_tables_stay_exempt() {
        expect(
            "CREATE TABLE t_new (id int); ALTER TABLE t_new RENAME TO t2; ALTER TABLE t2 DROP COLUMN id",
            &ALL,
            &[],
        );
        expect(
            "CREATE TABLE n (id int); RENAME TABLE n TO m; ALTER TABLE m DROP COLUMN id",
            &[Dialect::MySql],
            &[],
        );
        // Renaming an old table to a new name does not make it new.
        expect(
            "ALTER TABLE old RENAME TO old2; ALTER TABLE old2 DROP COLUMN id",
            &ALL,
            &[LintRule::RenameTable, LintRule::DropColumn],
        );
    }

    /// Words in strings, comments, identifiers or routine bodies are not statements.
    #[test]
    fn mentions_are_not_flagged() {
        clean("INSERT INTO t VALUES ('DROP TABLE x')");
        clean("UPDATE t SET note = 'ALTER TABLE x DROP COLUMN y'");
        clean("-- DROP TABLE x\nSELECT 1");
        clean("/* ALTER TABLE x RENAME TO y; */ SELECT 1");
        clean("CREATE TABLE x (drop_table int, rename_column text)");
        clean("SELECT drop, \"table\" FROM t");
        clean("CREATE VIEW v AS SELECT 'DROP TABLE t' AS x");
        expect(
            "CREATE TRIGGER tr AFTER INSERT ON x BEGIN DELETE FROM y; DROP TABLE z; END",
            &[Dialect::Sqlite, Dialect::MySql],
            &[],
        );
        expect(
            "CREATE FUNCTION f() RETURNS void AS $$ BEGIN DROP TABLE z; END $$ LANGUAGE plpgsql",
            &[Dialect::Postgres],
            &[],
        );
        expect("SELECT 1 # DROP TABLE x", &[Dialect::MySql], &[]);
        expect(
            r"ALTER TABLE t COMMENT 'it\'s; DROP TABLE x'",
            &[Dialect::MySql],
            &[],
        );
    }

    /// Findings carry the statement's line and a one-line excerpt, one per rule.
    #[test]
    fn findings_carry_line_and_excerpt() {
        let sql = "-- header\nSELECT 1;\n\nALTER TABLE t\n    DROP COLUMN c,\n    ALTER COLUMN d TYPE text;\nDROP TABLE x;";
        let findings = lint_script(sql, Some(Dialect::Postgres));
        let want = |rule, line, excerpt: &str| ScriptFinding {
            rule,
            line,
            excerpt: excerpt.to_owned(),
        };
        assert_eq!(
            findings,
            [
                want(
                    LintRule::DropColumn,
                    4,
                    "ALTER TABLE t DROP COLUMN c, ALTER COLUMN d TYPE text"
                ),
                want(
                    LintRule::ChangeColumnType,
                    4,
                    "ALTER TABLE t DROP COLUMN c, ALTER COLUMN d TYPE text"
                ),
                want(LintRule::DropTable, 7, "DROP TABLE x"),
            ]
        );
    }

    /// Excerpts are cut to 100 chars with an ellipsis.
    #[test]
    fn long_excerpts_are_cut() {
        let cols: Vec<String> = (0..40).map(|i| format!("DROP COLUMN column_{i}")).collect();
        let sql = format!("ALTER TABLE t {}", cols.join(",\n"));
        let findings = lint_script(&sql, Some(Dialect::MySql));
        assert_eq!(findings.len(), 1);
        let excerpt = &findings[0].excerpt;
        assert!(excerpt.chars().count() <= 100, "{excerpt}");
        assert!(excerpt.ends_with('…'));
        assert!(excerpt.starts_with("ALTER TABLE t DROP COLUMN column_0, DROP COLUMN column_1,"));
        assert!(!excerpt.contains('\n'));
        assert_eq!(super::excerpt(&"é".repeat(150)).chars().count(), 100);
        assert_eq!(super::excerpt("a  \n\t b"), "a b");
    }

    /// An unknown dialect is lexed as PostgreSQL.
    #[test]
    fn unknown_dialect_lexes_as_postgres() {
        let sql = "ALTER TABLE \"t\" DROP COLUMN c; SELECT $$;$$; DROP TABLE x";
        assert_eq!(
            rules(sql, None),
            [LintRule::DropColumn, LintRule::DropTable]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Linting arbitrary token soup never panics.
        #[test]
        fn lint_never_panics(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "ALTER", "TABLE", "DROP", "COLUMN", "ADD", "RENAME", "TO", "CHANGE",
                    "CREATE", "INDEX", "ON", "NOT", "NULL", "IF", "EXISTS", "t", "\"q\"",
                    "(", ")", ",", ".", ";", "'", "\n", " ", "*", "ONLY", "TYPE", "SET",
                ]),
                0..30,
            ),
            d in proptest::option::of(proptest::sample::select(ALL.to_vec())),
        ) {
            let sql = parts.join(" ");
            for f in lint_script(&sql, d) {
                prop_assert!(f.line >= 1);
                prop_assert!(f.excerpt.chars().count() <= 100);
            }
        }
    }
}
