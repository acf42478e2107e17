//! The full-stack soak: the demo service (engine-ops-apiver + engine-ops-probes, its jobs in
//! SQLite migrated by engine-ops-migrate) released by engine-ops-rollout on the local
//! platform, each instance a real child process, under steady loopback load, through one
//! whole release cycle:
//!
//! 1. the **expand** migration of v2 (003) while v1 serves;
//! 2. a **blue-green** release to v2 behind smoke gates (API v2 reads the new column, API v1
//!    is still served and now deprecated), watched after the switch;
//! 3. a **canary of a broken release** (`v2-broken`: every other API response is `500`) that
//!    fails its analysis and is rolled back automatically;
//! 4. a **rolling restart** (v2 again, 2 replicas, `maxSurge: 1, maxUnavailable: 0`);
//! 5. the **contract** migration (004 drops `jobs.payload`, which only release v1 read),
//!    once no v1 instance is left;
//! 6. a **graceful shutdown** of the platform: each instance leaves routing, gets `SIGTERM`,
//!    fails readiness at once while still serving (engine-ops-probes' drain), then stops.
//!
//! Two clients run throughout: the rollout crate's load generator (keep-alive, 100 requests
//! per second through the front port) and a client that opens a connection per request and
//! keeps every response header, both calling `GET /api/v1/jobs`, an old client.
//!
//! It asserts: no failed request except the broken canary's own `500`s, all from the canary
//! slot and none sent after its rollback; v1 clients served in every phase, with
//! `Deprecation` and `Sunset` on every answer of release v2; the database at the expected
//! schema (ledger 1..=4 applied and verified, `jobs.priority` present, `jobs.payload` gone);
//! every instance a process that is reaped at the end (none left in `/proc`); and every port
//! (front, previews, instances) refusing connections after the shutdown. It takes about
//! twenty seconds.

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/demo_service.rs"]
mod demo_service;
#[path = "../support/soak_http.rs"]
mod soak_http;
#[path = "../support/soak_instance.rs"]
mod soak_instance;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use demo_service::DemoService;
use engine_ops_migrate::{Database, MigrationState};
use engine_ops_rollout::load::{LoadGenerator, LoadReport, Sample};
use engine_ops_rollout::{
    Analysis, BlueGreen, Canary, CanaryStep, EventKind, Gate, LocalPlatform, Outcome, Platform,
    ProcessSpec, Rolling, RolloutReport, RolloutStrategy, Rollouts, Routing, Slot, Verdict,
};
use soak_http::Reply;
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error>;

/// The load generator's rate (requests per second through the front port).
const RATE: u32 = 100;
/// The header client's pause between requests.
const HEADER_CLIENT_PERIOD: Duration = Duration::from_millis(40);
/// How long any one rollout may take before the soak gives up (it takes a few seconds).
const ROLLOUT_DEADLINE: Duration = Duration::from_secs(90);
/// How long each phase serves steadily before the next begins.
const STEADY: Duration = Duration::from_millis(500);
/// What every injected failure of `v2-broken` says.
const INJECTED: &str = "injected failure";

/// The child instance: when the soak runs this binary as a child process with
/// `ENGINE_OPS_SOAK_INSTANCE=1`, it runs only this (ignored) test, which then serves HTTP.
#[test]
#[ignore = "a child instance of the soak; the soak runs it with ENGINE_OPS_SOAK_INSTANCE=1"]
fn instance_entry() {
    soak_instance::run_if_child();
}

