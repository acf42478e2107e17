//! `embed_migrations!`, the compile-time half of `engine-ops-migrate`'s `embed` feature.
//!
//! Use it through `engine_ops_migrate::embed_migrations!`. The macro only lists the `.sql`
//! files of a directory and includes each with `include_str!`; the file names are parsed and
//! the checksums computed by `engine_ops_migrate` itself, with the same code that reads a
//! directory at run time, so embedded and on-disk migrations are identical. It has no
//! dependencies (no syn, no quote) to keep builds quick.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use std::path::{Path, PathBuf};

fn error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?})")
        .parse()
        .expect("compile_error! invocation parses")
}

/// Parses the single string-literal argument.
fn literal_path(input: TokenStream) -> Result<String, String> {
    let tokens: Vec<_> = input.into_iter().collect();
    let [proc_macro::TokenTree::Literal(lit)] = tokens.as_slice() else {
        return Err(
            "embed_migrations! takes one string literal: the directory, relative to Cargo.toml"
                .to_owned(),
        );
    };
    let text = lit.to_string();
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or("embed_migrations! takes a plain string literal, e.g. \"migrations\"")?;
    if inner.contains('\\') {
        return Err("use `/` in the embed_migrations! path; escapes are not supported".to_owned());
    }
    Ok(inner.to_owned())
}

/// Embeds every `*.sql` file of a directory (relative to the calling crate's `Cargo.toml`)
/// and expands to an `engine_ops_migrate::EmbeddedMigrations`.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    let relative = match literal_path(input) {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    let Ok(manifest_dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return error("embed_migrations!: CARGO_MANIFEST_DIR is not set; build with cargo");
    };
    let dir: PathBuf = Path::new(&manifest_dir).join(&relative);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            return error(&format!(
                "embed_migrations!: cannot read the migrations directory {}: {e}",
                dir.display()
            ));
        }
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.ends_with(".sql") && !name.starts_with('.')).then(|| (name, e.path()))
        })
        .collect();
    files.sort();
    let mut items = String::new();
    for (name, path) in &files {
        let Some(path) = path.to_str() else {
            return error(&format!(
                "embed_migrations!: the path {} is not valid UTF-8",
                path.display()
            ));
        };
        items.push_str(&format!("({name:?}, ::core::include_str!({path:?})),"));
    }
    format!("::engine_ops_migrate::EmbeddedMigrations::new({relative:?}, &[{items}])")
        .parse()
        .unwrap_or_else(|_| error("embed_migrations!: internal error building the expansion"))
}
