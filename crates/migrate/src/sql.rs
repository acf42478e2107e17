//! Scanning of migration scripts.
//!
//! A migration file holds several statements, but the database drivers run
//! one statement at a time (and the lint and the transaction checks look at
//! statements one by one), so the script has to be cut at its top-level `;`.
//! A naive split breaks on `;` inside strings, quoted identifiers, comments,
//! PostgreSQL dollar quotes and `BEGIN ... END` bodies of triggers and
//! routines; this module holds a small dialect-aware lexer that knows those
//! and the splitter and token helpers built on it. It is pure (no I/O) and
//! never panics on malformed input.

use crate::Dialect;

/// One statement of a migration script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement<'a> {
    /// Statement text: starts at its first token (leading comments/whitespace excluded), ends before the terminating `;` (trailing whitespace trimmed). Comments inside stay.
    pub(crate) text: &'a str,
    /// 1-based line number (in the whole script) of the statement's first token.
    pub(crate) line: usize,
}

/// A lexical token of one statement, outside comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// An unquoted word (keyword or identifier), uppercased ASCII.
    Word(String),
    /// A quoted identifier ("x" everywhere, `x` in MySQL and SQLite, [x] in SQLite), contents unquoted, case kept.
    Quoted(String),
    /// A string literal of any kind (contents not kept).
    Str,
    /// A number.
    Number,
    /// Any other single punctuation char: ( ) , . ; = etc.
    Symbol(char),
}

/// Splits a script into statements at top-level `;`.
///
/// A `;` splits only outside strings, quoted identifiers, comments, dollar
/// quotes and `BEGIN ... END` / `CASE ... END` blocks of `CREATE TRIGGER`,
/// `FUNCTION`, `PROCEDURE` and `EVENT` statements. Statements without any
/// token (empty, or only comments) are dropped. An unterminated string or
/// comment makes the rest of the script part of the last statement.
pub(crate) fn split_statements(sql: &str, dialect: Dialect) -> Vec<Statement<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut blocks = Blocks::default();
    let mut lines = LineCounter::default();
    let mut push = |from: usize, to: usize| {
        let line = lines.line_at(sql, from);
        out.push(Statement {
            text: trim_space_end(&sql[from..to]),
            line,
        });
    };
    for lexeme in Lexer::new(sql, dialect) {
        blocks.observe(&lexeme, sql);
        if lexeme.kind == Kind::Symbol(b';') && blocks.depth == 0 {
            if let Some(from) = start.take() {
                push(from, lexeme.start);
            }
            blocks = Blocks::default();
            continue;
        }
        if start.is_none() {
            start = Some(lexeme.start);
        }
    }
    if let Some(from) = start {
        push(from, sql.len());
    }
    out
}

/// Lexes one statement (or any SQL text) into tokens, skipping whitespace and comments.
///
/// MySQL executable comments (`/*! ... */`) yield no token either.
pub(crate) fn tokens(statement: &str, dialect: Dialect) -> Vec<Token> {
    Lexer::new(statement, dialect)
        .filter_map(|lexeme| lexeme.token(statement))
        .collect()
}

/// If the statement controls the transaction (BEGIN, BEGIN TRANSACTION/WORK, START TRANSACTION, COMMIT, END [TRANSACTION|WORK] as a statement, ROLLBACK (but NOT `ROLLBACK TO [SAVEPOINT] x`), COMMIT PREPARED etc.), its canonical keyword(s) e.g. "BEGIN", "COMMIT", "START TRANSACTION", "ROLLBACK", "END"; otherwise None. SAVEPOINT/RELEASE are fine (None). `BEGIN` as the start of a PL/pgSQL or trigger body inside CREATE ... is never a statement of its own thanks to the splitter.
///
/// Other answers: "ABORT" (PostgreSQL's ROLLBACK), "COMMIT PREPARED",
/// "ROLLBACK PREPARED", "PREPARE TRANSACTION" (two-phase commit) and "XA"
/// (MySQL XA transactions). `BEGIN [NOT] ATOMIC` opens a compound block, not
/// a transaction, so it is None.
pub(crate) fn transaction_control(statement: &str, dialect: Dialect) -> Option<&'static str> {
    let toks = tokens(statement, dialect);
    let word = |i: usize| match toks.get(i) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    match word(0)? {
        "BEGIN" => match word(1) {
            Some("ATOMIC") => None,
            Some("NOT") if word(2) == Some("ATOMIC") => None,
            _ => Some("BEGIN"),
        },
        "START" => (word(1) == Some("TRANSACTION")).then_some("START TRANSACTION"),
        "COMMIT" => Some(if word(1) == Some("PREPARED") {
            "COMMIT PREPARED"
        } else {
            "COMMIT"
        }),
        "END" => Some("END"),
        "ROLLBACK" | "ABORT" => {
            if word(1) == Some("PREPARED") {
                return Some("ROLLBACK PREPARED");
            }
            let mut i = 1;
            if matches!(word(i), Some("WORK" | "TRANSACTION")) {
                i += 1;
            }
            if word(i) == Some("TO") {
                return None;
            }
            Some(if word(0) == Some("ABORT") {
                "ABORT"
            } else {
                "ROLLBACK"
            })
        }
        "PREPARE" => (word(1) == Some("TRANSACTION")).then_some("PREPARE TRANSACTION"),
        "XA" => Some("XA"),
        _ => None,
    }
}

/// Line numbers of increasing offsets, counted incrementally.
#[derive(Debug, Default)]
struct LineCounter {
    /// Newlines before `counted_to`.
    newlines: usize,
    /// Offset up to which newlines are counted.
    counted_to: usize,
}

impl LineCounter {
    /// The 1-based line of `offset` in `text` (offsets must not decrease between calls).
    fn line_at(&mut self, text: &str, offset: usize) -> usize {
        self.newlines += count_newlines(&text[self.counted_to..offset]);
        self.counted_to = offset;
        self.newlines + 1
    }
}