/// A child process of this binary serving `release` of the demo service on `database_url`.
fn instance_spec(release: &str, database_url: &str) -> ProcessSpec {
    let exe = std::env::current_exe().expect("the test binary's path");
    ProcessSpec::new(exe)
        .args([
            "--ignored",
            "--exact",
            "instance_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(soak_instance::INSTANCE_ENV, "1")
        .env(soak_instance::DATABASE_URL_ENV, database_url)
        .env(soak_instance::RELEASE_ENV, release)
        .discard_output()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_cycle_under_load_fails_no_request_but_the_broken_canarys() {
    let started = Instant::now();
    let demo = Arc::new(DemoService::new().await.expect("the demo database"));
    let url = demo.url().to_owned();
    let platform = LocalPlatform::builder()
        .process(move |release: &str| match release {
            "v1" | "v2" | "v2-broken" => Ok(instance_spec(release, &url)),
            other => Err(format!("the soak has no release `{other}`")),
        })
        .readiness_interval(Duration::from_millis(25))
        .drain_timeout(Duration::from_secs(5))
        .termination_grace(Duration::from_secs(5))
        .build()
        .await
        .expect("the local platform");
    let rollouts = Rollouts::new(Arc::new(platform.clone()));
    let tracker = Tracker::start(platform.clone());

    println!("0. v1 on blue (migrations 001-002)");
    let first = run(
        &rollouts,
        BlueGreen::builder().replicas(2).build().unwrap(),
        "v1",
    )
    .await
    .expect("v1 released");
    assert!(first.promoted(), "v1 not released: {}", first.outcome);

    let front = platform.front_addr();
    let load = LoadGenerator::new(format!("http://{front}/api/v1/jobs"))
        .rate(RATE)
        .connections(4)
        .start();
    let headers = HeaderClient::start(front, "/api/v1/jobs");
    let cycle = release_cycle(&demo, &platform, &rollouts).await;
    // Stop the clients before the platform: its front port stands for the load balancer,
    // which goes away with it; what must be graceful is each instance's exit.
    tokio::time::sleep(STEADY).await;
    let load = load.stop().await;
    let headers = headers.stop().await;

    println!("6. graceful shutdown");
    let last: Vec<SocketAddr> = Slot::ALL
        .into_iter()
        .flat_map(|slot| platform.instances(slot))
        .map(|instance| instance.addr)
        .collect();
    let armed = Arc::new(tokio::sync::Barrier::new(last.len() + 1));
    let drain_watch = tokio::spawn(watch_drains(last.clone(), Arc::clone(&armed)));
    // Every instance answered a first probe: the watch cannot miss the start of the drain.
    armed.wait().await;
    let shutdown_started = Instant::now();
    platform.shutdown().await;
    println!(
        "    platform shut down in {:.1?}",
        shutdown_started.elapsed()
    );
    let drains = drain_watch.await.expect("the drain watcher");
    let seen = tracker.stop().await;
    println!(
        "soak: {:.1?}; load: {} requests, {} failed; header client: {} requests",
        started.elapsed(),
        load.sent(),
        load.failed(),
        headers.len()
    );

    let cycle = cycle.unwrap_or_else(|error| panic!("the release cycle failed: {error}"));
    assert_requests(&cycle, &load, &headers);
    assert_schema(&demo).await;
    assert_drains(&last, &drains);
    assert_no_process_left(&seen);
    assert_ports_closed(&platform, &seen).await;
}

/// When each phase began and ended, and what the rollouts reported.
struct Cycle {
    /// Phase boundaries, in order: (name, start).
    phases: Vec<(&'static str, Instant)>,
    end: Instant,
    /// From the start of the blue-green rollout to its end: v1 and v2 may both answer.
    blue_green: (Instant, Instant),
    /// From the start of the canary rollout to its end (after its rollback).
    canary: (Instant, Instant),
    canary_slot: Slot,
}

/// Steps 1 to 5, under the load the caller started once v1 served.
async fn release_cycle(
    demo: &DemoService,
    platform: &LocalPlatform,
    rollouts: &Rollouts,
) -> Result<Cycle, BoxError> {
    let mut phases = vec![("v1 serves", Instant::now())];
    tokio::time::sleep(STEADY).await;

    println!("1. expand migration while v1 serves");
    phases.push(("expand", Instant::now()));
    let applied = demo.expand().await?;
    check(applied == [3], || {
        format!("expand applied {applied:?}, not [3]: 004 is a contract step")
    })?;
    check(demo.has_priority_column().await?, || {
        "jobs.priority missing after the expand".into()
    })?;
    tokio::time::sleep(STEADY).await;

    println!("2. blue-green release of v2");
    let blue_green_started = Instant::now();
    phases.push(("blue-green", blue_green_started));
    let strategy = BlueGreen::builder()
        .replicas(2)
        .ready_deadline(ROLLOUT_DEADLINE)
        .smoke(
            Gate::http("api v2 reads the new column", "/api/v2/jobs").body_contains("top_priority"),
        )
        .smoke(Gate::from_fn(
            "api v1 served and deprecated",
            |ctx| async move { v1_is_deprecated(ctx.preview_url).await },
        ))
        .watch(Analysis {
            interval: Duration::from_millis(500),
            count: 2,
            min_requests: 5,
            max_error_rate: 0.0,
            ..Analysis::default()
        })
        .standby(Duration::from_secs(120))
        .build()?;
    let blue_green = run(rollouts, strategy, "v2").await?;
    let blue_green_done = Instant::now();
    check(
        blue_green.promoted() && blue_green.to_slot == Some(Slot::Green),
        || format!("v2 not promoted to green: {}", blue_green.outcome),
    )?;
    phases.push(("v2 serves", blue_green_done));
    tokio::time::sleep(STEADY).await;

    println!("3. canary of v2-broken");
    let canary_slot = Slot::Blue;
    let analysis = Analysis {
        interval: Duration::from_secs(1),
        count: 1,
        min_requests: 5,
        max_error_rate: 0.01,
        ..Analysis::default()
    };
    let strategy = Canary::builder()
        .replicas(2)
        .canary_replicas(1)
        .ready_deadline(ROLLOUT_DEADLINE)
        .steps([
            CanaryStep::SetWeight(25),
            CanaryStep::Analysis(analysis.clone()),
            CanaryStep::SetWeight(50),
            CanaryStep::Analysis(analysis),
            CanaryStep::SetWeight(100),
        ])
        .build()?;
    let canary_started = Instant::now();
    phases.push(("canary", canary_started));
    let canary = run(rollouts, strategy, "v2-broken").await?;
    let canary_done = Instant::now();
    check(matches!(canary.outcome, Outcome::RolledBack { .. }), || {
        format!("the broken canary was not rolled back: {}", canary.outcome)
    })?;
    let analyses: Vec<&Verdict> = canary
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Analysis { verdict, .. } => Some(verdict),
            _ => None,
        })
        .collect();
    check(matches!(analyses[..], [Verdict::Fail { .. }]), || {
        format!("expected one failed analysis, got {analyses:?}")
    })?;
    let status = platform.status().await?;
    check(
        status.routing == Routing::All { slot: Slot::Green }
            && status.slot(canary_slot).version.is_none(),
        || format!("after the rollback: {status:?}"),
    )?;
    phases.push(("after the canary", canary_done));
    tokio::time::sleep(STEADY).await;

    println!("4. rolling restart of v2 (maxSurge 1, maxUnavailable 0)");
    phases.push(("rolling", Instant::now()));
    let strategy = Rolling::builder()
        .replicas(2)
        .max_surge(1)
        .max_unavailable(0)
        .ready_deadline(ROLLOUT_DEADLINE)
        .build()?;
    let rolling = run(rollouts, strategy, "v2").await?;
    check(
        rolling.promoted() && rolling.to_slot == Some(Slot::Blue),
        || {
            format!(
                "the rolling restart did not end on blue: {}",
                rolling.outcome
            )
        },
    )?;
    tokio::time::sleep(STEADY).await;

    println!("5. contract migration, once no v1 instance is left");
    let versions: BTreeSet<String> = Slot::ALL
        .into_iter()
        .flat_map(|slot| platform.instances(slot))
        .map(|instance| instance.version)
        .collect();
    check(versions == BTreeSet::from(["v2".to_owned()]), || {
        format!("instances of {versions:?} run: the contract step would break them")
    })?;
    phases.push(("contract", Instant::now()));
    let applied = demo.contract().await?;
    check(applied == [4], || {
        format!("contract applied {applied:?}, not [4]")
    })?;
    tokio::time::sleep(STEADY).await;

    Ok(Cycle {
        phases,
        end: Instant::now(),
        blue_green: (blue_green_started, blue_green_done),
        canary: (canary_started, canary_done),
        canary_slot,
    })
}

/// Runs a rollout to its end, printing its events; aborts it past [`ROLLOUT_DEADLINE`].
async fn run(
    rollouts: &Rollouts,
    strategy: impl RolloutStrategy + 'static,
    version: &str,
) -> Result<RolloutReport, BoxError> {
    let handle = rollouts.start(strategy, version)?;
    let controller = handle.controller();
    let mut events = handle.events();
    let printer = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            println!("    {event}");
        }
    });
    match tokio::time::timeout(ROLLOUT_DEADLINE, handle).await {
        Ok(report) => {
            let _ = printer.await;
            let report = report?;
            println!("    => {}", report.outcome);
            Ok(report)
        }
        Err(_) => {
            controller.abort("the soak's deadline passed");
            Err(format!("the rollout to {version} took more than {ROLLOUT_DEADLINE:?}").into())
        }
    }
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), BoxError> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// The smoke gate: on the new slot's preview endpoint, API v1 answers, with the deprecation
/// headers.
async fn v1_is_deprecated(preview_url: Option<String>) -> Result<(), String> {
    let addr: SocketAddr = preview_url
        .as_deref()
        .and_then(|url| url.strip_prefix("http://"))
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| format!("no usable preview url: {preview_url:?}"))?;
    let reply = soak_http::get(addr, "/api/v1/jobs", Duration::from_secs(5))
        .await
        .map_err(|error| format!("GET /api/v1/jobs: {error}"))?;
    if reply.status != 200
        || reply.header("deprecation").is_none()
        || reply.header("sunset").is_none()
    {
        return Err(format!(
            "GET /api/v1/jobs: status {}, deprecation {:?}, sunset {:?}",
            reply.status,
            reply.header("deprecation"),
            reply.header("sunset")
        ));
    }
    Ok(())
}

