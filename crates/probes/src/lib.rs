//! Health probes and graceful shutdown (work in progress: see issue 4).