/// Number of `\n` in `s`.
fn count_newlines(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'\n').count()
}

/// What a lexeme is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An unquoted word.
    Word,
    /// A quoted identifier closed by `close` (`"`, `` ` `` or `]`); `terminated` is false when the input ended first.
    Quoted {
        /// The closing delimiter.
        close: u8,
        /// Whether the closing delimiter was found.
        terminated: bool,
    },
    /// A string literal (including dollar-quoted ones).
    Str,
    /// A number.
    Number,
    /// One ASCII punctuation byte.
    Symbol(u8),
    /// A MySQL executable comment `/*! ... */`: statement content, but no token.
    Opaque,
}

/// A lexeme: its kind and its byte range in the lexed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lexeme {
    /// What it is.
    kind: Kind,
    /// Byte offset of its first byte.
    start: usize,
    /// Byte offset just past it.
    end: usize,
}

impl Lexeme {
    /// The token for this lexeme of `src`, if it is one.
    fn token(&self, src: &str) -> Option<Token> {
        let text = &src[self.start..self.end];
        Some(match self.kind {
            Kind::Word => Token::Word(text.to_ascii_uppercase()),
            Kind::Quoted { close, terminated } => {
                let inner = if terminated {
                    &text[1..text.len() - 1]
                } else {
                    &text[1..]
                };
                if close == b']' {
                    Token::Quoted(inner.to_owned())
                } else {
                    let close = char::from(close);
                    let doubled: String = [close, close].iter().collect();
                    Token::Quoted(inner.replace(&doubled, &close.to_string()))
                }
            }
            Kind::Str => Token::Str,
            Kind::Number => Token::Number,
            Kind::Symbol(b) => Token::Symbol(char::from(b)),
            Kind::Opaque => return None,
        })
    }
}

/// Whether `b` may start an unquoted word (ASCII letter, `_`, or any byte of a non-ASCII char).
fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Whether `b` may continue an unquoted word.
fn is_word_byte(b: u8) -> bool {
    is_word_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Whitespace between lexemes.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `s` without trailing whitespace as the lexer sees it (ASCII only: other
/// whitespace chars are word chars to the lexer, so they never end up
/// trimmed into an empty statement).
fn trim_space_end(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

/// A dialect-aware SQL lexer yielding lexemes, skipping whitespace and comments.
///
/// Every lexeme boundary is at an ASCII byte or at the end of the text, so
/// slicing the text with them is always valid.
struct Lexer<'a> {
    /// The text.
    src: &'a str,
    /// The text's bytes.
    bytes: &'a [u8],
    /// Current byte offset.
    pos: usize,
    /// The dialect whose quoting and comment rules apply.
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    fn new(src: &'a str, dialect: Dialect) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            dialect,
        }
    }

    /// The byte `n` bytes after the current position.
    fn peek(&self, n: usize) -> Option<u8> {
        self.bytes.get(self.pos + n).copied()
    }

    /// Moves to the end of the line (the `\n` itself is left as whitespace).
    fn skip_line(&mut self) {
        self.pos = match self.bytes[self.pos..].iter().position(|&b| b == b'\n') {
            Some(i) => self.pos + i,
            None => self.bytes.len(),
        };
    }

    /// Skips a `/* ... */` comment starting at the current position (nested in PostgreSQL).
    fn skip_block_comment(&mut self) {
        let nested = self.dialect == Dialect::Postgres;
        let mut depth = 1usize;
        let mut i = self.pos + 2;
        while i < self.bytes.len() {
            match (self.bytes[i], self.bytes.get(i + 1)) {
                (b'*', Some(b'/')) => {
                    i += 2;
                    depth -= 1;
                    if depth == 0 {
                        self.pos = i;
                        return;
                    }
                }
                (b'/', Some(b'*')) if nested => {
                    i += 2;
                    depth += 1;
                }
                _ => i += 1,
            }
        }
        self.pos = self.bytes.len();
    }

    /// Scans quoted text whose content starts at `from` and ends at `close`,
    /// where a doubled `close` is an escape (if `doubling`) and so is a
    /// backslash before any byte (if `backslash`). Returns whether the
    /// closing byte was found; the position is then just past it (or at the end).
    fn scan_quoted(&mut self, from: usize, close: u8, doubling: bool, backslash: bool) -> bool {
        let mut i = from;
        while i < self.bytes.len() {
            let b = self.bytes[i];
            if backslash && b == b'\\' {
                i += 2;
            } else if b == close {
                if doubling && self.bytes.get(i + 1) == Some(&close) {
                    i += 2;
                } else {
                    self.pos = i + 1;
                    return true;
                }
            } else {
                i += 1;
            }
        }
        self.pos = self.bytes.len();
        false
    }

    /// If a PostgreSQL dollar quote opens at the current position, its tag (`$$` or `$tag$`).
    fn dollar_tag(&self) -> Option<&'a str> {
        let start = self.pos;
        let mut i = start + 1;
        match self.bytes.get(i) {
            Some(b'$') => return Some(&self.src[start..i + 1]),
            Some(&b) if is_word_start(b) => {}
            _ => return None,
        }
        while i < self.bytes.len()
            && (is_word_start(self.bytes[i]) || self.bytes[i].is_ascii_digit())
        {
            i += 1;
        }
        (self.bytes.get(i) == Some(&b'$')).then(|| &self.src[start..i + 1])
    }

    /// Scans a number starting at the current position.
    fn scan_number(&mut self) {
        let mut i = self.pos;
        while i < self.bytes.len() {
            let b = self.bytes[i];
            if matches!(b, b'e' | b'E')
                && matches!(self.bytes.get(i + 1), Some(b'+' | b'-'))
                && self.bytes.get(i + 2).is_some_and(u8::is_ascii_digit)
            {
                i += 3;
            } else if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
                i += 1;
            } else {
                break;
            }
        }
        self.pos = i;
    }
}

