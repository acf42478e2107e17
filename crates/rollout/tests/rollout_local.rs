//! The rollouts of issue 5, end to end on the local platform, each under a steady loopback
//! load through the front port: blue-green switch and rollback on demand, rolling updates
//! within their fenceposts, a canary through 10/50/100 %, and the ways a release fails (never
//! ready, failed smoke test, failing canary analysis, an operator's abort during a pause, a
//! crashing child process, an interrupted driver process). Every assertion is on what the
//! load observed (statuses, the `x-engine-ops-slot` header, bodies, send times) and on the
//! platform's status, never on durations.
//!
//! The process tests re-run this test binary: with `ENGINE_OPS_CHILD=1` it is the child app
//! of `support/child_app.rs`; with `ENGINE_OPS_DRIVER=1` it is a program embedding
//! `LocalPlatform` that is interrupted by `SIGTERM` (see [`driver_entry`]).

// Tests report what they measured on stderr (shown with --nocapture); the driver process
// talks to its test on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "support/child_app.rs"]
mod child_app;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use engine_ops_rollout::load::{LoadGenerator, LoadReport, RunningLoad, Sample};
use engine_ops_rollout::{
    Analysis, BlueGreen, Canary, CanaryStep, Error, Event, EventKind, EventStream, Gate,
    LocalPlatform, Outcome, Pause, Phase, Platform, ProcessSpec, Rolling, RolloutHandle,
    RolloutReport, Rollouts, Routing, Slot, Verdict,
};
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;

/// Requests per second of the steady load, over [`CONNECTIONS`] keep-alive connections.
const RATE: u32 = 250;
const CONNECTIONS: usize = 4;
/// How long an in-process test app takes to "start" (its readiness fails until then).
const STARTUP: Duration = Duration::from_millis(100);
/// A generous bound on any rollout of these tests: only reached when something is broken.
const ROLLOUT_DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// The in-process test app
// ---------------------------------------------------------------------------------------

