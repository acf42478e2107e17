//! A steady HTTP load for rehearsing a rollout on loopback: the examples, the tests and the
//! benches send it through the traffic switch and count what came back.
//!
//! Every response is recorded with the instant its request was sent, its status and the
//! slot that answered it (the `x-engine-ops-slot` header that
//! [`LocalPlatform`]'s switch adds), so that "zero failed requests"
//! and "after the switch, new requests reach only the new release" are checked on what was
//! observed, not assumed.
//!
//! ```no_run
//! use std::time::Duration;
//! use engine_ops_rollout::load::LoadGenerator;
//!
//! # async fn run() {
//! let load = LoadGenerator::new("http://127.0.0.1:8080/").rate(200).start();
//! tokio::time::sleep(Duration::from_secs(1)).await;
//! let report = load.stop().await;
//! assert_eq!(report.failed(), 0, "{:?}", report.failures().next());
//! # }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;

use crate::{LocalPlatform, Slot};

/// Configures a steady load: `connections` keep-alive connections sending GET requests to
/// one URL, at a total `rate` or as fast as they can.
#[derive(Clone, Debug)]
pub struct LoadGenerator {
    url: http::Uri,
    rate: Option<u32>,
    connections: usize,
    timeout: Duration,
}

impl LoadGenerator {
    /// A load on `url` (`http://127.0.0.1:8080/path`): 4 connections, 100 requests per
    /// second, 5 s timeout per request.
    ///
    /// # Panics
    ///
    /// When `url` is not an absolute `http://` URL: a load generator is given a literal or
    /// an address it just formatted, and a wrong one is a bug in the caller.
    pub fn new(url: impl AsRef<str>) -> Self {
        let url: http::Uri = url
            .as_ref()
            .parse()
            .unwrap_or_else(|error| panic!("load generator URL {:?}: {error}", url.as_ref()));
        assert_eq!(
            url.scheme_str(),
            Some("http"),
            "load generator URL {url}: only http:// is supported"
        );
        Self {
            url,
            rate: Some(100),
            connections: 4,
            timeout: Duration::from_secs(5),
        }
    }

    /// Total requests per second across all connections. `0` means as fast as they can.
    pub fn rate(mut self, requests_per_second: u32) -> Self {
        self.rate = (requests_per_second > 0).then_some(requests_per_second);
        self
    }

    /// How many connections (each one sends a request, waits for the answer, repeats).
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }

    /// How long a request may take before it counts as failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts sending. Must be called inside a tokio runtime.
    pub fn start(self) -> RunningLoad {
        let shared = Arc::new(Shared::default());
        let started = Instant::now();
        let workers = (0..self.connections)
            .map(|worker| {
                let shared = Arc::clone(&shared);
                let generator = self.clone();
                tokio::spawn(async move { generator.work(worker, &shared).await })
            })
            .collect();
        RunningLoad {
            shared,
            workers,
            started,
        }
    }

    async fn work(&self, worker: usize, shared: &Shared) -> Vec<Sample> {
        // One client per worker with one idle connection: a worker is one keep-alive client.
        let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build_http();
        let mut ticker = self.rate.map(|rate| {
            let per_worker = Duration::from_secs_f64(self.connections as f64 / f64::from(rate));
            // Stagger the workers so the load is even rather than in bursts.
            let offset = per_worker.mul_f64(worker as f64 / self.connections as f64);
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + offset, per_worker);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        let mut samples = Vec::new();
        while !shared.stopping.load(Ordering::Relaxed) {
            if let Some(ticker) = ticker.as_mut() {
                ticker.tick().await;
                if shared.stopping.load(Ordering::Relaxed) {
                    break;
                }
            }
            let sent_at = Instant::now();
            let request = http::Request::get(self.url.clone())
                .body(Empty::new())
                .expect("a GET with a parsed URI is a valid request");
            let outcome = tokio::time::timeout(self.timeout, async {
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let slot = match response
                    .headers()
                    .get(LocalPlatform::SLOT_HEADER)
                    .and_then(|v| v.to_str().ok())
                {
                    Some("blue") => Some(Slot::Blue),
                    Some("green") => Some(Slot::Green),
                    _ => None,
                };
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("reading the body: {e}"))?
                    .to_bytes();
                Ok::<_, String>((status, slot, body))
            })
            .await;
            let latency = sent_at.elapsed();
            let sample = match outcome {
                Ok(Ok((status, slot, body))) => Sample {
                    sent_at,
                    latency,
                    status: Some(status),
                    slot,
                    error: (status >= 500)
                        .then(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into()),
                },
                Ok(Err(error)) => Sample::failed(sent_at, latency, error),
                Err(_) => Sample::failed(
                    sent_at,
                    latency,
                    format!("timed out after {:?}", self.timeout),
                ),
            };
            shared.sent.fetch_add(1, Ordering::Relaxed);
            if sample.is_failure() {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = shared.first_failure.lock() {
                    first.get_or_insert_with(|| sample.clone());
                }
            }
            samples.push(sample);
        }
        samples
    }
}