impl Iterator for Lexer<'_> {
    type Item = Lexeme;

    fn next(&mut self) -> Option<Lexeme> {
        let mysql = self.dialect == Dialect::MySql;
        let postgres = self.dialect == Dialect::Postgres;
        let sqlite = self.dialect == Dialect::Sqlite;
        loop {
            let start = self.pos;
            let b = *self.bytes.get(start)?;
            let kind = match b {
                _ if is_space(b) => {
                    self.pos += 1;
                    continue;
                }
                b'-' if self.peek(1) == Some(b'-')
                    && (!mysql || self.peek(2).is_none_or(|c| c <= b' ')) =>
                {
                    self.skip_line();
                    continue;
                }
                b'#' if mysql => {
                    self.skip_line();
                    continue;
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    let executable = mysql && self.peek(2) == Some(b'!');
                    self.skip_block_comment();
                    if !executable {
                        continue;
                    }
                    Kind::Opaque
                }
                b'\'' => {
                    self.scan_quoted(start + 1, b'\'', true, mysql);
                    Kind::Str
                }
                b'e' | b'E' if postgres && self.peek(1) == Some(b'\'') => {
                    self.scan_quoted(start + 2, b'\'', true, true);
                    Kind::Str
                }
                b'n' | b'N' | b'x' | b'X' | b'b' | b'B' if self.peek(1) == Some(b'\'') => {
                    self.scan_quoted(start + 2, b'\'', true, mysql);
                    Kind::Str
                }
                b'"' if mysql => {
                    self.scan_quoted(start + 1, b'"', true, true);
                    Kind::Str
                }
                b'"' => Kind::Quoted {
                    close: b'"',
                    terminated: self.scan_quoted(start + 1, b'"', true, false),
                },
                b'`' if mysql || sqlite => Kind::Quoted {
                    close: b'`',
                    terminated: self.scan_quoted(start + 1, b'`', true, false),
                },
                b'[' if sqlite => Kind::Quoted {
                    close: b']',
                    terminated: self.scan_quoted(start + 1, b']', false, false),
                },
                b'$' if postgres && self.dollar_tag().is_some() => {
                    let tag = self.dollar_tag().unwrap_or("$$");
                    let body = start + tag.len();
                    self.pos = match self.src[body..].find(tag) {
                        Some(i) => body + i + tag.len(),
                        None => self.bytes.len(),
                    };
                    Kind::Str
                }
                b'0'..=b'9' => {
                    self.scan_number();
                    Kind::Number
                }
                b'.' if self.peek(1).is_some_and(|c| c.is_ascii_digit()) => {
                    self.scan_number();
                    Kind::Number
                }
                _ if is_word_start(b) => {
                    let len = self.bytes[start..]
                        .iter()
                        .position(|&c| !is_word_byte(c))
                        .unwrap_or(self.bytes.len() - start);
                    self.pos = start + len;
                    Kind::Word
                }
                _ => {
                    self.pos += 1;
                    Kind::Symbol(b)
                }
            };
            return Some(Lexeme {
                kind,
                start,
                end: self.pos,
            });
        }
    }
}

/// Where the splitter is in the head of the current statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Head {
    /// No lexeme seen yet.
    #[default]
    Start,
    /// A `CREATE` whose object kind is not known yet.
    Create,
    /// A `CREATE` of a trigger, function, procedure or event: blocks are tracked.
    Routine,
    /// Anything else: blocks are not tracked.
    Other,
}

/// Object kinds after `CREATE` whose bodies may hold `BEGIN ... END` blocks.
const ROUTINE_KINDS: &[&str] = &["TRIGGER", "FUNCTION", "PROCEDURE", "EVENT"];

/// Object kinds after `CREATE` that have no such bodies (the first kind word decides).
const OTHER_KINDS: &[&str] = &[
    "TABLE",
    "VIEW",
    "INDEX",
    "SEQUENCE",
    "SCHEMA",
    "DATABASE",
    "TYPE",
    "DOMAIN",
    "EXTENSION",
    "ROLE",
    "USER",
    "MATERIALIZED",
    "POLICY",
    "RULE",
    "SERVER",
    "TABLESPACE",
    "PUBLICATION",
    "SUBSCRIPTION",
    "STATISTICS",
    "COLLATION",
    "CAST",
    "OPERATOR",
    "LANGUAGE",
    "CONVERSION",
    "TEXT",
    "FOREIGN",
    "ACCESS",
    "TRANSFORM",
    "LOGFILE",
];

/// Tracks `BEGIN`/`CASE` ... `END` nesting inside routine-defining `CREATE` statements.
#[derive(Debug, Clone, Copy, Default)]
struct Blocks {
    /// Where the statement head is.
    head: Head,
    /// Open blocks.
    depth: usize,
    /// An `END` was seen; the next lexeme tells whether it closes a counted block.
    pending_end: bool,
    /// The previous lexeme was `.`, so a word now is a qualified name, not a keyword.
    after_dot: bool,
}

