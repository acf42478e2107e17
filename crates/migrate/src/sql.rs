//! TEMPORARY stub until the real module lands.
use crate::Dialect;
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement<'a> { pub(crate) text: &'a str, pub(crate) line: usize }
pub(crate) fn split_statements(sql: &str, _d: Dialect) -> Vec<Statement<'_>> {
    sql.split(';').map(str::trim).filter(|s| !s.is_empty()).map(|text| Statement { text, line: 1 }).collect()
}
pub(crate) fn transaction_control(s: &str, _d: Dialect) -> Option<&'static str> {
    let u = s.trim().to_ascii_uppercase();
    if u == "BEGIN" { Some("BEGIN") } else if u == "COMMIT" { Some("COMMIT") } else { None }
}