/// One request of the header client.
struct Observed {
    sent_at: Instant,
    reply: Result<Reply, String>,
}

impl Observed {
    fn failed(&self) -> bool {
        !matches!(&self.reply, Ok(reply) if reply.status < 500)
    }
}

/// The second client: `GET path` on a new connection every [`HEADER_CLIENT_PERIOD`],
/// keeping every response.
struct HeaderClient {
    stopping: Arc<AtomicBool>,
    task: JoinHandle<Vec<Observed>>,
}

impl HeaderClient {
    fn start(addr: SocketAddr, path: &'static str) -> Self {
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let task = tokio::spawn(async move {
            let mut observed = Vec::new();
            let mut ticker = tokio::time::interval(HEADER_CLIENT_PERIOD);
            while !stop.load(Ordering::Relaxed) {
                ticker.tick().await;
                let sent_at = Instant::now();
                let reply = soak_http::get(addr, path, Duration::from_secs(5))
                    .await
                    .map_err(|error| error.to_string());
                observed.push(Observed { sent_at, reply });
            }
            observed
        });
        Self { stopping, task }
    }

    async fn stop(self) -> Vec<Observed> {
        self.stopping.store(true, Ordering::Relaxed);
        self.task.await.expect("the header client")
    }
}

/// Every failure must be one of the broken canary's own `500`s: sent while the canary ran,
/// answered by its slot with its message.
fn assert_requests(cycle: &Cycle, load: &LoadReport, headers: &[Observed]) {
    let (canary_from, canary_to) = cycle.canary;
    let in_canary = |at: Instant| at >= canary_from && at < canary_to;
    let slot_name = cycle.canary_slot.as_str();

    let from_canary = |sample: &Sample| {
        in_canary(sample.sent_at)
            && sample.status == Some(500)
            && sample.slot == Some(cycle.canary_slot)
            && sample.error.as_deref() == Some(INJECTED)
    };
    let other: Vec<&Sample> = load.failures().filter(|s| !from_canary(s)).collect();
    assert!(
        other.is_empty(),
        "{} failed requests besides the canary's, the first: {:?}",
        other.len(),
        other.first()
    );
    let injected = load.failed();
    assert!(injected > 0, "the load never reached the broken canary");
    assert!(
        load.failures().all(|s| s.sent_at < canary_to),
        "a failure after the canary's rollback"
    );

    let other: Vec<&Observed> = headers
        .iter()
        .filter(|o| o.failed())
        .filter(|o| {
            !(in_canary(o.sent_at)
                && o.reply.as_ref().is_ok_and(|r| {
                    r.status == 500
                        && r.body == INJECTED
                        && r.header("x-engine-ops-slot") == Some(slot_name)
                }))
        })
        .collect();
    assert!(
        other.is_empty(),
        "{} failed requests of the header client besides the canary's, the first: {:?}",
        other.len(),
        other.first().map(|o| &o.reply)
    );
    println!(
        "    failed requests: {injected} of {} (load) and {} of {} (header client), all the broken canary's 500s",
        load.sent(),
        headers.iter().filter(|o| o.failed()).count(),
        headers.len()
    );

    // v1 clients are served in every phase.
    let mut bounds: Vec<(&str, Instant, Instant)> = Vec::new();
    for (i, &(name, from)) in cycle.phases.iter().enumerate() {
        let to = cycle.phases.get(i + 1).map_or(cycle.end, |&(_, to)| to);
        bounds.push((name, from, to));
    }
    for &(name, from, to) in &bounds {
        let answered = load
            .samples
            .iter()
            .filter(|s| s.sent_at >= from && s.sent_at < to && s.status == Some(200))
            .count();
        let header_answered = headers
            .iter()
            .filter(|o| o.sent_at >= from && o.sent_at < to && !o.failed())
            .count();
        println!("    {name:<18} load {answered:>5} ok, header client {header_answered:>4} ok");
        assert!(
            answered > 0 && header_answered > 0,
            "phase {name}: no v1 request answered (load {answered}, header client {header_answered})"
        );
    }

    // Release v1 answers without deprecation headers; every answer of a v2 release carries
    // them; once the blue-green release is done only v2 answers.
    let (blue_green_from, blue_green_to) = cycle.blue_green;
    for observed in headers {
        let Ok(reply) = &observed.reply else { continue };
        if reply.status != 200 {
            continue;
        }
        let release = release_of(&reply.body);
        assert!(
            reply.body.contains("\"jobs\":2"),
            "unexpected body: {}",
            reply.body
        );
        let deprecated = reply.header("deprecation").is_some() && reply.header("sunset").is_some();
        match release.as_deref() {
            Some("v1") => {
                assert!(
                    !deprecated,
                    "release v1 deprecates its own API: {:?}",
                    reply.headers
                );
                assert!(
                    observed.sent_at < blue_green_to,
                    "release v1 answered after v2 was released"
                );
            }
            Some(v2) if v2.starts_with("v2") => {
                assert!(
                    deprecated,
                    "release {v2} answered API v1 without Deprecation and Sunset: {:?}",
                    reply.headers
                );
                assert!(
                    observed.sent_at >= blue_green_from,
                    "{v2} answered too early"
                );
            }
            other => panic!("an answer of an unknown release {other:?}: {}", reply.body),
        }
    }
    let sunset = headers
        .iter()
        .filter_map(|o| o.reply.as_ref().ok())
        .find_map(|r| r.header("sunset"));
    println!("    v2 answers API v1 with Sunset: {sunset:?}");
}

