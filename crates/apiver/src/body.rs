//! Body helpers for transforms: which bodies are JSON, and reading a body whole up to a limit.

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body::Body;
use std::fmt::Display;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// `application/json` or any `type/subtype+json`, parameters ignored.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    let essence = value
        .iter()
        .position(|&b| b == b';')
        .map_or(value, |p| &value[..p]);
    let essence = essence.trim_ascii();
    let Some(slash) = essence.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    (kind.eq_ignore_ascii_case(b"application") && subtype.eq_ignore_ascii_case(b"json"))
        || (subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// A `Content-Encoding` other than `identity`.
pub(crate) fn is_encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"))
}

/// The declared `Content-Length`, if it is a number.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub(crate) enum CollectError {
    TooLarge,
    Body(String),
}

/// Reads a body into one `Bytes`; a body in one chunk is not copied.
#[derive(Debug)]
pub(crate) struct Collector {
    limit: usize,
    len: usize,
    first: Option<Bytes>,
    rest: Vec<u8>,
}

impl Collector {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            len: 0,
            first: None,
            rest: Vec::new(),
        }
    }

    pub(crate) fn poll_collect<B>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, CollectError>>
    where
        B: Body,
        B::Error: Display,
    {
        loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                None => {
                    let bytes = match self.first.take() {
                        Some(first) if self.rest.is_empty() => first,
                        _ => Bytes::from(std::mem::take(&mut self.rest)),
                    };
                    return Poll::Ready(Ok(bytes));
                }
                Some(Err(error)) => return Poll::Ready(Err(CollectError::Body(error.to_string()))),
                Some(Ok(frame)) => {
                    // Trailers are dropped: a transformed body is sent whole.
                    let Ok(mut data) = frame.into_data() else {
                        continue;
                    };
                    let n = data.remaining();
                    if n > self.limit - self.len {
                        return Poll::Ready(Err(CollectError::TooLarge));
                    }
                    self.len += n;
                    let chunk = data.copy_to_bytes(n);
                    if self.first.is_none() && self.rest.is_empty() {
                        self.first = Some(chunk);
                    } else {
                        if let Some(first) = self.first.take() {
                            self.rest.reserve(self.len);
                            self.rest.extend_from_slice(&first);
                        }
                        self.rest.extend_from_slice(&chunk);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: http::header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn json_media_types() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            "application/vnd.acme.v1+json",
            " application/json ",
        ] {
            assert!(is_json(&headers(CONTENT_TYPE, json)), "{json}");
        }
        for other in [
            "text/plain",
            "application/jsonx",
            "json",
            "+json",
            "application/x-ndjson",
            "text/+json",
        ] {
            assert!(!is_json(&headers(CONTENT_TYPE, other)), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn encodings() {
        assert!(is_encoded(&headers(CONTENT_ENCODING, "gzip")));
        assert!(!is_encoded(&headers(CONTENT_ENCODING, "identity")));
        assert!(!is_encoded(&HeaderMap::new()));
    }
}