/// One instance of `version`:
/// - `GET /`: the version in the body and in `x-version`; versions `broken*` answer `500`
///   (with the version as body) to every other request;
/// - `GET /health/ready`: `503` for the first [`STARTUP`], then `200`; always `503` for
///   versions `never-ready*`;
/// - `GET /smoke`: `200`, or `500` for versions `bad-smoke*`.
fn test_app(version: &str) -> Router {
    let started = Instant::now();
    let never_ready = version.starts_with("never-ready");
    let broken = version.starts_with("broken");
    let bad_smoke = version.starts_with("bad-smoke");
    let served = Arc::new(AtomicU64::new(0));
    let version = version.to_owned();
    let root = move || {
        let n = served.fetch_add(1, Ordering::SeqCst);
        let version = version.clone();
        async move {
            let status = if broken && n % 2 == 1 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            (status, [("x-version", version.clone())], version)
        }
    };
    Router::new()
        .route("/", get(root))
        .route(
            "/health/ready",
            get(move || async move {
                if !never_ready && started.elapsed() >= STARTUP {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }),
        )
        .route(
            "/smoke",
            get(move || async move {
                if bad_smoke {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
}

async fn app_platform() -> LocalPlatform {
    LocalPlatform::builder()
        .app(|version: &str| -> Result<Router, String> { Ok(test_app(version)) })
        .readiness_interval(Duration::from_millis(10))
        .drain_timeout(Duration::from_secs(5))
        .termination_grace(Duration::from_secs(5))
        .build()
        .await
        .expect("a local platform")
}

/// The rollouts of `platform` (a clone: the test keeps its own for status and shutdown).
fn rollouts_of(platform: &LocalPlatform) -> Rollouts {
    Rollouts::new(Arc::new(platform.clone()))
}

/// Releases `version` as the first release (nothing live: blue-green puts it in blue) and
/// checks that blue serves it with `replicas` ready instances.
async fn first_release(
    platform: &LocalPlatform,
    rollouts: &Rollouts,
    version: &str,
    replicas: u32,
) {
    let strategy = BlueGreen::builder().replicas(replicas).build().unwrap();
    let report = finish(rollouts.start(strategy, version).unwrap()).await;
    assert!(report.promoted(), "{report}");
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
    let blue = status.slot(Slot::Blue);
    assert_eq!(blue.version.as_deref(), Some(version));
    assert_eq!((blue.ready, blue.desired), (replicas, replicas));
}

/// An app platform with `v1` live in blue.
async fn v1_live(replicas: u32) -> (LocalPlatform, Rollouts) {
    let platform = app_platform().await;
    let rollouts = rollouts_of(&platform);
    first_release(&platform, &rollouts, "v1", replicas).await;
    (platform, rollouts)
}

// ---------------------------------------------------------------------------------------
// Following a rollout
// ---------------------------------------------------------------------------------------

/// Awaits a rollout's report; fails the test (after aborting it) if it takes longer than
/// [`ROLLOUT_DEADLINE`], which only a broken rollout does.
async fn finish(handle: RolloutHandle) -> RolloutReport {
    let controller = handle.controller();
    match tokio::time::timeout(ROLLOUT_DEADLINE, handle).await {
        Ok(result) => result.expect("the rollout (or its rollback) was carried out"),
        Err(_) => {
            controller.abort("the test's deadline passed");
            panic!(
                "the rollout did not end within {ROLLOUT_DEADLINE:?}; phase {}",
                controller.phase()
            );
        }
    }
}

/// Records every event of a rollout with the instant this test received it. An event is
/// pushed after the operation it reports returned, so a request sent after the instant a
/// `Traffic` event was received is routed by that routing (or a later one).
fn follow(handle: &RolloutHandle) -> JoinHandle<Vec<(Instant, Event)>> {
    let mut events = handle.events();
    tokio::spawn(async move {
        let mut received = Vec::new();
        while let Some(event) = events.next().await {
            received.push((Instant::now(), event));
        }
        received
    })
}

/// When the routing change to `routing` was received.
fn routed_at(events: &[(Instant, Event)], routing: Routing) -> Instant {
    events
        .iter()
        .find(|(_, event)| event.kind == EventKind::Traffic(routing))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("no traffic event for {routing}: {events:#?}"))
}

/// Waits for the rollout's next `Paused` phase and returns its reason.
async fn next_pause(events: &mut EventStream) -> String {
    let waiting = async {
        while let Some(event) = events.next().await {
            if let EventKind::Phase {
                phase: Phase::Paused,
                reason,
            } = event.kind
            {
                return reason.unwrap_or_default();
            }
        }
        panic!("the rollout ended without pausing");
    };
    tokio::time::timeout(ROLLOUT_DEADLINE, waiting)
        .await
        .expect("the rollout paused")
}

fn rolled_back_reason(report: &RolloutReport) -> &str {
    match &report.outcome {
        Outcome::RolledBack { reason } => reason,
        Outcome::Promoted => panic!("expected a rollback, the rollout was promoted: {report}"),
    }
}

fn event_lines(report: &RolloutReport) -> String {
    report
        .events
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// The steady load, and a client that looks at every response in detail
// ---------------------------------------------------------------------------------------

/// One response seen by the [`Observer`].
#[derive(Debug)]
struct Seen {
    sent_at: Instant,
    /// Status, every value of the slot header, body; or the transport error.
    reply: Result<(u16, Vec<String>, String), String>,
}

/// One more keep-alive client beside the load generator, sending a request every few
/// milliseconds and keeping what the generator does not: every value of the slot header and
/// the body, to check that each response names the version of the slot that answered it.
struct Observer {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<Seen>>,
}

impl Observer {
    fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let client: Client<HttpConnector, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let mut seen = Vec::new();
            while !stopping.load(Ordering::SeqCst) {
                let sent_at = Instant::now();
                let request = http::Request::get(url.as_str()).body(Empty::new()).unwrap();
                let reply = async {
                    let response = client.request(request).await.map_err(|e| e.to_string())?;
                    let status = response.status().as_u16();
                    let slots = response
                        .headers()
                        .get_all(LocalPlatform::SLOT_HEADER)
                        .iter()
                        .map(|v| v.to_str().unwrap_or("?").to_owned())
                        .collect();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    Ok((status, slots, String::from_utf8_lossy(&body).into_owned()))
                };
                let reply = tokio::time::timeout(Duration::from_secs(5), reply)
                    .await
                    .unwrap_or_else(|_| Err("timed out after 5s".to_owned()));
                seen.push(Seen { sent_at, reply });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        });
        Self { stop, task }
    }

    async fn stop(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the observer ran")
    }
}

/// The steady load of a test: the load generator at [`RATE`] plus an [`Observer`].
struct Traffic {
    load: RunningLoad,
    observer: Observer,
    started: Instant,
}

impl Traffic {
    fn start(platform: &LocalPlatform) -> Self {
        let url = format!("{}/", platform.front_url());
        let started = Instant::now();
        let load = LoadGenerator::new(&url)
            .rate(RATE)
            .connections(CONNECTIONS)
            .start();
        let observer = Observer::start(url);
        Self {
            load,
            observer,
            started,
        }
    }

    /// Lets the load run on what is live before the test changes anything.
    async fn warm_up(&self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(self.load.sent() > 0, "the load is running");
    }

    async fn stop(self) -> Observed {
        // Some load after the last change, so that "after" is never empty.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let load = self.load.stop().await;
        let seen = self.observer.stop().await;
        let observed = Observed { load, seen };
        eprintln!(
            "load: {} requests in {:.2?} ({} blue, {} green, {} failed); observer: {} requests",
            observed.load.sent(),
            self.started.elapsed(),
            observed.load.answered_by(Slot::Blue),
            observed.load.answered_by(Slot::Green),
            observed.load.failed(),
            observed.seen.len()
        );
        assert!(
            observed.load.sent() >= 100,
            "the load ran: {} requests",
            observed.load.sent()
        );
        observed
    }
}

/// What the load and the observer saw.
struct Observed {
    load: LoadReport,
    seen: Vec<Seen>,
}

impl Observed {
    /// Not one request failed (no `5xx`, no transport error, no timeout).
    fn assert_no_failures(&self) {
        let failures: Vec<&Sample> = self.load.failures().collect();
        assert!(
            failures.is_empty(),
            "{} of {} requests failed; the first: {:?}",
            failures.len(),
            self.load.sent(),
            &failures[..failures.len().min(3)]
        );
        for seen in &self.seen {
            match &seen.reply {
                Ok((status, _, body)) => assert!(*status < 500, "observer got {status}: {body}"),
                Err(error) => panic!("an observer request failed: {error}"),
            }
        }
    }

    /// Every response carries exactly one slot header, and its body names the version that
    /// runs in that slot (`versions`).
    fn assert_versions(&self, versions: &[(Slot, &str)]) {
        for sample in &self.load.samples {
            if sample.status.is_some() {
                assert!(
                    sample.slot.is_some(),
                    "a response without a slot: {sample:?}"
                );
            }
        }
        let mut answered = 0;
        for seen in &self.seen {
            let Ok((status, slots, body)) = &seen.reply else {
                continue;
            };
            assert_eq!(slots.len(), 1, "exactly one slot header: {seen:?}");
            let slot = match slots[0].as_str() {
                "blue" => Slot::Blue,
                "green" => Slot::Green,
                other => panic!("unknown slot {other:?}: {seen:?}"),
            };
            let (_, version) = versions
                .iter()
                .find(|(s, _)| *s == slot)
                .unwrap_or_else(|| panic!("{slot} answered, but it runs nothing: {seen:?}"));
            // In-process apps answer the version; child processes `{version} pid={pid}`.
            assert_eq!(
                body.split_whitespace().next(),
                Some(*version),
                "{slot} runs {version}, but answered {status} {body:?}"
            );
            answered += 1;
        }
        assert!(answered > 0, "the observer saw responses");
    }

    /// Every request sent at or after `since` was answered by `slot`; returns how many.
    fn only(&self, slot: Slot, since: Instant) -> usize {
        let after: Vec<&Sample> = self.load.sent_after(since).collect();
        for sample in &after {
            assert_eq!(
                sample.slot,
                Some(slot),
                "a request sent {:?} after the change was not answered by {slot}: {sample:?}",
                sample.sent_at.duration_since(since)
            );
        }
        for seen in self.seen.iter().filter(|s| s.sent_at >= since) {
            if let Ok((_, slots, _)) = &seen.reply {
                assert_eq!(slots, &[slot.as_str()], "{seen:?}");
            }
        }
        assert!(!after.is_empty(), "requests were sent after the change");
        after.len()
    }

    /// Requests answered by `slot` among those sent before `until`.
    fn answered_before(&self, slot: Slot, until: Instant) -> usize {
        self.load
            .samples
            .iter()
            .filter(|s| s.sent_at < until && s.slot == Some(slot))
            .count()
    }

    /// `(answered by canary, answered)` among requests (of the load and the observer) sent
    /// in `[from, to)`.
    fn share(&self, canary: Slot, from: Instant, to: Instant) -> (usize, usize) {
        let within = |at: Instant| at >= from && at < to;
        let mut hits = 0;
        let mut total = 0;
        for sample in self.load.samples.iter().filter(|s| within(s.sent_at)) {
            if let Some(slot) = sample.slot {
                total += 1;
                hits += usize::from(slot == canary);
            }
        }
        for seen in self.seen.iter().filter(|s| within(s.sent_at)) {
            if let Ok((_, slots, _)) = &seen.reply {
                total += 1;
                hits += usize::from(slots.first().map(String::as_str) == Some(canary.as_str()));
            }
        }
        (hits, total)
    }
}

// ---------------------------------------------------------------------------------------
// 1, 2. Blue-green: the switch and the rollback on demand
// ---------------------------------------------------------------------------------------

/// Blue-green of `v2` into green (2 instances, a smoke gate, a minute of standby); returns
/// the report and when the switch's traffic event was received.
async fn blue_green_v2(rollouts: &Rollouts) -> (RolloutReport, Instant) {
    let strategy = BlueGreen::builder()
        .replicas(2)
        .gate(Gate::http("smoke", "/smoke"))
        .standby(Duration::from_secs(60))
        .build()
        .unwrap();
    let handle = rollouts.start(strategy, "v2").unwrap();
    let events = follow(&handle);
    let report = finish(handle).await;
    let events = events.await.unwrap();
    assert!(report.promoted(), "{report}\n{}", event_lines(&report));
    let switched = routed_at(&events, Routing::All { slot: Slot::Green });
    (report, switched)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_to_green_without_failing_a_request() {
    let (platform, rollouts) = v1_live(2).await;
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;

    let (report, switched) = blue_green_v2(&rollouts).await;
    let observed = traffic.stop().await;
    eprintln!("{report}");

    assert_eq!(
        (report.from_slot, report.to_slot),
        (Some(Slot::Blue), Some(Slot::Green))
    );
    assert!(report.switch.is_some(), "the switch is timed");
    let standby = report.standby.as_ref().expect("blue stays on standby");
    assert_eq!(
        (standby.slot, standby.version.as_deref()),
        (Slot::Blue, Some("v1"))
    );
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Green });
    let green = status.slot(Slot::Green);
    assert_eq!(
        (green.version.as_deref(), green.ready, green.desired),
        (Some("v2"), 2, 2)
    );
    assert_eq!(status.slot(Slot::Blue).ready, 2, "blue is kept on standby");

    observed.assert_no_failures();
    observed.assert_versions(&[(Slot::Blue, "v1"), (Slot::Green, "v2")]);
    assert!(
        observed.answered_before(Slot::Blue, switched) > 0,
        "blue served until the switch"
    );
    let after = observed.only(Slot::Green, switched);
    eprintln!("{after} requests sent after the switch, all answered by green");
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_on_demand_switches_back_to_blue_without_failing_a_request() {
    let (platform, rollouts) = v1_live(2).await;
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;
    let (_, switched) = blue_green_v2(&rollouts).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let rollback = rollouts.rollback().await.unwrap();
    let rolled_back = Instant::now();
    let observed = traffic.stop().await;
    eprintln!("{rollback}");

    assert_eq!(
        (rollback.from_slot, rollback.to_slot),
        (Slot::Green, Slot::Blue)
    );
    assert_eq!(
        (
            rollback.from_version.as_deref(),
            rollback.to_version.as_deref()
        ),
        (Some("v2"), Some("v1"))
    );
    assert_eq!(rollback.warning, None);
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
    assert_eq!(status.slot(Slot::Blue).ready, 2);
    let green = status.slot(Slot::Green);
    assert_eq!((green.version.as_deref(), green.running), (None, 0));

    observed.assert_no_failures();
    observed.assert_versions(&[(Slot::Blue, "v1"), (Slot::Green, "v2")]);
    let green_answers = observed
        .load
        .samples
        .iter()
        .filter(|s| s.sent_at >= switched && s.sent_at < rolled_back)
        .filter(|s| s.slot == Some(Slot::Green))
        .count();
    assert!(
        green_answers > 0,
        "green served between switch and rollback"
    );
    let after = observed.only(Slot::Blue, rolled_back);
    eprintln!("{after} requests sent after the rollback, all answered by blue");

    // Green was stopped: there is nothing to roll back to any more.
    let again = rollouts.rollback().await.unwrap_err();
    assert!(
        matches!(&again, Error::NoRollbackTarget { reason } if reason.contains("slot green runs nothing")),
        "{again}"
    );
    platform.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 3. Rolling updates
// ---------------------------------------------------------------------------------------

/// What a task polling `platform.status()` every couple of milliseconds saw.
#[derive(Debug)]
struct Bounds {
    polls: usize,
    /// The fewest ready instances, both slots together.
    min_ready: u32,
    /// The most running instances, both slots together.
    max_running: u32,
    /// Whether both slots ran instances at once.
    mixed: bool,
}

fn watch_bounds(platform: &LocalPlatform, stop: &Arc<AtomicBool>) -> JoinHandle<Bounds> {
    let (platform, stop) = (platform.clone(), Arc::clone(stop));
    tokio::spawn(async move {
        let mut bounds = Bounds {
            polls: 0,
            min_ready: u32::MAX,
            max_running: 0,
            mixed: false,
        };
        while !stop.load(Ordering::SeqCst) {
            let status = platform.status().await.unwrap();
            let (blue, green) = (status.slot(Slot::Blue), status.slot(Slot::Green));
            bounds.polls += 1;
            bounds.min_ready = bounds.min_ready.min(blue.ready + green.ready);
            bounds.max_running = bounds.max_running.max(blue.running + green.running);
            bounds.mixed |= blue.running > 0 && green.running > 0;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        bounds
    })
}

async fn rolling_update(surge: u32, unavailable: u32) {
    const REPLICAS: u32 = 4;
    let (platform, rollouts) = v1_live(REPLICAS).await;
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;

    let stop = Arc::new(AtomicBool::new(false));
    let bounds = watch_bounds(&platform, &stop);
    let strategy = Rolling::builder()
        .replicas(REPLICAS)
        .max_surge(surge)
        .max_unavailable(unavailable)
        .build()
        .unwrap();
    let report = finish(rollouts.start(strategy, "v2").unwrap()).await;
    let done = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let bounds = bounds.await.unwrap();
    let observed = traffic.stop().await;
    eprintln!("{report}\nstatus while updating: {bounds:?}");

    assert!(report.promoted(), "{report}\n{}", event_lines(&report));
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Green });
    let green = status.slot(Slot::Green);
    assert_eq!(
        (green.version.as_deref(), green.ready, green.desired),
        (Some("v2"), REPLICAS, REPLICAS)
    );
    assert_eq!(
        status.slot(Slot::Blue).running,
        0,
        "the old release is gone"
    );

    assert!(bounds.polls >= 10, "the status was polled: {bounds:?}");
    assert!(bounds.mixed, "both releases ran side by side: {bounds:?}");
    assert!(
        bounds.min_ready >= REPLICAS - unavailable,
        "ready fell below replicas - maxUnavailable ({}): {bounds:?}",
        REPLICAS - unavailable
    );
    assert!(
        bounds.max_running <= REPLICAS + surge,
        "running exceeded replicas + maxSurge ({}): {bounds:?}",
        REPLICAS + surge
    );

    observed.assert_no_failures();
    observed.assert_versions(&[(Slot::Blue, "v1"), (Slot::Green, "v2")]);
    observed.only(Slot::Green, done);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_with_surge_1_unavailable_0_stays_within_bounds() {
    rolling_update(1, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_with_surge_0_unavailable_1_stays_within_bounds() {
    rolling_update(0, 1).await;
}

// ---------------------------------------------------------------------------------------
// 4. Canary
// ---------------------------------------------------------------------------------------

/// Two windows of 700 ms; one without traffic (a machine too busy to send) is tolerated.
fn quick_analysis() -> Analysis {
    Analysis {
        interval: Duration::from_millis(700),
        count: 2,
        min_requests: 5,
        inconclusive_limit: 1,
        ..Analysis::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_through_10_50_100_is_promoted_with_the_weights_observed() {
    let (platform, rollouts) = v1_live(2).await;
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;

    let canary = Canary::builder()
        .replicas(2)
        .steps([
            CanaryStep::SetWeight(10),
            CanaryStep::Analysis(quick_analysis()),
            CanaryStep::SetWeight(50),
            CanaryStep::Analysis(quick_analysis()),
            CanaryStep::SetWeight(100),
        ])
        .build()
        .unwrap();
    let handle = rollouts.start(canary, "v2").unwrap();
    let events = follow(&handle);
    let report = finish(handle).await;
    let done = Instant::now();
    let events = events.await.unwrap();
    let observed = traffic.stop().await;
    eprintln!("{report}\n{}", event_lines(&report));

    assert!(report.promoted(), "{report}");
    let verdicts: Vec<&Verdict> = report
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Analysis { verdict, .. } => Some(verdict),
            _ => None,
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            &Verdict::Pending,
            &Verdict::Pass,
            &Verdict::Pending,
            &Verdict::Pass
        ]
    );
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Green });
    assert_eq!(status.slot(Slot::Green).ready, 2);
    assert_eq!(status.slot(Slot::Blue).running, 0);

    observed.assert_no_failures();
    observed.assert_versions(&[(Slot::Blue, "v1"), (Slot::Green, "v2")]);
    // Send times blur the step boundaries: leave a margin on both sides of each step.
    let split = |percent| Routing::Split {
        canary: Slot::Green,
        percent,
    };
    let margin = Duration::from_millis(150);
    let at_10 = routed_at(&events, split(10));
    let at_50 = routed_at(&events, split(50));
    let at_100 = routed_at(&events, split(100));
    let (hits, total) = observed.share(Slot::Green, at_10 + margin, at_50 - margin);
    let share_10 = hits as f64 / total as f64;
    let (hits_50, total_50) = observed.share(Slot::Green, at_50 + margin, at_100 - margin);
    let share_50 = hits_50 as f64 / total_50 as f64;
    eprintln!(
        "10% step: {hits} of {total} answered by the canary ({:.1}%); 50% step: {hits_50} of {total_50} ({:.1}%)",
        share_10 * 100.0,
        share_50 * 100.0
    );
    assert!(total >= 100, "enough requests in the 10% step: {total}");
    assert!(
        (0.05..=0.15).contains(&share_10),
        "about 10% to the canary: {hits} of {total}"
    );
    assert!(
        total_50 >= 100,
        "enough requests in the 50% step: {total_50}"
    );
    assert!(
        (0.40..=0.60).contains(&share_50),
        "about 50% to the canary: {hits_50} of {total_50}"
    );
    assert!(
        observed.answered_before(Slot::Blue, at_10) > 0,
        "blue served before the canary"
    );
    observed.only(Slot::Green, done);
    platform.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 5, 6. Releases that never get traffic: never ready, failed smoke tests
// ---------------------------------------------------------------------------------------

/// Green is stopped and forgotten: no instance, no version.
async fn assert_green_gone(platform: &LocalPlatform) {
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
    let green = status.slot(Slot::Green);
    assert_eq!(
        (green.version.as_deref(), green.desired, green.running),
        (None, 0, 0),
        "{status:?}"
    );
    assert!(platform.instances(Slot::Green).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_that_never_becomes_ready_is_rolled_back_at_its_deadline() {
    let (platform, rollouts) = v1_live(2).await;
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;

    let strategy = BlueGreen::builder()
        .replicas(2)
        .ready_deadline(Duration::from_millis(500))
        .build()
        .unwrap();
    let report = finish(rollouts.start(strategy, "never-ready-v2").unwrap()).await;
    let observed = traffic.stop().await;
    eprintln!("{report}");

    let reason = rolled_back_reason(&report);
    assert!(
        reason.contains("slot green ready") && reason.contains("did not happen within 500ms"),
        "{reason}"
    );
    assert_eq!(report.switch, None, "traffic never switched");
    assert_green_gone(&platform).await;
    assert_eq!(platform.status().await.unwrap().slot(Slot::Blue).ready, 2);

    observed.assert_no_failures();
    observed.assert_versions(&[(Slot::Blue, "v1")]);
    assert_eq!(observed.load.answered_by(Slot::Green), 0);
    observed.only(Slot::Blue, observed.load.samples[0].sent_at);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_smoke_tests_roll_back_before_any_traffic_reaches_green() {
    let (platform, rollouts) = v1_live(2).await;
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;

    // An HTTP smoke test on a path that answers 500 on this release.
    let http_gate = BlueGreen::builder()
        .replicas(2)
        .gate(Gate::http("smoke", "/smoke"))
        .build()
        .unwrap();
    let http_report = finish(rollouts.start(http_gate, "bad-smoke-v2").unwrap()).await;
    assert_green_gone(&platform).await;

    // A custom check that refuses the release.
    let fn_gate = BlueGreen::builder()
        .replicas(2)
        .gate(Gate::from_fn("signature", |ctx| async move {
            Err(format!("{} in {} is not signed", ctx.version, ctx.slot))
        }))
        .build()
        .unwrap();
    let fn_report = finish(rollouts.start(fn_gate, "v2").unwrap()).await;
    assert_green_gone(&platform).await;
    let observed = traffic.stop().await;
    eprintln!("{http_report}\n{fn_report}");

    let reason = rolled_back_reason(&http_report);
    assert!(
        reason.starts_with("gate smoke failed: GET /smoke: status 500"),
        "{reason}"
    );
    assert_eq!(
        rolled_back_reason(&fn_report),
        "gate signature failed: v2 in green is not signed"
    );
    for report in [&http_report, &fn_report] {
        assert_eq!(report.switch, None, "traffic never switched");
        let gates: Vec<bool> = report
            .events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::Gate { passed, .. } => Some(*passed),
                _ => None,
            })
            .collect();
        assert_eq!(gates, [false], "{}", event_lines(report));
        assert_eq!(report.traffic(Slot::Green).map(|t| t.requests), Some(0));
    }

    observed.assert_no_failures();
    observed.assert_versions(&[(Slot::Blue, "v1")]);
    assert_eq!(
        observed.load.answered_by(Slot::Green),
        0,
        "only blue answered"
    );
    observed.only(Slot::Blue, observed.load.samples[0].sent_at);
    platform.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 7. A failing canary
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_with_half_its_requests_failing_is_aborted_at_the_first_analysis() {
    let (platform, rollouts) = v1_live(2).await;
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;

    let analysis = Analysis {
        interval: Duration::from_secs(1),
        count: 3,
        max_error_rate: 0.05,
        min_requests: 5,
        ..Analysis::default()
    };
    let canary = Canary::builder()
        .replicas(2)
        .steps([
            CanaryStep::SetWeight(20),
            CanaryStep::Analysis(analysis),
            CanaryStep::SetWeight(50),
            CanaryStep::SetWeight(100),
        ])
        .build()
        .unwrap();
    let handle = rollouts.start(canary, "broken-v2").unwrap();
    let events = follow(&handle);
    let report = finish(handle).await;
    let events = events.await.unwrap();
    let observed = traffic.stop().await;
    eprintln!("{report}\n{}", event_lines(&report));

    // Exactly one analysis, failed, then the abort.
    let aborted = report
        .events
        .iter()
        .position(|e| {
            matches!(
                e.kind,
                EventKind::Phase {
                    phase: Phase::Aborted,
                    ..
                }
            )
        })
        .expect("an aborted phase");
    let analyses: Vec<&EventKind> = report.events[..aborted]
        .iter()
        .map(|e| &e.kind)
        .filter(|kind| matches!(kind, EventKind::Analysis { .. }))
        .collect();
    assert_eq!(analyses.len(), 1, "{}", event_lines(&report));
    let EventKind::Analysis {
        index,
        measurement,
        verdict,
        ..
    } = analyses[0]
    else {
        unreachable!()
    };
    assert_eq!(*index, 1);
    assert!(matches!(verdict, Verdict::Fail { .. }), "{verdict:?}");
    assert!(
        measurement.errors > 0 && measurement.errors < measurement.requests,
        "{measurement:?}"
    );
    assert!(
        rolled_back_reason(&report).starts_with("analysis of green failed"),
        "{report}"
    );
    assert!(
        !report.events.iter().any(|e| e.kind
            == EventKind::Traffic(Routing::Split {
                canary: Slot::Green,
                percent: 50
            })),
        "the canary never got 50%"
    );

    // Back to all traffic on the stable slot (the canary's weight 0), the canary stopped.
    let back = routed_at(&events, Routing::All { slot: Slot::Blue });
    assert_eq!(
        report.events.last().map(|e| &e.kind),
        Some(&EventKind::Phase {
            phase: Phase::RolledBack,
            reason: Some("v1 in blue serves again".to_owned())
        })
    );
    assert_green_gone(&platform).await;

    // The only failures: the canary's own 500s, before the rollback.
    let failures: Vec<&Sample> = observed.load.failures().collect();
    assert!(
        !failures.is_empty(),
        "the load saw the canary's injected errors"
    );
    for failure in &failures {
        assert_eq!(
            (failure.status, failure.slot, failure.error.as_deref()),
            (Some(500), Some(Slot::Green), Some("broken-v2")),
            "a failure that is not the canary's own: {failure:?}"
        );
        assert!(
            failure.sent_at < back,
            "a request failed after the rollback: {failure:?}"
        );
    }
    eprintln!("{} canary errors, all before the rollback", failures.len());
    observed.assert_versions(&[(Slot::Blue, "v1"), (Slot::Green, "broken-v2")]);
    observed.only(Slot::Blue, back);
    platform.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 8. One rollout at a time; an abort during a pause acts at once
// ---------------------------------------------------------------------------------------

fn assert_busy(result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(Error::Busy { running }) => {
            assert_eq!(running, "canary to v2");
        }
        other => panic!("expected Error::Busy, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_rollout_keeps_others_out_and_an_abort_acts_at_once() {
    let (platform, rollouts) = v1_live(2).await;
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;

    let canary = Canary::builder()
        .replicas(2)
        .steps([
            CanaryStep::SetWeight(10),
            CanaryStep::Pause(Pause::UntilResumed),
            CanaryStep::SetWeight(50),
            CanaryStep::Pause(Pause::For(Duration::from_secs(3600))),
            CanaryStep::SetWeight(100),
        ])
        .build()
        .unwrap();
    let handle = rollouts.start(canary, "v2").unwrap();
    let mut events = handle.events();

    let first = next_pause(&mut events).await;
    assert!(first.starts_with("until resumed"), "{first}");
    assert_eq!(handle.phase(), Phase::Paused);
    assert_busy(rollouts.start(BlueGreen::builder().build().unwrap(), "v3"));
    assert_busy(rollouts.rollback().await);

    assert!(handle.resume(), "the rollout was paused");
    let second = next_pause(&mut events).await;
    assert!(second.starts_with("for 3600s"), "{second}");
    assert_busy(rollouts.start(BlueGreen::builder().build().unwrap(), "v3"));

    let asked = Instant::now();
    handle.abort("operator: stop the release");
    let report = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the abort ends the hour-long pause at once")
        .unwrap();
    let ended = Instant::now();
    eprintln!(
        "the rollout ended {:?} after the abort\n{report}",
        asked.elapsed()
    );
    let observed = traffic.stop().await;

    assert_eq!(
        rolled_back_reason(&report),
        "abort requested: operator: stop the release"
    );
    assert_eq!(rollouts.running(), None, "the next rollout may start");
    assert_green_gone(&platform).await;
    observed.assert_no_failures();
    observed.assert_versions(&[(Slot::Blue, "v1"), (Slot::Green, "v2")]);
    observed.only(Slot::Blue, ended);
    platform.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 9. Child processes: a green child crashes while green is awaited
// ---------------------------------------------------------------------------------------

/// The child app's entry point: this test binary, re-executed with `ENGINE_OPS_CHILD=1`,
/// runs only this (ignored) test, which then serves HTTP.
#[test]
#[ignore = "the child app of the process tests; they run it with ENGINE_OPS_CHILD=1"]
fn child_app_entry() {
    child_app::run_if_child();
}

/// A child process of this binary serving `version`. `crash` makes it never ready and exit
/// (status 3) after 100 ms.
fn child_spec(version: &str, crash: bool) -> ProcessSpec {
    let spec = child_app::spec(version);
    if crash {
        spec.env("CHILD_NEVER_READY", "1")
            .env("CHILD_EXIT_AFTER_MS", "100")
    } else {
        spec
    }
}

/// A platform of child processes; of version `v2-crash`, the first instance crashes.
async fn process_platform() -> LocalPlatform {
    let crashes = AtomicUsize::new(0);
    LocalPlatform::builder()
        .process(move |version: &str| {
            let crash = version == "v2-crash" && crashes.fetch_add(1, Ordering::SeqCst) == 0;
            Ok(child_spec(version, crash))
        })
        .readiness_interval(Duration::from_millis(10))
        .drain_timeout(Duration::from_secs(5))
        .termination_grace(Duration::from_secs(5))
        .build()
        .await
        .expect("a local platform")
}

/// The state of process `pid` (`R`, `S`, `Z` for a zombie, …), `None` once it is gone.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

fn assert_gone(pids: &BTreeSet<u32>, what: &str) {
    for &pid in pids {
        if let Some(state) = process_state(pid) {
            panic!("{what}: child {pid} is still there (state {state}; Z is an unreaped zombie)");
        }
    }
}

fn pids(platform: &LocalPlatform, slot: Slot) -> BTreeSet<u32> {
    platform
        .instances(slot)
        .iter()
        .filter_map(|instance| instance.pid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_child_that_crashes_while_awaited_is_rolled_back_and_reaped() {
    let platform = process_platform().await;
    let rollouts = rollouts_of(&platform);
    first_release(&platform, &rollouts, "v1", 2).await;
    let blue = pids(&platform, Slot::Blue);
    assert_eq!(blue.len(), 2);
    let traffic = Traffic::start(&platform);
    traffic.warm_up().await;

    // Every green pid, captured while the rollout runs.
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let capture = {
        let (platform, seen, stop) = (platform.clone(), Arc::clone(&seen), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                seen.lock().unwrap().extend(pids(&platform, Slot::Green));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let strategy = BlueGreen::builder().replicas(2).build().unwrap();
    let report = finish(rollouts.start(strategy, "v2-crash").unwrap()).await;
    stop.store(true, Ordering::SeqCst);
    capture.await.unwrap();
    let observed = traffic.stop().await;
    let green: BTreeSet<u32> = seen.lock().unwrap().clone();
    eprintln!("{report}\ngreen children seen: {green:?}");

    let reason = rolled_back_reason(&report);
    assert_eq!(
        reason,
        format!(
            "an instance of v2-crash in slot green exited: exit status: {}",
            child_app::CRASH_STATUS
        )
    );
    assert_eq!(green.len(), 2, "both green children were seen running");
    assert_gone(&green, "after the rollback");
    assert_green_gone(&platform).await;
    assert_eq!(pids(&platform, Slot::Blue), blue, "blue kept its children");
    assert!(
        blue.iter()
            .all(|&pid| process_state(pid).is_some_and(|s| s != 'Z'))
    );

    observed.assert_no_failures();
    observed.assert_versions(&[(Slot::Blue, "v1")]);
    assert_eq!(observed.load.answered_by(Slot::Green), 0);
    observed.only(Slot::Blue, observed.load.samples[0].sent_at);
    platform.shutdown().await;
    assert_gone(&blue, "after shutdown");
}

// ---------------------------------------------------------------------------------------
// 10. An interrupted driver process
// ---------------------------------------------------------------------------------------

const DRIVER_ENV: &str = "ENGINE_OPS_DRIVER";

/// The driver's entry point: this test binary, re-executed with `ENGINE_OPS_DRIVER=1`, runs
/// only this (ignored) test, which then acts as a program embedding `LocalPlatform`.
#[test]
#[ignore = "the driver of the interrupted-rollout test; it runs it with ENGINE_OPS_DRIVER=1"]
fn driver_entry() {
    if std::env::var_os(DRIVER_ENV).is_none_or(|v| v != "1") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(drive_until_signalled());
    std::process::exit(code);
}

/// **How a program embedding `LocalPlatform` handles signals.** Its instances are child
/// processes, which outlive their parent unless it stops them, so:
///
/// 1. install the `SIGTERM` and `SIGINT` (Ctrl-C) handlers *first*, before any child runs
///    (a signal that arrives before them kills the program with its children left behind);
/// 2. on a signal, abort the running rollout through its [`RolloutController`]
///    (`handle.controller()`, cheap to clone) and await its report: the abort ends a pause
///    at once and the rollout rolls back, stopping (and reaping) the children it started;
/// 3. then `platform.shutdown().await`, which stops every remaining child (`SIGTERM`, then
///    `SIGKILL` after the termination grace) and returns once each is reaped;
/// 4. only then exit.
///
/// Prints `PIDS <pid>…` (every child, once the rollout is paused) and, at the end,
/// `DONE <outcome>`. Returns the exit code.
///
/// [`RolloutController`]: engine_ops_rollout::RolloutController
async fn drive_until_signalled() -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        println!("ERROR cannot install the signal handlers");
        return 1;
    };
    let platform = match LocalPlatform::builder()
        .process(|version: &str| Ok(child_spec(version, false)))
        .readiness_interval(Duration::from_millis(10))
        .drain_timeout(Duration::from_secs(5))
        .termination_grace(Duration::from_secs(5))
        .build()
        .await
    {
        Ok(platform) => platform,
        Err(error) => {
            println!("ERROR {error}");
            return 1;
        }
    };
    let rollouts = rollouts_of(&platform);
    let result = run_paused_rollout(&platform, &rollouts, async {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            () = tokio::time::sleep(Duration::from_secs(60)) => "nobody signalled within 60 s",
        }
    })
    .await;
    // Whatever happened, no child outlives the driver.
    platform.shutdown().await;
    match result {
        Ok(outcome) => {
            println!("DONE {outcome}");
            0
        }
        Err(error) => {
            println!("ERROR {error}");
            1
        }
    }
}

/// Releases `v1` (2 children in blue), starts a canary of `v2` that pauses (1 child in
/// green), prints the children's pids, and on `signalled` aborts the rollout and awaits its
/// rollback.
async fn run_paused_rollout(
    platform: &LocalPlatform,
    rollouts: &Rollouts,
    signalled: impl std::future::Future<Output = &'static str>,
) -> Result<Outcome, Error> {
    let first = BlueGreen::builder().replicas(2).build()?;
    let report = rollouts.start(first, "v1")?.await?;
    if !report.promoted() {
        return Err(Error::Aborted {
            reason: format!("the first release was not promoted: {report}"),
        });
    }
    let canary = Canary::builder()
        .replicas(2)
        .step(CanaryStep::SetWeight(20))
        .step(CanaryStep::Pause(Pause::UntilResumed))
        .build()?;
    let handle = rollouts.start(canary, "v2")?;
    let controller = handle.controller();
    let mut events = handle.events();
    while let Some(event) = events.next().await {
        if matches!(
            event.kind,
            EventKind::Phase {
                phase: Phase::Paused,
                ..
            }
        ) {
            break;
        }
    }
    let children: Vec<String> = Slot::ALL
        .iter()
        .flat_map(|&slot| pids(platform, slot))
        .map(|pid| pid.to_string())
        .collect();
    println!("PIDS {}", children.join(" "));
    let _ = std::io::stdout().flush();

    let signal = signalled.await;
    controller.abort(format!("the driver received {signal}"));
    let report = handle.await?;
    Ok(report.outcome)
}

/// Sends `SIGTERM` to `pid` with `kill` (no `unsafe`, no `libc`); `true` if it was sent.
fn sigterm(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

/// Unless disarmed (`None`), sends `SIGTERM` to the driver when dropped and gives it time
/// to stop its children (it exits, or turns zombie until its parent reaps it).
struct TerminateOnDrop(Option<u32>);

impl Drop for TerminateOnDrop {
    fn drop(&mut self) {
        let Some(pid) = self.0 else { return };
        if !sigterm(pid) {
            return;
        }
        let until = Instant::now() + ROLLOUT_DEADLINE;
        while process_state(pid).is_some_and(|state| state != 'Z') && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_driver_rolls_back_shuts_down_and_leaves_no_child() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut driver = tokio::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "driver_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DRIVER_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the driver starts");
    let driver_pid = driver.id().expect("the driver runs");
    // Should this test fail half-way, the driver still gets SIGTERM, so that it stops its
    // children (SIGKILL, as `kill_on_drop` sends, would leave them running).
    let mut guard = TerminateOnDrop(Some(driver_pid));
    let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
    let mut output = Vec::new();

    // Wait for the children's pids: the rollout is paused then.
    let children: BTreeSet<u32> = tokio::time::timeout(ROLLOUT_DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            output.push(line.clone());
            // libtest prints `test driver_entry ... ` without a newline before it.
            if let Some((_, pids)) = line.split_once("PIDS ") {
                return pids.split(' ').map(|pid| pid.parse().unwrap()).collect();
            }
        }
        panic!("the driver ended without printing its children: {output:?}");
    })
    .await
    .expect("the driver paused its rollout");
    assert_eq!(children.len(), 3, "2 blue and 1 green child: {children:?}");
    for &pid in &children {
        let state = process_state(pid);
        assert!(
            state.is_some_and(|s| s != 'Z'),
            "child {pid} runs: {state:?}"
        );
    }

    assert!(sigterm(driver_pid), "kill -TERM {driver_pid}");
    let status = tokio::time::timeout(ROLLOUT_DEADLINE, driver.wait())
        .await
        .expect("the driver exits after SIGTERM")
        .unwrap();
    // Reaped: its pid may be reused from now on.
    guard.0 = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        output.push(line);
    }
    eprintln!("driver: {status}; output: {output:#?}");

    assert!(status.success(), "{status}: {output:?}");
    assert!(
        output
            .iter()
            .any(|line| line
                .ends_with("DONE rolled back: abort requested: the driver received SIGTERM")),
        "{output:?}"
    );
    // The driver reaped every child before it exited: none runs, none is a zombie.
    assert_gone(&children, "after the driver exited");
}