impl Blocks {
    /// Takes the next lexeme of the statement into account.
    fn observe(&mut self, lexeme: &Lexeme, src: &str) {
        let word = (lexeme.kind == Kind::Word).then(|| &src[lexeme.start..lexeme.end]);
        let is = |kw: &str| word.is_some_and(|w| w.eq_ignore_ascii_case(kw));
        match self.head {
            Head::Start => {
                self.head = if is("CREATE") {
                    Head::Create
                } else {
                    Head::Other
                };
                return;
            }
            Head::Create => {
                if ROUTINE_KINDS.iter().any(|k| is(k)) {
                    self.head = Head::Routine;
                } else if OTHER_KINDS.iter().any(|k| is(k)) {
                    self.head = Head::Other;
                }
                return;
            }
            Head::Other => return,
            Head::Routine => {}
        }
        let after_dot = std::mem::replace(&mut self.after_dot, lexeme.kind == Kind::Symbol(b'.'));
        if std::mem::take(&mut self.pending_end) {
            if ["IF", "LOOP", "WHILE", "REPEAT"].iter().any(|k| is(k)) {
                // Closes a block that was never counted.
                return;
            }
            self.depth = self.depth.saturating_sub(1);
            if is("CASE") {
                // `END CASE`: the CASE is the closer's, not a new block.
                return;
            }
        }
        if after_dot {
            return;
        }
        if is("BEGIN") || is("CASE") {
            self.depth += 1;
        } else if is("END") {
            self.pending_end = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The texts of the statements of `sql`.
    fn texts(sql: &str, dialect: Dialect) -> Vec<&str> {
        split_statements(sql, dialect)
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    /// A Word token.
    fn w(s: &str) -> Token {
        Token::Word(s.to_owned())
    }

    /// A Quoted token.
    fn q(s: &str) -> Token {
        Token::Quoted(s.to_owned())
    }

    /// Every dialect.
    const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql];

    /// Plain statements split at each `;`, with or without a final one.
    #[test]
    fn splits_simple_statements() {
        for d in ALL {
            assert_eq!(
                texts("SELECT 1; SELECT 2;\nSELECT 3", d),
                ["SELECT 1", "SELECT 2", "SELECT 3"]
            );
        }
    }

    /// Surrounding whitespace is trimmed and empty statements vanish.
    #[test]
    fn trims_and_drops_empty_statements() {
        for d in ALL {
            assert_eq!(
                texts(";;  \n SELECT 1  \n ;; ;\n", d),
                ["SELECT 1"],
                "{d:?}"
            );
            assert!(split_statements("", d).is_empty());
            assert!(split_statements("  \n\t\r ", d).is_empty());
            // Non-ASCII whitespace is a word char to the lexer, so it is kept.
            assert_eq!(
                texts("SELECT 1\u{a0}; \u{a0}", d),
                ["SELECT 1\u{a0}", "\u{a0}"]
            );
        }
    }

    /// Statements made only of comments are dropped.
    #[test]
    fn comment_only_statements_are_dropped() {
        for d in ALL {
            assert_eq!(
                texts(
                    "-- just a comment;\n/* and; another */ ;\nSELECT 1;\n-- trailer\n",
                    d
                ),
                ["SELECT 1"],
                "{d:?}"
            );
        }
        assert_eq!(
            texts("# mysql comment;\n;SELECT 1;", Dialect::MySql),
            ["SELECT 1"]
        );
    }

    /// A statement starts at its first token; comments inside it stay.
    #[test]
    fn leading_comments_are_excluded_inner_comments_kept() {
        for d in ALL {
            let stmts =
                split_statements("-- header\n/* x */ SELECT 1 /* in; */ + 2 -- tail;\n;", d);
            assert_eq!(stmts.len(), 1, "{d:?}");
            assert_eq!(stmts[0].text, "SELECT 1 /* in; */ + 2 -- tail;", "{d:?}");
            assert_eq!(stmts[0].line, 2);
        }
    }

    /// `'...'` strings with `''` escapes hide `;` in every dialect.
    #[test]
    fn single_quoted_strings_with_doubled_quotes() {
        for d in ALL {
            assert_eq!(
                texts("SELECT 'a;b', 'it''s; ok'; SELECT 2", d),
                ["SELECT 'a;b', 'it''s; ok'", "SELECT 2"],
                "{d:?}"
            );
        }
    }

    /// MySQL's `\'` escape inside '..' strings, and only MySQL's.
    #[test]
    fn mysql_backslash_escapes_in_single_quotes() {
        let sql = r"SELECT 'it\'s;'; SELECT 2";
        assert_eq!(texts(sql, Dialect::MySql), [r"SELECT 'it\'s;'", "SELECT 2"]);
        // Elsewhere the backslash is ordinary: the string ends at `\'`.
        assert_eq!(texts(sql, Dialect::Postgres)[0], r"SELECT 'it\'s");
        assert_eq!(texts(sql, Dialect::Sqlite)[0], r"SELECT 'it\'s");
    }

    /// In PostgreSQL and SQLite a backslash does not escape the closing quote.
    #[test]
    fn backslash_is_ordinary_in_postgres_and_sqlite_strings() {
        let sql = r"SELECT 'C:\'; SELECT 2";
        for d in [Dialect::Postgres, Dialect::Sqlite] {
            assert_eq!(texts(sql, d), [r"SELECT 'C:\'", "SELECT 2"], "{d:?}");
        }
        // In MySQL the same text is an unterminated string: one statement.
        assert_eq!(texts(sql, Dialect::MySql), [sql]);
    }

    /// PostgreSQL `E'..'` strings take backslash escapes.
    #[test]
    fn postgres_escape_strings() {
        let sql = r"SELECT E'a\';b', e'\\'; SELECT 2";
        assert_eq!(
            texts(sql, Dialect::Postgres),
            [r"SELECT E'a\';b', e'\\'", "SELECT 2"]
        );
        assert_eq!(
            tokens(r"SELECT E'a\';b'", Dialect::Postgres),
            [w("SELECT"), Token::Str]
        );
    }

    /// `"..."` is a quoted identifier in PostgreSQL and SQLite, with `""` escapes.
    #[test]
    fn double_quotes_are_identifiers_in_postgres_and_sqlite() {
        for d in [Dialect::Postgres, Dialect::Sqlite] {
            assert_eq!(
                texts(r#"SELECT "a;""b"; SELECT 2"#, d),
                [r#"SELECT "a;""b""#, "SELECT 2"]
            );
            assert_eq!(
                tokens(r#"SELECT "My;""Col" FROM t"#, d),
                [w("SELECT"), q(r#"My;"Col"#), w("FROM"), w("T")]
            );
        }
    }

    /// `"..."` is a string in MySQL, with backslash escapes.
    #[test]
    fn double_quotes_are_strings_in_mysql() {
        assert_eq!(
            texts(r#"SELECT "a;\"b"; SELECT 2"#, Dialect::MySql),
            [r#"SELECT "a;\"b""#, "SELECT 2"]
        );
        assert_eq!(
            tokens(r#"SELECT "x""#, Dialect::MySql),
            [w("SELECT"), Token::Str]
        );
    }

    /// Backtick identifiers in MySQL and SQLite, not in PostgreSQL.
    #[test]
    fn backticks_are_identifiers_in_mysql_and_sqlite() {
        for d in [Dialect::MySql, Dialect::Sqlite] {
            assert_eq!(
                texts("SELECT `a;``b`; SELECT 2", d),
                ["SELECT `a;``b`", "SELECT 2"]
            );
            assert_eq!(tokens("`Odd;``Name`", d), [q("Odd;`Name")]);
        }
        // Not in PostgreSQL, where a backtick is just a symbol.
        assert_eq!(
            texts("SELECT `a;b`", Dialect::Postgres),
            ["SELECT `a", "b`"]
        );
    }

    /// `[..]` identifiers in SQLite; elsewhere brackets are symbols.
    #[test]
    fn brackets_are_identifiers_in_sqlite_only() {
        assert_eq!(
            texts("SELECT [a;b] FROM t; SELECT 2", Dialect::Sqlite),
            ["SELECT [a;b] FROM t", "SELECT 2"]
        );
        assert_eq!(tokens("[My Col]", Dialect::Sqlite), [q("My Col")]);
        assert_eq!(
            tokens("a[1]", Dialect::Postgres),
            [
                w("A"),
                Token::Symbol('['),
                Token::Number,
                Token::Symbol(']')
            ]
        );
    }

    /// PostgreSQL `$$..$$` and `$tag$..$tag$` quotes hide `;` (and other dollar quotes).
    #[test]
    fn postgres_dollar_quotes() {
        let sql = "SELECT $$a;'b$$, $fn$ x; $$ ; $fn$; SELECT 2";
        assert_eq!(
            texts(sql, Dialect::Postgres),
            ["SELECT $$a;'b$$, $fn$ x; $$ ; $fn$", "SELECT 2"]
        );
        assert_eq!(
            tokens("SELECT $$a;b$$, $t$x$t$", Dialect::Postgres),
            [w("SELECT"), Token::Str, Token::Symbol(','), Token::Str]
        );
        // Not a dollar quote in other dialects.
        assert_eq!(texts("SELECT $$a;b$$", Dialect::Sqlite).len(), 2);
    }

    /// A PL/pgSQL body in dollar quotes stays in its CREATE FUNCTION.
    #[test]
    fn postgres_function_body_in_dollar_quotes() {
        let sql = "CREATE FUNCTION f() RETURNS trigger AS $body$\nBEGIN\n  NEW.a := 1;\n  RETURN NEW;\nEND;\n$body$ LANGUAGE plpgsql;\nSELECT 1;";
        let stmts = split_statements(sql, Dialect::Postgres);
        assert_eq!(stmts.len(), 2);
        assert!(stmts[0].text.ends_with("LANGUAGE plpgsql"));
        assert_eq!(
            stmts[1],
            Statement {
                text: "SELECT 1",
                line: 7
            }
        );
    }

    /// `$1` is a parameter, and a `$` inside a word opens nothing.
    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(
            texts("SELECT $1; SELECT $2", Dialect::Postgres),
            ["SELECT $1", "SELECT $2"]
        );
        assert_eq!(
            tokens("$1", Dialect::Postgres),
            [Token::Symbol('$'), Token::Number]
        );
        // A tag cannot start with a digit.
        assert_eq!(
            texts("SELECT $1$2; SELECT $1$2", Dialect::Postgres),
            ["SELECT $1$2", "SELECT $1$2"]
        );
        // A `$` inside a word does not open a quote either.
        assert_eq!(
            texts("SELECT a$b$; SELECT 2", Dialect::Postgres),
            ["SELECT a$b$", "SELECT 2"]
        );
    }

    /// `--` comments hide `;` to the end of the line.
    #[test]
    fn line_comments() {
        for d in ALL {
            assert_eq!(
                texts("SELECT 1 -- a; b\n; SELECT 2", d),
                ["SELECT 1 -- a; b", "SELECT 2"],
                "{d:?}"
            );
            assert_eq!(tokens("a -- b\nc", d), [w("A"), w("C")]);
        }
    }

    /// In MySQL `--` starts a comment only before whitespace or the end.
    #[test]
    fn mysql_double_dash_needs_whitespace() {
        // `--;` is two minus signs in MySQL, so the `;` splits.
        assert_eq!(
            texts("SELECT 1--;SELECT 2", Dialect::MySql),
            ["SELECT 1--", "SELECT 2"]
        );
        assert_eq!(
            texts("SELECT 1--;SELECT 2", Dialect::Postgres),
            ["SELECT 1--;SELECT 2"]
        );
        // With whitespace (or at the end) it is a comment.
        assert_eq!(
            texts("SELECT 1 --\t;x\n;SELECT 2", Dialect::MySql),
            ["SELECT 1 --\t;x", "SELECT 2"]
        );
        assert_eq!(tokens("1 --", Dialect::MySql), [Token::Number]);
    }

    /// `#` starts a comment in MySQL only.
    #[test]
    fn hash_comments_in_mysql_only() {
        assert_eq!(
            texts("SELECT 1 # a; b\n; SELECT 2", Dialect::MySql),
            ["SELECT 1 # a; b", "SELECT 2"]
        );
        assert_eq!(
            texts("SELECT 1 # a; b\n; SELECT 2", Dialect::Postgres),
            ["SELECT 1 # a", "b", "SELECT 2"]
        );
        assert_eq!(
            tokens("a # b", Dialect::Postgres),
            [w("A"), Token::Symbol('#'), w("B")]
        );
    }

    /// `/* */` comments hide `;`; `/**/` and `/*/` are handled.
    #[test]
    fn block_comments() {
        for d in ALL {
            assert_eq!(
                texts("SELECT /* a; b */ 1; SELECT 2", d),
                ["SELECT /* a; b */ 1", "SELECT 2"],
                "{d:?}"
            );
            assert_eq!(
                tokens("a /* b */ c /**/ d /*/ e */ f", d),
                [w("A"), w("C"), w("D"), w("F")]
            );
        }
    }

    /// Block comments nest in PostgreSQL only.
    #[test]
    fn nested_block_comments_in_postgres_only() {
        let sql = "SELECT /* a /* b */ c; */ 1; SELECT 2";
        assert_eq!(
            texts(sql, Dialect::Postgres),
            ["SELECT /* a /* b */ c; */ 1", "SELECT 2"]
        );
        for d in [Dialect::Sqlite, Dialect::MySql] {
            assert_eq!(texts(sql, d), ["SELECT /* a /* b */ c", "*/ 1", "SELECT 2"]);
        }
    }

    /// MySQL `/*! */` comments are statement content without tokens.
    #[test]
    fn mysql_executable_comments_are_kept() {
        let sql = "/*!40101 SET NAMES utf8 */;\nSELECT 1;";
        assert_eq!(
            texts(sql, Dialect::MySql),
            ["/*!40101 SET NAMES utf8 */", "SELECT 1"]
        );
        assert_eq!(texts(sql, Dialect::Postgres), ["SELECT 1"]);
        assert_eq!(
            tokens("/*!40101 SET x */ SELECT", Dialect::MySql),
            [w("SELECT")]
        );
    }

    /// SQLite trigger bodies (with CASE and `old.end`) stay whole.
    #[test]
    fn sqlite_trigger_body() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET n = n + 1; DELETE FROM z; END;\nSELECT 1;";
        assert_eq!(
            texts(sql, Dialect::Sqlite),
            [
                "CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET n = n + 1; DELETE FROM z; END",
                "SELECT 1"
            ]
        );
        let temp = "CREATE TEMP TRIGGER IF NOT EXISTS t BEFORE DELETE ON x FOR EACH ROW WHEN old.a > 0 BEGIN SELECT CASE WHEN old.b THEN RAISE(ABORT, 'no;') END; INSERT INTO log VALUES (old.end); END; SELECT 2";
        assert_eq!(texts(temp, Dialect::Sqlite).len(), 2);
        assert_eq!(texts(temp, Dialect::Sqlite)[1], "SELECT 2");
    }

    /// A MySQL procedure written without DELIMITER stays whole.
    #[test]
    fn mysql_procedure_without_delimiter() {
        let sql = "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END;\nCALL p();";
        assert_eq!(
            texts(sql, Dialect::MySql),
            [
                "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
                "CALL p()"
            ]
        );
    }

    /// MySQL DEFINER and END IF/LOOP/WHILE/REPEAT/CASE nesting.
    #[test]
    fn mysql_definer_and_control_flow() {
        let sql = "CREATE DEFINER=`root`@`%` PROCEDURE p(IN n INT)\nBEGIN\n  DECLARE i INT DEFAULT 0;\n  IF n > 0 THEN SELECT 1; ELSE SELECT 2; END IF;\n  lbl: LOOP SET i = i + 1; IF i > n THEN LEAVE lbl; END IF; END LOOP lbl;\n  WHILE i > 0 DO SET i = i - 1; END WHILE;\n  REPEAT SET i = i + 1; UNTIL i > 3 END REPEAT;\n  CASE n WHEN 1 THEN SELECT CASE WHEN i THEN 1 ELSE 2 END; ELSE BEGIN SELECT 3; END; END CASE;\nEND;\nSELECT 9;";
        let stmts = split_statements(sql, Dialect::MySql);
        assert_eq!(stmts.len(), 2, "{stmts:#?}");
        assert!(stmts[0].text.ends_with("END CASE;\nEND"));
        assert_eq!(
            stmts[1],
            Statement {
                text: "SELECT 9",
                line: 10
            }
        );
    }

    /// MySQL trigger and event bodies, and a trigger without a body.
    #[test]
    fn mysql_trigger_and_event_bodies() {
        let sql = "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; SET NEW.b = 2; END; CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM t; DELETE FROM u; END; SELECT 1";
        assert_eq!(texts(sql, Dialect::MySql).len(), 3);
        // A trigger without a body ends at its `;`.
        let simple = "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = CASE WHEN 1 THEN 2 END; SELECT 1";
        assert_eq!(texts(simple, Dialect::MySql).len(), 2);
    }

    /// PostgreSQL `BEGIN ATOMIC ... END` SQL-standard bodies stay whole.
    #[test]
    fn postgres_begin_atomic() {
        let sql = "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 END;\n  SELECT a;\nEND;\nSELECT 2;";
        let stmts = split_statements(sql, Dialect::Postgres);
        assert_eq!(stmts.len(), 2, "{stmts:#?}");
        assert_eq!(
            stmts[1],
            Statement {
                text: "SELECT 2",
                line: 6
            }
        );
    }

    /// Outside routine definitions BEGIN, CASE and END do not nest.
    #[test]
    fn begin_end_outside_routines_split_normally() {
        for d in ALL {
            assert_eq!(
                texts(
                    "BEGIN; CREATE TABLE event (id int); SELECT CASE WHEN 1 THEN 2 END; COMMIT;",
                    d
                ),
                [
                    "BEGIN",
                    "CREATE TABLE event (id int)",
                    "SELECT CASE WHEN 1 THEN 2 END",
                    "COMMIT"
                ],
                "{d:?}"
            );
        }
    }

    /// Unterminated strings, comments and blocks take the rest of the script.
    #[test]
    fn unterminated_constructs_take_the_rest() {
        for d in ALL {
            for sql in [
                "SELECT 1; SELECT 'abc; SELECT 2",
                "SELECT 1; SELECT /* abc; SELECT 2",
            ] {
                let stmts = split_statements(sql, d);
                assert_eq!(stmts.len(), 2, "{d:?} {sql}");
                assert_eq!(stmts[1].text, &sql[10..]);
            }
            assert_eq!(tokens("\"abc", d).len(), 1);
        }
        assert_eq!(
            texts("SELECT $$ a; b", Dialect::Postgres),
            ["SELECT $$ a; b"]
        );
        assert_eq!(texts("SELECT [a; b", Dialect::Sqlite), ["SELECT [a; b"]);
        assert_eq!(texts("SELECT `a; b", Dialect::MySql), ["SELECT `a; b"]);
        assert_eq!(texts(r"SELECT 'a\", Dialect::MySql), [r"SELECT 'a\"]);
        assert_eq!(
            texts("CREATE TRIGGER t BEGIN SELECT 1; SELECT 2", Dialect::Sqlite),
            ["CREATE TRIGGER t BEGIN SELECT 1; SELECT 2"]
        );
    }

    /// Line numbers are those of each statement's first token.
    #[test]
    fn line_numbers() {
        let sql = "\n-- first\nSELECT 1;\n\nSELECT\n  'a\nb';  SELECT 3;\n/* c\n */\n\n  UPDATE t SET a = 1";
        let stmts = split_statements(sql, Dialect::Postgres);
        let got: Vec<(usize, &str)> = stmts.iter().map(|s| (s.line, s.text)).collect();
        assert_eq!(
            got,
            [
                (3, "SELECT 1"),
                (5, "SELECT\n  'a\nb'"),
                (7, "SELECT 3"),
                (11, "UPDATE t SET a = 1")
            ]
        );
    }

    /// Token kinds: uppercased words, quoted identifiers, strings, numbers, symbols.
    #[test]
    fn tokens_kinds() {
        assert_eq!(
            tokens(
                "select Foo.bar, 'x', 1.5e-3, .5 FROM \"T\" WHERE a<>b;",
                Dialect::Postgres
            ),
            [
                w("SELECT"),
                w("FOO"),
                Token::Symbol('.'),
                w("BAR"),
                Token::Symbol(','),
                Token::Str,
                Token::Symbol(','),
                Token::Number,
                Token::Symbol(','),
                Token::Number,
                w("FROM"),
                q("T"),
                w("WHERE"),
                w("A"),
                Token::Symbol('<'),
                Token::Symbol('>'),
                w("B"),
                Token::Symbol(';'),
            ]
        );
        assert_eq!(
            tokens("x'0A' N'é'", Dialect::Sqlite),
            [Token::Str, Token::Str]
        );
        assert_eq!(tokens("größe", Dialect::Sqlite), [w("GRößE")]);
    }

    /// Statements that begin or end a transaction.
    #[test]
    fn transaction_control_positives() {
        let cases = [
            ("BEGIN", "BEGIN"),
            ("begin transaction", "BEGIN"),
            ("BEGIN WORK", "BEGIN"),
            ("BEGIN IMMEDIATE TRANSACTION", "BEGIN"),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN"),
            ("START TRANSACTION", "START TRANSACTION"),
            ("start transaction read only", "START TRANSACTION"),
            ("COMMIT", "COMMIT"),
            ("COMMIT WORK AND NO CHAIN", "COMMIT"),
            ("END", "END"),
            ("END TRANSACTION", "END"),
            ("end work", "END"),
            ("ROLLBACK", "ROLLBACK"),
            ("ROLLBACK WORK", "ROLLBACK"),
            ("ROLLBACK TRANSACTION", "ROLLBACK"),
            ("ABORT", "ABORT"),
            ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
            ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"),
            ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
            ("XA START 'x'", "XA"),
            ("/* c */ COMMIT -- done", "COMMIT"),
        ];
        for d in ALL {
            for (sql, want) in cases {
                assert_eq!(transaction_control(sql, d), Some(want), "{d:?} {sql}");
            }
        }
    }

    /// Savepoints and other statements do not control the transaction.
    #[test]
    fn transaction_control_negatives() {
        let cases = [
            "ROLLBACK TO SAVEPOINT s",
            "ROLLBACK TO s",
            "ROLLBACK WORK TO SAVEPOINT s",
            "ROLLBACK TRANSACTION TO SAVEPOINT s",
            "SAVEPOINT s",
            "RELEASE SAVEPOINT s",
            "RELEASE s",
            "SELECT 1",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "START SLAVE",
            "PREPARE stmt FROM 'SELECT 1'",
            "UPDATE t SET \"begin\" = 1",
            "BEGIN ATOMIC SELECT 1; END",
            "BEGIN NOT ATOMIC SELECT 1; END",
            "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END",
            "-- COMMIT",
            "",
        ];
        for d in ALL {
            for sql in cases {
                assert_eq!(transaction_control(sql, d), None, "{d:?} {sql}");
            }
        }
    }

    /// The BEGIN of a trigger body is part of its CREATE TRIGGER.
    #[test]
    fn begin_inside_create_trigger_is_not_split_out() {
        let sql = "BEGIN;\nCREATE TRIGGER tr AFTER INSERT ON t\nBEGIN\n  UPDATE u SET n = n + 1;\nEND;\nCOMMIT;";
        let stmts = split_statements(sql, Dialect::Sqlite);
        let controls: Vec<_> = stmts
            .iter()
            .map(|s| transaction_control(s.text, Dialect::Sqlite))
            .collect();
        assert_eq!(controls, [Some("BEGIN"), None, Some("COMMIT")]);
        assert_eq!(stmts[1].line, 2);
        assert_eq!(stmts[2].line, 6);
    }

    /// Fragments for building hostile scripts.
    const FRAGMENTS: &[&str] = &[
        ";",
        "'",
        "\"",
        "`",
        "[",
        "]",
        "$",
        "$$",
        "$a$",
        "-",
        "--",
        "/",
        "*",
        "/*",
        "*/",
        "#",
        "\\",
        "\n",
        " ",
        "a",
        "B",
        "E",
        "e'",
        "1",
        ".",
        "(",
        ")",
        "BEGIN",
        "END",
        "CASE",
        "CREATE",
        "TRIGGER",
        "PROCEDURE",
        "IF",
        "é",
        "/*!",
        "--\t",
        "\u{a0}",
        "\r",
        "E'",
        "\\'",
    ];

    /// Checks the splitter's invariants on `sql`.
    fn check_invariants(sql: &str, dialect: Dialect) -> Result<(), TestCaseError> {
        let stmts = split_statements(sql, dialect);
        let base = sql.as_ptr() as usize;
        let mut prev_end = 0;
        for s in &stmts {
            let offset = s.text.as_ptr() as usize - base;
            prop_assert!(offset >= prev_end && offset + s.text.len() <= sql.len());
            prop_assert_eq!(&sql[offset..offset + s.text.len()], s.text);
            prop_assert!(!s.text.is_empty());
            prop_assert_eq!(trim_space_end(s.text), s.text);
            prop_assert_eq!(s.line, 1 + count_newlines(&sql[..offset]));
            prev_end = offset + s.text.len();
            let _ = tokens(s.text, dialect);
            let _ = transaction_control(s.text, dialect);
        }
        Ok(())
    }

    /// A dialect.
    fn dialect() -> impl Strategy<Value = Dialect> {
        prop_oneof![
            Just(Dialect::Sqlite),
            Just(Dialect::Postgres),
            Just(Dialect::MySql)
        ]
    }

    /// Statements valid in every dialect, each lexed alike everywhere.
    const COMMON: &[&str] = &[
        "SELECT 1",
        "SELECT 'x;y'",
        "SELECT 'it''s;'",
        "SELECT a -- c;\nFROM t",
        "SELECT /* ; */ 2",
        "UPDATE t SET a = 'a;b'\nWHERE id = 3",
        "INSERT INTO t (a, b) VALUES (1, 'END;')",
        "BEGIN",
        "COMMIT",
        "CREATE TABLE t (id int, \"end\" int)",
    ];

    /// Statements for one dialect.
    fn statements_for(dialect: Dialect) -> Vec<&'static str> {
        let own: &[&str] = match dialect {
            Dialect::Postgres => &[
                "INSERT INTO t VALUES ($$a;b$$)",
                "SELECT $tag$ ; $$ $tag$",
                "SELECT E'\\';'",
                "SELECT \"a;b\" FROM t",
                "SELECT /* /* ; */ ; */ 1",
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END",
                "CREATE FUNCTION g() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql",
                "SELECT $1",
                "SELECT 'C:\\'",
            ],
            Dialect::Sqlite => &[
                "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; DELETE FROM u; END",
                "SELECT [a;b] FROM t",
                "SELECT `a;b`",
                "SELECT 'a\\'",
                "SELECT \"a;b\" FROM t",
            ],
            Dialect::MySql => &[
                "SELECT 'a\\';b'",
                "SELECT \"a;b\"",
                "SELECT 1 # c;\n+ 2",
                "CREATE PROCEDURE p() BEGIN IF x THEN SELECT 1; END IF; SELECT 2; END",
                "SELECT `a;b`",
                "SELECT 1--1",
                "/*!40101 SET NAMES utf8 */",
            ],
        };
        COMMON.iter().chain(own).copied().collect()
    }

    /// A script built from a model, with the statements it must split into.
    fn model_script() -> impl Strategy<Value = (Dialect, String, Vec<(usize, String)>)> {
        dialect().prop_flat_map(|d| {
            let stmts = statements_for(d);
            let mut prefixes = vec!["", "-- lead;\n", "/* lead; */ ", "\n", "  \n\t"];
            if d == Dialect::MySql {
                prefixes.push("# lead;\n");
            }
            let piece = (
                proptest::sample::select(prefixes),
                proptest::sample::select(stmts),
                proptest::sample::select(vec![";\n", ";", " ;\n\n", "\n;"]),
            );
            (
                Just(d),
                proptest::collection::vec(piece, 0..8),
                proptest::sample::select(vec!["", ";", ";\n-- end\n", "\n"]),
            )
                .prop_map(|(d, pieces, tail)| {
                    let mut sql = String::new();
                    let mut want = Vec::new();
                    let n = pieces.len();
                    for (i, (prefix, stmt, sep)) in pieces.into_iter().enumerate() {
                        sql.push_str(prefix);
                        want.push((1 + count_newlines(&sql), stmt.to_owned()));
                        sql.push_str(stmt);
                        sql.push_str(if i + 1 == n { tail } else { sep });
                    }
                    (d, sql, want)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any text splits without panicking, keeping the invariants.
        #[test]
        fn never_panics_on_arbitrary_text(sql in any::<String>(), d in dialect()) {
            check_invariants(&sql, d)?;
        }

        /// Texts made of quoting and block fragments split without panicking.
        #[test]
        fn never_panics_on_hostile_fragments(
            parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40),
            d in dialect(),
        ) {
            check_invariants(&parts.concat(), d)?;
        }

        /// Scripts built from known statements split back into exactly those statements.
        #[test]
        fn splits_model_scripts_exactly((d, sql, want) in model_script()) {
            let got: Vec<(usize, String)> = split_statements(&sql, d)
                .into_iter()
                .map(|s| (s.line, s.text.to_owned()))
                .collect();
            prop_assert_eq!(got, want, "{:?} script: {:?}", d, sql);
        }
    }
}
