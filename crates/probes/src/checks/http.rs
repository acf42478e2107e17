//! [`HttpCheck`]: does an HTTP dependency answer a `GET` with a healthy status?

use crate::Error;
use crate::check::{HealthCheck, Outcome};
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::fmt;

/// The body of a dependency's answer is read (to keep the connection reusable) up to this
/// size, then dropped.
const MAX_BODY: usize = 64 * 1024;

/// `GET`s a URL and passes on a 2xx status (or what [`expect_status`](Self::expect_status)
/// accepts).
///
/// [`HttpCheck::new`] speaks plain `http://` (a sidecar, a service inside the cluster); for
/// `https://`, give [`HttpCheck::with_client`] a client with a TLS connector (for example
/// `hyper-rustls`). Connections are kept alive between runs. The output of a failure names
/// the URL without credentials or query string.
///
/// Check a dependency's *readiness*-style endpoint, and think twice before failing your
/// readiness on another service: if every service checks every other, one slow service
/// takes all of them out of rotation. A [non-critical](crate::Check::non_critical) check
/// shows the problem without acting on it.
///
/// ```
/// use engine_ops_probes::{Check, checks::HttpCheck};
///
/// let search = HttpCheck::new("http://search.internal:9200/_cluster/health")?;
/// let check = Check::new("search", search).non_critical();
/// # let _ = check;
/// assert!(HttpCheck::new("ftp://example.com").is_err());
/// # Ok::<(), engine_ops_probes::Error>(())
/// ```
pub struct HttpCheck<C = HttpConnector> {
    client: Client<C, Empty<Bytes>>,
    uri: Uri,
    shown: String,
    expect: fn(StatusCode) -> bool,
}

impl HttpCheck {
    /// A check of `url` (`http://` only) with its own connection pool.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] if `url` is not an absolute `http://` URL.
    pub fn new(url: &str) -> Result<Self, Error> {
        let uri = parse(url)?;
        if uri.scheme_str() != Some("http") {
            return Err(Error::InvalidUrl {
                url: redact(&uri),
                reason: "HttpCheck::new speaks plain http; for https, use HttpCheck::with_client with a TLS connector".to_owned(),
            });
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self::build(client, uri))
    }
}

impl<C> HttpCheck<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// A check of `url` through `client` (for TLS, proxies, custom DNS).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] if `url` is not an absolute `http://` or `https://` URL.
    pub fn with_client(client: Client<C, Empty<Bytes>>, url: &str) -> Result<Self, Error> {
        Ok(Self::build(client, parse(url)?))
    }

    fn build(client: Client<C, Empty<Bytes>>, uri: Uri) -> Self {
        Self {
            client,
            shown: redact(&uri),
            uri,
            expect: |s| s.is_success(),
        }
    }

    /// Which statuses pass (default: 2xx).
    ///
    /// ```
    /// use engine_ops_probes::checks::HttpCheck;
    ///
    /// // An endpoint that answers 429 when busy is still up.
    /// let check = HttpCheck::new("http://127.0.0.1:9000/ping")?
    ///     .expect_status(|s| s.is_success() || s.as_u16() == 429);
    /// # let _ = check;
    /// # Ok::<(), engine_ops_probes::Error>(())
    /// ```
    pub fn expect_status(mut self, expect: fn(StatusCode) -> bool) -> Self {
        self.expect = expect;
        self
    }
}

impl<C> fmt::Debug for HttpCheck<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCheck")
            .field("url", &self.shown)
            .finish()
    }
}

#[async_trait::async_trait]
impl<C> HealthCheck for HttpCheck<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn check(&self) -> Outcome {
        let req = match Request::get(self.uri.clone()).body(Empty::new()) {
            Ok(req) => req,
            Err(e) => return Outcome::fail(format!("GET {}: {e}", self.shown)),
        };
        let res = match self.client.request(req).await {
            Ok(res) => res,
            Err(e) => return Outcome::fail(format!("GET {}: {}", self.shown, chain(&e))),
        };
        let status = res.status();
        // Read (a bounded amount of) the body so the connection can be reused.
        let _ = Limited::new(res.into_body(), MAX_BODY).collect().await;
        if (self.expect)(status) {
            Outcome::Pass
        } else {
            Outcome::fail(format!("GET {}: status {status}", self.shown))
        }
    }
}

fn parse(url: &str) -> Result<Uri, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("the scheme must be http or https")),
        None => return Err(invalid("the URL must be absolute")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    Ok(uri)
}

/// `scheme://host[:port]/path`: no credentials, no query.
fn redact(uri: &Uri) -> String {
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.host().unwrap_or_default(),
        uri.path()
    )
}

/// An error and its sources on one line: hyper's errors say little without their causes.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_query() {
        let uri: Uri = "http://user:secret@db.internal:8080/health?token=abc"
            .parse()
            .unwrap();
        assert_eq!(redact(&uri), "http://db.internal:8080/health");
    }

    #[test]
    fn rejects_bad_urls_without_leaking_secrets() {
        for bad in [
            "",
            "/relative",
            "ftp://x/",
            "http://",
            "https://example.com/",
        ] {
            assert!(HttpCheck::new(bad).is_err(), "{bad}");
        }
        let e = HttpCheck::new("ftp://user:pw@host/x?token=1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw") && !e.contains("token"), "{e}");
    }
}
