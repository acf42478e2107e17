//! Tower layers for HTTP API versioning (work in progress: see issue 3).
