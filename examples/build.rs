//! Rebuild the examples when a migration file is added to schemas/migrations
//! (`embed_migrations!` tracks edits to existing files by itself).
fn main() {
    println!("cargo:rerun-if-changed=../schemas/migrations");
}