/// The `release` field of a jobs body.
fn release_of(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get("release")?.as_str().map(str::to_owned)
}

/// Ledger 1..=4 applied and matching the files; the expand and contract steps' effects.
async fn assert_schema(demo: &DemoService) {
    let mut db = Database::connect(demo.url()).await.expect("the database");
    let status = demo.manager().status(&mut db).await.expect("status");
    let applied: Vec<(u64, MigrationState)> = status
        .migrations
        .iter()
        .map(|m| (m.version, m.state))
        .collect();
    assert_eq!(
        applied,
        (1..=4)
            .map(|v| (v, MigrationState::Applied))
            .collect::<Vec<_>>(),
        "{status:?}"
    );
    assert!(status.unknown_applied.is_empty(), "{status:?}");
    let verify = demo.manager().verify(&mut db).await.expect("verify");
    assert!(verify.is_ok(), "{verify:?}");
    db.close().await.expect("closing the database");
    assert!(demo.has_column("jobs", "priority").await.unwrap());
    assert!(
        !demo.has_column("jobs", "payload").await.unwrap(),
        "the contract step did not drop jobs.payload"
    );
    println!(
        "    schema: migrations 1-4 applied and verified; jobs.priority added, jobs.payload dropped"
    );
}

/// What a direct probe of an instance saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    Status(u16),
    /// Refused, reset or timed out: nothing serves.
    Gone,
}

