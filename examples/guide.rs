//! The zero-downtime deployment guide (`docs/guide.md`): this library holds nothing else, so
//! that every Rust code block of the guide is compiled (and run) as a doc test.

/// The guide's code blocks, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct Guide;
