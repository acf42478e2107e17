//! The local platform end to end, over real loopback HTTP: blue-green switches under a steady
//! load, in-flight requests across a switch and a stop, keep-alive connections on both sides
//! of the switch, exact splits, pooled routing, refusals, readiness deadlines and failures,
//! preview endpoints and counters, proxy headers and streamed bodies, and child processes
//! (serving, crashing, always reaped).

// Tests report what they measured on stderr (shown with --nocapture).
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "support/child_app.rs"]
mod child_app;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use engine_ops_rollout::{
    Error, LocalPlatform, LocalPlatformBuilder, Platform, ProcessSpec, Routing, Slot,
};
use http::{HeaderMap, Request, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const READY: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The in-process test app
// ---------------------------------------------------------------------------------------

/// State shared by every instance a test platform makes.
#[derive(Default)]
struct Shared {
    /// Instances made so far: each gets the next number, answered in `x-instance`.
    instances: AtomicUsize,
    /// Readiness of every instance (`/health/ready`) unless the version is `never-ready*`.
    unhealthy: AtomicBool,
    slow_started: AtomicUsize,
    slow_finished: AtomicUsize,
    /// The first chunk of each upload, as the app saw it.
    first_chunks: Mutex<Option<mpsc::UnboundedSender<Bytes>>>,
}

fn test_app(shared: &Arc<Shared>, version: &str) -> Router {
    let instance = shared.instances.fetch_add(1, Ordering::SeqCst).to_string();
    let never_ready = version.starts_with("never-ready");
    let version = version.to_owned();
    let root = {
        let version = version.clone();
        move || async move { ([("x-instance", instance)], version) }
    };
    let ready = {
        let shared = Arc::clone(shared);
        move || async move {
            if never_ready || shared.unhealthy.load(Ordering::SeqCst) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            }
        }
    };
    let slow = {
        let shared = Arc::clone(shared);
        move || async move {
            shared.slow_started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            shared.slow_finished.fetch_add(1, Ordering::SeqCst);
            format!("slow {version}")
        }
    };
    let upload = {
        let shared = Arc::clone(shared);
        move |body: Body| async move {
            let mut body = body;
            let mut total = 0;
            let mut first = true;
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map(|f| f.into_data()) else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                let Ok(data) = data else { continue };
                total += data.len();
                if std::mem::take(&mut first)
                    && let Some(tx) = &*shared.first_chunks.lock().unwrap()
                {
                    let _ = tx.send(data);
                }
            }
            total.to_string().into_response()
        }
    };
    Router::new()
        .route("/", get(root))
        .route("/health/ready", get(ready))
        .route("/slow", get(slow))
        .route(
            "/peer",
            get(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.port().to_string() },
            ),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let lines: Vec<String> = headers
                    .iter()
                    .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("?")))
                    .collect();
                (
                    [("keep-alive", "timeout=99"), ("x-app", "1")],
                    lines.join("\n"),
                )
            }),
        )
        .route("/upload", post(upload))
}

fn app_builder(shared: &Arc<Shared>) -> LocalPlatformBuilder {
    let shared = Arc::clone(shared);
    LocalPlatform::builder()
        .app(move |version: &str| -> Result<Router, String> { Ok(test_app(&shared, version)) })
        .readiness_interval(Duration::from_millis(10))
        .drain_timeout(Duration::from_secs(10))
}

async fn app_platform() -> (LocalPlatform, Arc<Shared>) {
    let shared = Arc::new(Shared::default());
    let platform = app_builder(&shared).build().await.unwrap();
    (platform, shared)
}