#[derive(Default)]
struct Shared {
    stopping: AtomicBool,
    sent: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<Sample>>,
}

/// A load that is running; [`stop`](RunningLoad::stop) it to get the [`LoadReport`].
#[must_use = "a load runs until stopped; stop it to read what it observed"]
pub struct RunningLoad {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<Vec<Sample>>>,
    started: Instant,
}

impl std::fmt::Debug for RunningLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningLoad")
            .field("sent", &self.sent())
            .field("failed", &self.failed())
            .finish()
    }
}

impl RunningLoad {
    /// Responses received so far (any status) plus failed requests.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Failed requests so far (`5xx`, connection errors, timeouts).
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// The first failure seen, for a progress line.
    pub fn first_failure(&self) -> Option<Sample> {
        self.shared
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
    }

    /// Stops sending, waits for the requests in flight, and returns everything observed.
    pub async fn stop(self) -> LoadReport {
        self.shared.stopping.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        for worker in self.workers {
            match worker.await {
                Ok(mut part) => samples.append(&mut part),
                Err(error) => samples.push(Sample::failed(
                    Instant::now(),
                    Duration::ZERO,
                    format!("load worker failed: {error}"),
                )),
            }
        }
        samples.sort_by_key(|sample| sample.sent_at);
        LoadReport {
            samples,
            duration: self.started.elapsed(),
        }
    }
}

/// One request and what came back.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the request was sent.
    pub sent_at: Instant,
    /// Until the whole body was read, or the failure.
    pub latency: Duration,
    /// The response status, `None` when no response came.
    pub status: Option<u16>,
    /// The slot that answered (from the `x-engine-ops-slot` header).
    pub slot: Option<Slot>,
    /// Why it failed: the transport error, the timeout, or the start of a `5xx` body.
    pub error: Option<String>,
}

impl Sample {
    fn failed(sent_at: Instant, latency: Duration, error: String) -> Self {
        Self {
            sent_at,
            latency,
            status: None,
            slot: None,
            error: Some(error),
        }
    }

    /// `true` for a `5xx` or no response.
    pub fn is_failure(&self) -> bool {
        self.status.is_none_or(|status| status >= 500)
    }
}

/// Everything a [`RunningLoad`] observed, in the order requests were sent.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Each request, by send time.
    pub samples: Vec<Sample>,
    /// From start to stop.
    pub duration: Duration,
}

impl LoadReport {
    /// Requests sent (and answered or failed).
    pub fn sent(&self) -> usize {
        self.samples.len()
    }

    /// Requests that failed.
    pub fn failed(&self) -> usize {
        self.failures().count()
    }

    /// The failed requests.
    pub fn failures(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(|sample| sample.is_failure())
    }

    /// Requests answered by `slot`.
    pub fn answered_by(&self, slot: Slot) -> usize {
        self.samples.iter().filter(|s| s.slot == Some(slot)).count()
    }

    /// Requests sent at or after `instant`.
    pub fn sent_after(&self, instant: Instant) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.sent_at >= instant)
    }

    /// Latency quantile `q` (0.0 to 1.0) over every answered request.
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        let mut latencies: Vec<Duration> = self
            .samples
            .iter()
            .filter(|s| s.status.is_some())
            .map(|s| s.latency)
            .collect();
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        let rank = ((q.clamp(0.0, 1.0) * latencies.len() as f64).ceil() as usize).max(1);
        Some(latencies[rank - 1])
    }

    /// Answered requests per second over the run.
    pub fn throughput(&self) -> f64 {
        self.sent() as f64 / self.duration.as_secs_f64().max(f64::EPSILON)
    }
}