/// Polls `/health/ready` and `/health/live` of each instance directly until it stops
/// answering (or 20 s pass), returning the distinct successive (ready, live) pairs seen.
/// Each instance's watch waits at `armed` once after its first probe.
async fn watch_drains(
    addrs: Vec<SocketAddr>,
    armed: Arc<tokio::sync::Barrier>,
) -> BTreeMap<SocketAddr, Vec<(Probe, Probe)>> {
    async fn probe(addr: SocketAddr, path: &str) -> Probe {
        match soak_http::get(addr, path, Duration::from_secs(2)).await {
            Ok(reply) => Probe::Status(reply.status),
            Err(_) => Probe::Gone,
        }
    }
    let watches: Vec<JoinHandle<_>> = addrs
        .into_iter()
        .map(|addr| {
            let armed = Arc::clone(&armed);
            tokio::spawn(async move {
                let mut seen: Vec<(Probe, Probe)> = Vec::new();
                let until = Instant::now() + Duration::from_secs(20);
                while Instant::now() < until {
                    let pair =
                        tokio::join!(probe(addr, "/health/ready"), probe(addr, "/health/live"));
                    if seen.is_empty() {
                        seen.push(pair);
                        armed.wait().await;
                    } else if seen.last() != Some(&pair) {
                        seen.push(pair);
                    }
                    if pair == (Probe::Gone, Probe::Gone) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (addr, seen)
            })
        })
        .collect();
    let mut drains = BTreeMap::new();
    for watch in watches {
        let (addr, seen) = watch.await.expect("a drain watch");
        drains.insert(addr, seen);
    }
    drains
}

/// Each instance of the last release: ready, then draining (readiness `503` while liveness
/// still passes), then gone.
fn assert_drains(last: &[SocketAddr], drains: &BTreeMap<SocketAddr, Vec<(Probe, Probe)>>) {
    assert_eq!(last.len(), 2, "two instances serve at the end: {last:?}");
    for addr in last {
        let seen = &drains[addr];
        println!("    {addr}: (ready, live) {seen:?}");
        let ready: Vec<Probe> =
            seen.iter()
                .map(|&(ready, _)| ready)
                .fold(Vec::new(), |mut steps, probe| {
                    if steps.last() != Some(&probe) {
                        steps.push(probe);
                    }
                    steps
                });
        assert_eq!(
            ready,
            [Probe::Status(200), Probe::Status(503), Probe::Gone],
            "{addr}: readiness must pass, fail while draining, then the instance stops: {seen:?}"
        );
        assert!(
            seen.contains(&(Probe::Status(503), Probe::Status(200))),
            "{addr}: never seen draining (readiness 503, liveness 200): {seen:?}"
        );
    }
}

/// Every pid and address an instance ever had, sampled while the soak runs.
#[derive(Debug, Default)]
struct Seen {
    /// pid -> version.
    pids: BTreeMap<u32, String>,
    addrs: BTreeSet<SocketAddr>,
}

struct Tracker {
    stopping: Arc<AtomicBool>,
    task: JoinHandle<Seen>,
}

impl Tracker {
    fn start(platform: LocalPlatform) -> Self {
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let task = tokio::spawn(async move {
            let mut seen = Seen::default();
            loop {
                for instance in Slot::ALL.into_iter().flat_map(|s| platform.instances(s)) {
                    if let Some(pid) = instance.pid {
                        seen.pids.insert(pid, instance.version);
                    }
                    seen.addrs.insert(instance.addr);
                }
                if stop.load(Ordering::Relaxed) {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { stopping, task }
    }

    async fn stop(self) -> Seen {
        self.stopping.store(true, Ordering::Relaxed);
        self.task.await.expect("the instance tracker")
    }
}

/// Every instance was a child process (2 of v1, 2 of v2 by blue-green, 1 of v2-broken, 2 of
/// v2 by the rolling restart), and none is left: no child of this process in `/proc`,
/// running or zombie.
fn assert_no_process_left(seen: &Seen) {
    let mut per_version: BTreeMap<&str, usize> = BTreeMap::new();
    for version in seen.pids.values() {
        *per_version.entry(version).or_default() += 1;
    }
    assert_eq!(
        per_version,
        BTreeMap::from([("v1", 2), ("v2", 4), ("v2-broken", 1)]),
        "instances started: {seen:?}"
    );
    if cfg!(target_os = "linux") {
        let me = std::process::id();
        let children = children_of(me);
        assert!(
            children.is_empty(),
            "child processes left after the shutdown: {children:?}"
        );
        for pid in seen.pids.keys() {
            // A pid may have been reused since; it must not be a child of this process.
            assert!(
                parent_and_state(*pid).is_none_or(|(parent, _)| parent != me),
                "instance {pid} is still a child of this process"
            );
        }
        println!(
            "    processes: {} instances started, all reaped",
            seen.pids.len()
        );
    }
}

/// `(pid, state)` of every process whose parent is `parent`.
fn children_of(parent: u32) -> Vec<(u32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (ppid, state) = parent_and_state(pid)?;
            (ppid == parent).then_some((pid, state))
        })
        .collect()
}

/// The parent pid and the state letter of `pid`, from `/proc/<pid>/stat`.
fn parent_and_state(pid: u32) -> Option<(u32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// After the shutdown nothing listens on the front port, the preview ports, or any port an
/// instance had.
async fn assert_ports_closed(platform: &LocalPlatform, seen: &Seen) {
    let mut ports = vec![
        ("front", platform.front_addr()),
        ("blue preview", platform.preview_addr(Slot::Blue)),
        ("green preview", platform.preview_addr(Slot::Green)),
    ];
    ports.extend(seen.addrs.iter().map(|&addr| ("instance", addr)));
    for (what, addr) in &ports {
        assert!(
            soak_http::refuses(*addr).await,
            "the {what} port {addr} still accepts connections after the shutdown"
        );
    }
    println!("    ports: {} refuse connections", ports.len());
}