/// Deploys `version` to `slot`, waits until it is ready and routes all traffic to it.
async fn release(platform: &LocalPlatform, slot: Slot, version: &str, replicas: u32) {
    platform.deploy(slot, version, replicas).await.unwrap();
    platform.wait_ready(slot, READY).await.unwrap();
    platform.route(Routing::All { slot }).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// A small client
// ---------------------------------------------------------------------------------------

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    /// Every value of the slot header (exactly one is expected).
    fn slots(&self) -> Vec<String> {
        self.headers
            .get_all(LocalPlatform::SLOT_HEADER)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    fn slot(&self) -> Option<String> {
        self.slots().into_iter().next()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn try_send(client: &HttpClient, request: Request<Full<Bytes>>) -> Result<Reply, String> {
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn try_get(client: &HttpClient, url: &str) -> Result<Reply, String> {
    let request = Request::get(url).body(Full::default()).unwrap();
    try_send(client, request).await
}

async fn fetch(client: &HttpClient, url: &str) -> Reply {
    try_get(client, url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Polls `check` until it holds; fails the test after 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < until, "{what} did not happen within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------
// A steady load
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Sample {
    /// The reply, or the transport error.
    reply: Result<Reply, String>,
    /// Whether the switch had been made (`route` had returned) when the request was sent.
    sent_after_switch: bool,
}

/// A few tasks sending requests back to back through the front port, each over its own
/// keep-alive connection pool, until stopped (or 20 000 requests each).
struct Load {
    stop: Arc<AtomicBool>,
    switched: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Sample>>>,
}

impl Load {
    fn start(url: String, tasks: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let switched = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|_| {
                let (stop, switched, url) = (Arc::clone(&stop), Arc::clone(&switched), url.clone());
                tokio::spawn(async move {
                    let client = client();
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::SeqCst) && samples.len() < 20_000 {
                        let sent_after_switch = switched.load(Ordering::SeqCst);
                        let reply = try_get(&client, &url).await;
                        samples.push(Sample {
                            reply,
                            sent_after_switch,
                        });
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    samples
                })
            })
            .collect();
        Self {
            stop,
            switched,
            tasks,
        }
    }

    /// Call right after `route` returned.
    fn mark_switched(&self) {
        self.switched.store(true, Ordering::SeqCst);
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        let mut samples = Vec::new();
        for task in self.tasks {
            samples.extend(task.await.unwrap());
        }
        samples
    }
}

// ---------------------------------------------------------------------------------------
// In-process apps
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switch_under_steady_load_fails_no_request() {
    let (platform, _shared) = app_platform().await;
    let front = platform.front_url();
    let http = client();
    release(&platform, Slot::Blue, "v1", 2).await;
    for _ in 0..4 {
        let reply = fetch(&http, &front).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.slots(), ["blue"]);
        assert_eq!(reply.body, "v1");
    }

    let load = Load::start(front.clone(), 4);
    tokio::time::sleep(Duration::from_millis(100)).await;
    platform.deploy(Slot::Green, "v2", 2).await.unwrap();
    platform.wait_ready(Slot::Green, READY).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    load.mark_switched();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The old release is drained and stopped under load too.
    platform.stop(Slot::Blue).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let samples = load.finish().await;

    let mut per_slot = BTreeMap::<String, usize>::new();
    for sample in &samples {
        let reply = sample.reply.as_ref().expect("no request fails");
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let slots = reply.slots();
        assert_eq!(slots.len(), 1, "answered by exactly one slot: {reply:?}");
        let expected_body = match slots[0].as_str() {
            "blue" => "v1",
            "green" => "v2",
            other => panic!("unknown slot {other}"),
        };
        assert_eq!(reply.body, expected_body);
        if sample.sent_after_switch {
            assert_eq!(
                slots[0], "green",
                "a request sent after the switch went to blue"
            );
        }
        *per_slot.entry(slots[0].clone()).or_default() += 1;
    }
    eprintln!(
        "{} requests under load, per slot: {per_slot:?}",
        samples.len()
    );
    assert!(per_slot.get("blue").copied().unwrap_or(0) > 0);
    assert!(samples.iter().any(|s| s.sent_after_switch));

    let blue = platform.traffic(Slot::Blue).await.unwrap();
    let green = platform.traffic(Slot::Green).await.unwrap();
    assert_eq!((blue.errors, green.errors), (0, 0));
    assert_eq!(blue.requests + green.requests, samples.len() as u64 + 4);
    assert_eq!(blue.latency.count(), blue.requests);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_on_blue_completes_across_the_switch_and_the_stop() {
    let shared = Arc::new(Shared::default());
    // No grace once told to stop: only the switch's drain keeps the slow request alive.
    let platform = app_builder(&shared)
        .termination_grace(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let front = platform.front_url();
    release(&platform, Slot::Blue, "v1", 1).await;
    platform.deploy(Slot::Green, "v2", 1).await.unwrap();
    platform.wait_ready(Slot::Green, READY).await.unwrap();

    let slow = tokio::spawn({
        let url = format!("{front}/slow");
        async move { fetch(&client(), &url).await }
    });
    eventually("the slow request reaching blue", || async {
        shared.slow_started.load(Ordering::SeqCst) == 1
    })
    .await;
    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    let after = fetch(&client(), &front).await;
    assert_eq!(
        (after.slot().as_deref(), after.body.as_str()),
        (Some("green"), "v2")
    );

    // Stopping blue drains the slow request instead of cutting it.
    platform.stop(Slot::Blue).await.unwrap();
    assert_eq!(
        shared.slow_finished.load(Ordering::SeqCst),
        1,
        "stop returned before the in-flight request finished"
    );
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, StatusCode::OK);
    assert_eq!(slow.slot().as_deref(), Some("blue"));
    assert_eq!(slow.body, "slow v1");
    let status = platform.status().await.unwrap();
    assert_eq!(status.slot(Slot::Blue).running, 0);
    assert_eq!(status.slot(Slot::Blue).version, None);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connections_survive_a_switch_and_backends_are_pooled() {
    let (platform, _shared) = app_platform().await;
    release(&platform, Slot::Blue, "v1", 1).await;
    platform.deploy(Slot::Green, "v2", 1).await.unwrap();
    platform.wait_ready(Slot::Green, READY).await.unwrap();

    // One client connection, by hand: it cannot reconnect behind our back.
    let stream = tokio::net::TcpStream::connect(platform.front_addr())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let mut send = async |path: &str| {
        sender.ready().await.unwrap();
        let request = Request::get(path)
            .header("host", "shop")
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let slot = response.headers()[LocalPlatform::SLOT_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (slot, String::from_utf8(body.to_vec()).unwrap())
    };
    assert_eq!(send("/").await, ("blue".to_owned(), "v1".to_owned()));
    // The switch reuses its connection to the instance: the app sees one peer port.
    let ports: BTreeSet<String> = [
        send("/peer").await.1,
        send("/peer").await.1,
        send("/peer").await.1,
    ]
    .into_iter()
    .collect();
    assert_eq!(
        ports.len(),
        1,
        "connections to the instance are not reused: {ports:?}"
    );

    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    assert_eq!(send("/").await, ("green".to_owned(), "v2".to_owned()));
    assert_eq!(send("/").await, ("green".to_owned(), "v2".to_owned()));
    assert!(!sender.is_closed());
    assert!(!connection.is_finished());
    drop(sender);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_is_exact_and_pooled_spreads_over_every_instance() {
    let (platform, _shared) = app_platform().await;
    let front = platform.front_url();
    release(&platform, Slot::Blue, "v1", 2).await;
    platform.deploy(Slot::Green, "v2", 2).await.unwrap();
    platform.wait_ready(Slot::Green, READY).await.unwrap();

    platform
        .route(Routing::Split {
            canary: Slot::Green,
            percent: 30,
        })
        .await
        .unwrap();
    // 4 concurrent clients, 250 requests each: every request draws its own turn.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let front = front.clone();
            tokio::spawn(async move {
                let http = client();
                let mut green = 0;
                for _ in 0..250 {
                    let reply = fetch(&http, &front).await;
                    assert_eq!(reply.status, StatusCode::OK);
                    green += usize::from(reply.slot().as_deref() == Some("green"));
                }
                green
            })
        })
        .collect();
    let mut green = 0;
    for task in tasks {
        green += task.await.unwrap();
    }
    assert_eq!(green, 300, "30% of 1000 requests");

    platform.route(Routing::Pooled).await.unwrap();
    let http = client();
    let mut per_instance = BTreeMap::<(String, String), usize>::new();
    for _ in 0..40 {
        let reply = fetch(&http, &front).await;
        let key = (
            reply.slot().unwrap(),
            reply.header("x-instance").unwrap().to_owned(),
        );
        *per_instance.entry(key).or_default() += 1;
    }
    assert_eq!(per_instance.len(), 4, "{per_instance:?}");
    assert!(per_instance.values().all(|&n| n == 10), "{per_instance:?}");
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_slot_refuses_deploy_and_stop_and_bad_splits_are_refused() {
    let (platform, _shared) = app_platform().await;
    release(&platform, Slot::Blue, "v1", 1).await;

    let refused = platform.deploy(Slot::Blue, "v2", 1).await.unwrap_err();
    assert!(
        matches!(
            refused,
            Error::SlotLive {
                slot: Slot::Blue,
                operation: "deploy to"
            }
        ),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains("route traffic away from it first")
    );
    let refused = platform.stop(Slot::Blue).await.unwrap_err();
    assert!(matches!(
        refused,
        Error::SlotLive {
            slot: Slot::Blue,
            operation: "stop"
        }
    ));

    platform.deploy(Slot::Green, "v2", 1).await.unwrap();
    platform.wait_ready(Slot::Green, READY).await.unwrap();
    platform
        .route(Routing::Split {
            canary: Slot::Green,
            percent: 30,
        })
        .await
        .unwrap();
    for slot in Slot::ALL {
        let refused = platform.deploy(slot, "v3", 1).await.unwrap_err();
        assert!(
            matches!(refused, Error::SlotLive { .. }),
            "{slot}: {refused:?}"
        );
    }

    let refused = platform
        .route(Routing::Split {
            canary: Slot::Green,
            percent: 101,
        })
        .await
        .unwrap_err();
    assert!(refused.is_bad_input(), "{refused:?}");
    assert!(matches!(refused, Error::InvalidConfig { .. }));
    assert_eq!(
        platform.status().await.unwrap().routing,
        Routing::Split {
            canary: Slot::Green,
            percent: 30
        },
        "a refused routing changes nothing"
    );

    // Pooled: rolling updates scale and redeploy both slots.
    platform.route(Routing::Pooled).await.unwrap();
    platform.scale(Slot::Blue, 2).await.unwrap();
    platform.deploy(Slot::Green, "v3", 1).await.unwrap();
    platform.wait_ready(Slot::Green, READY).await.unwrap();
    platform.wait_ready(Slot::Blue, READY).await.unwrap();
    let status = platform.status().await.unwrap();
    assert_eq!(status.slot(Slot::Blue).ready, 2);
    assert_eq!(status.slot(Slot::Green).version.as_deref(), Some("v3"));
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_that_never_passes_hits_the_deadline_while_the_live_slot_serves() {
    let (platform, _shared) = app_platform().await;
    release(&platform, Slot::Blue, "v1", 1).await;
    platform
        .deploy(Slot::Green, "never-ready", 2)
        .await
        .unwrap();
    let refused = platform
        .wait_ready(Slot::Green, Duration::from_millis(300))
        .await
        .unwrap_err();
    match &refused {
        Error::Deadline { what, waited } => {
            assert!(what.contains("slot green"), "{what}");
            assert!(what.contains("0 of 2 instances ready"), "{what}");
            assert_eq!(*waited, Duration::from_millis(300));
        }
        other => panic!("expected a deadline, got {other:?}"),
    }
    let reply = fetch(&client(), &platform.front_url()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "v1"));
    let status = platform.status().await.unwrap();
    assert_eq!(
        (
            status.slot(Slot::Green).running,
            status.slot(Slot::Green).ready
        ),
        (2, 0)
    );
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_readiness_takes_an_instance_out_until_it_passes_again() {
    let shared = Arc::new(Shared::default());
    let platform = app_builder(&shared)
        .readiness_period(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    release(&platform, Slot::Blue, "v1", 1).await;
    let http = client();
    assert_eq!(
        fetch(&http, &platform.front_url()).await.status,
        StatusCode::OK
    );

    shared.unhealthy.store(true, Ordering::SeqCst);
    eventually("the instance leaving routing", || async {
        platform.status().await.unwrap().slot(Slot::Blue).ready == 0
    })
    .await;
    let reply = fetch(&http, &platform.front_url()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.slot().as_deref(), Some("blue"));
    assert_eq!(reply.body, "no ready instance in slot blue\n");
    assert_eq!(platform.status().await.unwrap().slot(Slot::Blue).running, 1);
    assert!(platform.traffic(Slot::Blue).await.unwrap().errors >= 1);

    shared.unhealthy.store(false, Ordering::SeqCst);
    platform.wait_ready(Slot::Blue, READY).await.unwrap();
    assert_eq!(
        fetch(&http, &platform.front_url()).await.status,
        StatusCode::OK
    );
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_endpoints_reach_one_slot_uncounted_and_counters_reset_at_deploy() {
    let (platform, _shared) = app_platform().await;
    let http = client();
    release(&platform, Slot::Blue, "v1", 1).await;
    platform.deploy(Slot::Green, "v2", 1).await.unwrap();
    platform.wait_ready(Slot::Green, READY).await.unwrap();

    let green_preview = platform.preview_url(Slot::Green).await.unwrap().unwrap();
    let blue_preview = platform.preview_url(Slot::Blue).await.unwrap().unwrap();
    assert!(green_preview.starts_with("http://127.0.0.1:"));
    for _ in 0..3 {
        let reply = fetch(&http, &green_preview).await;
        assert_eq!(
            (reply.slot().as_deref(), reply.body.as_str()),
            (Some("green"), "v2")
        );
        let reply = fetch(&http, &blue_preview).await;
        assert_eq!(
            (reply.slot().as_deref(), reply.body.as_str()),
            (Some("blue"), "v1")
        );
    }
    for _ in 0..5 {
        fetch(&http, &platform.front_url()).await;
    }
    assert_eq!(platform.traffic(Slot::Green).await.unwrap().requests, 0);
    assert_eq!(platform.traffic(Slot::Blue).await.unwrap().requests, 5);

    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    fetch(&http, &platform.front_url()).await;
    assert_eq!(platform.traffic(Slot::Green).await.unwrap().requests, 1);
    // A new release in blue starts blue's counters from zero.
    platform.deploy(Slot::Blue, "v3", 1).await.unwrap();
    let blue = platform.traffic(Slot::Blue).await.unwrap();
    assert_eq!((blue.requests, blue.latency.count()), (0, 0));
    assert_eq!(platform.traffic(Slot::Green).await.unwrap().requests, 1);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_and_empty_slots_answer_503() {
    let (platform, _shared) = app_platform().await;
    let http = client();
    let reply = fetch(&http, &platform.front_url()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.slots().is_empty());
    assert!(
        reply.body.starts_with("no release is routed"),
        "{}",
        reply.body
    );
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    let reply = fetch(&http, &platform.front_url()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.slot().as_deref(), Some("green"));
    let green = platform.traffic(Slot::Green).await.unwrap();
    assert_eq!((green.requests, green.errors), (1, 1));

    platform.route(Routing::Pooled).await.unwrap();
    let reply = fetch(&http, &platform.front_url()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, "no ready instance in either slot\n");
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_stay_behind_and_x_forwarded_for_is_added() {
    let (platform, _shared) = app_platform().await;
    release(&platform, Slot::Blue, "v1", 1).await;
    let request = Request::get(format!("{}/headers", platform.front_url()))
        .header("connection", "x-secret")
        .header("x-secret", "1")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-request-id", "42")
        .body(Full::default())
        .unwrap();
    let reply = try_send(&client(), request).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let seen: BTreeMap<&str, &str> = reply
        .body
        .lines()
        .filter_map(|line| line.split_once(": "))
        .collect();
    assert_eq!(seen.get("x-request-id"), Some(&"42"), "{seen:?}");
    assert_eq!(seen.get("x-forwarded-for"), Some(&"203.0.113.9, 127.0.0.1"));
    assert!(seen.contains_key("host"), "{seen:?}");
    for dropped in ["x-secret", "proxy-authorization", "connection"] {
        assert!(
            !seen.contains_key(dropped),
            "{dropped} was forwarded: {seen:?}"
        );
    }
    assert_eq!(reply.header("x-app"), Some("1"));
    assert_eq!(reply.header("keep-alive"), None);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_stream_through_the_switch() {
    let (platform, shared) = app_platform().await;
    let (first_tx, mut first_rx) = mpsc::unbounded_channel();
    *shared.first_chunks.lock().unwrap() = Some(first_tx);
    release(&platform, Slot::Blue, "v1", 1).await;

    let streaming: Client<HttpConnector, UnsyncBoxBody<Bytes, Infallible>> =
        Client::builder(TokioExecutor::new()).build_http();
    let (body_tx, body_rx) = mpsc::channel::<Bytes>(1);
    let chunks = futures_util::stream::unfold(body_rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let request = Request::post(format!("{}/upload", platform.front_url()))
        .body(StreamBody::new(chunks).boxed_unsync())
        .unwrap();
    let response = tokio::spawn(async move { streaming.request(request).await });
    body_tx.send(Bytes::from_static(b"first")).await.unwrap();
    // The app sees the first chunk while the rest is not even sent: nothing buffers it whole.
    let first = tokio::time::timeout(Duration::from_secs(10), first_rx.recv())
        .await
        .expect("the first chunk reaches the app before the body ends")
        .unwrap();
    assert_eq!(&first[..], b"first");
    body_tx.send(Bytes::from_static(b"second")).await.unwrap();
    drop(body_tx);
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"11");
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_adds_and_drains_the_newest_instances() {
    let (platform, _shared) = app_platform().await;
    release(&platform, Slot::Blue, "v1", 1).await;
    platform.scale(Slot::Blue, 3).await.unwrap();
    platform.wait_ready(Slot::Blue, READY).await.unwrap();
    let before: Vec<u64> = platform
        .instances(Slot::Blue)
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(before.len(), 3);
    platform.scale(Slot::Blue, 1).await.unwrap();
    let after: Vec<u64> = platform
        .instances(Slot::Blue)
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(after, [before[0]], "the oldest instance stays");
    let status = platform.status().await.unwrap();
    assert_eq!(
        (
            status.slot(Slot::Blue).desired,
            status.slot(Slot::Blue).running
        ),
        (1, 1)
    );
    let http = client();
    for _ in 0..3 {
        assert_eq!(fetch(&http, &platform.front_url()).await.body, "v1");
    }
    let refused = platform.scale(Slot::Green, 1).await.unwrap_err();
    assert!(
        refused.to_string().contains("deploy one before scaling"),
        "{refused}"
    );

    platform.shutdown().await;
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::None);
    assert_eq!(status.slot(Slot::Blue).running, 0);
    assert!(platform.deploy(Slot::Green, "v2", 1).await.is_err());
    assert!(
        try_get(&client(), &platform.front_url()).await.is_err(),
        "the front is closed"
    );
    platform.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

/// The child app's entry point: this test binary, re-executed by the process tests with
/// `ENGINE_OPS_CHILD=1`, runs only this (ignored) test, which then serves HTTP.
#[test]
#[ignore = "the child app of the process tests; they run it with ENGINE_OPS_CHILD=1"]
fn child_app_entry() {
    child_app::run_if_child();
}

fn child_spec(version: &str) -> ProcessSpec {
    let spec = child_app::spec(version);
    if version.starts_with("crash-on-start") {
        spec.env("CHILD_NEVER_READY", "1")
            .env("CHILD_EXIT_AFTER_MS", "150")
    } else {
        spec
    }
}

async fn process_platform() -> LocalPlatform {
    LocalPlatform::builder()
        .process(|version: &str| Ok(child_spec(version)))
        .readiness_interval(Duration::from_millis(10))
        .drain_timeout(Duration::from_secs(10))
        .termination_grace(Duration::from_secs(5))
        .build()
        .await
        .unwrap()
}

fn pids(platform: &LocalPlatform, slot: Slot) -> Vec<u32> {
    platform
        .instances(slot)
        .iter()
        .map(|i| i.pid.expect("a child process has a pid"))
        .collect()
}

/// Whether the OS still has process `pid` (a zombie counts: it was not reaped).
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn all_gone(pids: &[u32]) {
    eventually("every child process reaped", || async {
        pids.iter().all(|&pid| !process_exists(pid))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_processes_serve_and_are_reaped_after_stop_and_shutdown() {
    let platform = process_platform().await;
    release(&platform, Slot::Blue, "p1", 2).await;
    let blue_pids = pids(&platform, Slot::Blue);
    assert_eq!(blue_pids.len(), 2);
    assert!(blue_pids.iter().all(|&pid| process_exists(pid)));

    let http = client();
    let mut answered = BTreeSet::new();
    for _ in 0..6 {
        let reply = fetch(&http, &platform.front_url()).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.slot().as_deref(), Some("blue"));
        assert!(reply.body.starts_with("p1 pid="), "{}", reply.body);
        answered.insert(reply.header("x-child-pid").unwrap().parse::<u32>().unwrap());
    }
    assert_eq!(answered, blue_pids.iter().copied().collect());

    release(&platform, Slot::Green, "p2", 1).await;
    let green_pids = pids(&platform, Slot::Green);
    platform.stop(Slot::Blue).await.unwrap();
    // Stopped means reaped: no zombie is left, without waiting.
    for pid in &blue_pids {
        assert!(
            !process_exists(*pid),
            "child {pid} is still there after stop"
        );
    }
    assert_eq!(
        fetch(&http, &platform.front_url()).await.slot().as_deref(),
        Some("green")
    );

    platform.shutdown().await;
    for pid in &green_pids {
        assert!(
            !process_exists(*pid),
            "child {pid} is still there after shutdown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_child_is_reported_and_skipped() {
    let platform = process_platform().await;
    platform
        .deploy(Slot::Blue, "crash-on-start", 1)
        .await
        .unwrap();
    let crashed = platform.wait_ready(Slot::Blue, READY).await.unwrap_err();
    match &crashed {
        Error::InstanceExited {
            slot,
            version,
            status,
        } => {
            assert_eq!((*slot, version.as_str()), (Slot::Blue, "crash-on-start"));
            assert!(status.contains('3'), "{status}");
        }
        other => panic!("expected an exit, got {other:?}"),
    }
    assert_eq!(platform.status().await.unwrap().slot(Slot::Blue).running, 0);

    platform.deploy(Slot::Blue, "p1", 2).await.unwrap();
    platform.wait_ready(Slot::Blue, READY).await.unwrap();
    platform
        .route(Routing::All { slot: Slot::Blue })
        .await
        .unwrap();
    let instances = platform.instances(Slot::Blue);
    let (doomed, survivor) = (&instances[0], &instances[1]);
    let http = client();
    let reply = fetch(&http, &format!("http://{}/crash", doomed.addr)).await;
    assert_eq!(reply.body, "crashing");
    eventually("the crash being noticed", || async {
        platform.status().await.unwrap().slot(Slot::Blue).running == 1
    })
    .await;
    let status = platform.status().await.unwrap();
    assert_eq!(
        (
            status.slot(Slot::Blue).ready,
            status.slot(Slot::Blue).desired
        ),
        (1, 2)
    );
    let exited = platform
        .instances(Slot::Blue)
        .into_iter()
        .find(|i| i.id == doomed.id)
        .unwrap();
    assert_eq!(exited.exited.as_deref(), Some("exit status: 3"));
    assert!(
        !process_exists(doomed.pid.unwrap()),
        "the crashed child was reaped"
    );

    for _ in 0..10 {
        let reply = fetch(&http, &platform.front_url()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "routing skips the crashed child"
        );
        assert_eq!(
            reply.header("x-child-pid"),
            Some(survivor.pid.unwrap().to_string().as_str())
        );
    }
    let refused = platform.wait_ready(Slot::Blue, READY).await.unwrap_err();
    assert!(
        matches!(refused, Error::InstanceExited { .. }),
        "{refused:?}"
    );

    // Scaling replaces the crashed instance.
    platform.scale(Slot::Blue, 2).await.unwrap();
    platform.wait_ready(Slot::Blue, READY).await.unwrap();
    let all = pids(&platform, Slot::Blue);
    platform.route(Routing::None).await.unwrap();
    platform.shutdown().await;
    all_gone(&all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_platform_reaps_its_children() {
    let platform = process_platform().await;
    platform.deploy(Slot::Green, "p1", 2).await.unwrap();
    platform.wait_ready(Slot::Green, READY).await.unwrap();
    let children = pids(&platform, Slot::Green);
    assert!(children.iter().all(|&pid| process_exists(pid)));
    let front = platform.front_addr();
    drop(platform);
    all_gone(&children).await;
    eventually("the front port closing", || async {
        tokio::net::TcpStream::connect(front).await.is_err()
    })
    .await;
}
