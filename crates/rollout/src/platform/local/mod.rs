//! The local platform (work in progress).
