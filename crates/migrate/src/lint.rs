//! TEMPORARY stub until the real module lands.
use crate::Dialect;
/// Rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LintRule { /// x
 DropTable, /// x
 DropColumn }
impl LintRule { /// x
 pub fn code(self) -> &'static str { "drop-table" } /// x
 pub fn advice(self) -> &'static str { "x" } }
impl std::fmt::Display for LintRule { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("drops") } }
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptFinding { pub(crate) rule: LintRule, pub(crate) line: usize, pub(crate) excerpt: String }
pub(crate) fn lint_script(_sql: &str, _d: Option<Dialect>) -> Vec<ScriptFinding> { Vec::new() }
