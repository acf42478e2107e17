//! Health checks: the [`HealthCheck`] trait, closures as checks, [`Check`] (how a check is
//! registered and runs), and the single-flight cache behind each registered check.

use crate::report::{CheckReport, Status};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::time::Instant;

/// The default timeout of a check: below Kubernetes' default probe timeout (1 s), so that a
/// hanging dependency turns into a clear `fail` rather than a probe that times out.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// The default cache interval of a check.
pub const DEFAULT_CACHE_INTERVAL: Duration = Duration::from_secs(1);

/// Which probe a check belongs to (and which endpoint is asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    /// `/health/startup`: has the process finished starting? Kubernetes holds the other
    /// probes back until it passes.
    Startup,
    /// `/health/live`: is the process able to make progress at all? Failing it gets the
    /// process restarted.
    Liveness,
    /// `/health/ready`: should traffic be routed here now? Failing it removes the process
    /// from load balancing, without restarting it.
    Readiness,
}

impl Probe {
    /// All three probes.
    pub const ALL: [Probe; 3] = [Probe::Startup, Probe::Liveness, Probe::Readiness];

    /// `startup`, `liveness` or `readiness`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Liveness => "liveness",
            Self::Readiness => "readiness",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What one run of a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Healthy.
    Pass,
    /// Working, but degraded: reported as `warn`, the probe still passes.
    Warn(String),
    /// Not healthy: reported as `fail` (as `warn` for a non-critical check).
    Fail(String),
}

impl Outcome {
    /// A warning with a message.
    pub fn warn(message: impl Into<String>) -> Self {
        Self::Warn(message.into())
    }

    /// A failure with a message.
    pub fn fail(message: impl Into<String>) -> Self {
        Self::Fail(message.into())
    }
}

impl<T, E: fmt::Display> From<Result<T, E>> for Outcome {
    /// `Ok` passes; `Err` fails with the error's message.
    fn from(r: Result<T, E>) -> Self {
        match r {
            Ok(_) => Self::Pass,
            Err(e) => Self::Fail(e.to_string()),
        }
    }
}

impl From<bool> for Outcome {
    /// `true` passes, `false` fails.
    fn from(ok: bool) -> Self {
        if ok {
            Self::Pass
        } else {
            Self::Fail("check returned false".to_owned())
        }
    }
}

/// A health check: anything that can tell, asynchronously, whether something works.
///
/// Closures are checks through [`Check::from_fn`]; implement this trait for checks with
/// state of their own. The method takes `&self` and may run concurrently with itself only
/// if registered twice: the registry never runs one registered check twice at once.
///
/// ```
/// use engine_ops_probes::{HealthCheck, Outcome};
///
/// struct Cache { capacity_left: fn() -> usize }
///
/// #[async_trait::async_trait]
/// impl HealthCheck for Cache {
///     async fn check(&self) -> Outcome {
///         match (self.capacity_left)() {
///             0 => Outcome::fail("cache full"),
///             n if n < 10 => Outcome::warn(format!("{n} slots left")),
///             _ => Outcome::Pass,
///         }
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// Runs the check once.
    async fn check(&self) -> Outcome;
}

#[async_trait::async_trait]
impl<T: HealthCheck + ?Sized> HealthCheck for Arc<T> {
    async fn check(&self) -> Outcome {
        (**self).check().await
    }
}

/// A closure as a [`HealthCheck`]; made by [`Check::from_fn`] or [`check_fn`].
#[derive(Clone)]
pub struct CheckFn<F>(F);

impl<F> fmt::Debug for CheckFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckFn")
    }
}

/// Wraps a closure returning a future of anything that converts into an [`Outcome`]
/// (`Result<T, E: Display>`, `bool`, `Outcome`).
pub fn check_fn<F, Fut, R>(f: F) -> CheckFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: Into<Outcome>,
{
    CheckFn(f)
}

#[async_trait::async_trait]
impl<F, Fut, R> HealthCheck for CheckFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: Into<Outcome>,
{
    async fn check(&self) -> Outcome {
        (self.0)().await.into()
    }
}

/// A named check and how it runs: which probes it belongs to, its timeout, its cache
/// interval and whether it is critical. Register it with
/// [`ProbesBuilder::check`](crate::ProbesBuilder::check).
///
/// Defaults: readiness only (liveness never depends on a check unless you ask), critical,
/// timeout [`DEFAULT_TIMEOUT`] (500 ms), cache interval [`DEFAULT_CACHE_INTERVAL`] (1 s).
///
/// Every check runs under the same rules, whatever it does:
///
/// - **timeout**: a run that takes longer than its timeout fails (`timed out after …`); the
///   hanging future is dropped. Checks should be async; a check that blocks its thread cannot
///   be interrupted (use `tokio::task::spawn_blocking` inside it).
/// - **single flight, cached**: a check runs at most once at a time; concurrent probe requests
///   share the run in flight. A completed result is reused for the cache interval, measured
///   from its completion, so a flood of probe requests reaches a dependency at most once per
///   interval. A run is never cancelled by the probe request that started it.
/// - **isolated**: each run is a Tokio task; a check that panics fails (`check panicked: …`)
///   and nothing else is affected.
/// - **critical or not**: a failing non-critical check reports `warn` and the probe still
///   answers `200`.
///
/// ```
/// use engine_ops_probes::{Check, Outcome};
/// use std::time::Duration;
///
/// // A closure: `Ok` passes, `Err` fails with its message.
/// let disk = Check::from_fn("disk", || async {
///     std::fs::metadata("/").map(|_| ())
/// })
/// .readiness()
/// .timeout(Duration::from_millis(200))
/// .cache_for(Duration::from_secs(5));
///
/// // A check that can also warn on its own.
/// let queue = Check::from_fn("queue", || async {
///     let depth = 120;
///     if depth > 100 { Outcome::warn(format!("queue depth {depth}")) } else { Outcome::Pass }
/// })
/// .non_critical();
/// # let _ = (disk, queue);
/// ```
pub struct Check {
    pub(crate) name: String,
    pub(crate) check: Arc<dyn HealthCheck>,
    pub(crate) probes: u8,
    pub(crate) timeout: Duration,
    pub(crate) interval: Duration,
    pub(crate) critical: bool,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("probes", &self.probe_list())
            .field("timeout", &self.timeout)
            .field("interval", &self.interval)
            .field("critical", &self.critical)
            .finish()
    }
}

impl Check {
    /// A check called `name` (see [`validate_check_name`] for what a name may hold; it is
    /// checked when the probes are built).
    pub fn new(name: impl Into<String>, check: impl HealthCheck) -> Self {
        Self {
            name: name.into(),
            check: Arc::new(check),
            probes: 0,
            timeout: DEFAULT_TIMEOUT,
            interval: DEFAULT_CACHE_INTERVAL,
            critical: true,
        }
    }

    /// A check from an async closure whose output converts into an [`Outcome`]:
    /// `Result<T, E: Display>` (`Err` fails with its message), `bool` or `Outcome`.
    pub fn from_fn<F, Fut, R>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Into<Outcome>,
    {
        Self::new(name, check_fn(f))
    }

    /// Adds the check to the startup probe.
    pub fn startup(self) -> Self {
        self.on(Probe::Startup)
    }

    /// Adds the check to the liveness probe.
    ///
    /// Only for what a restart can fix (a deadlocked worker, a corrupted in-process state):
    /// never a database or another service. When a dependency goes down, a liveness check on
    /// it makes the orchestrator restart every replica at once, which fixes nothing and turns
    /// a partial outage into a full one.
    pub fn liveness(self) -> Self {
        self.on(Probe::Liveness)
    }

    /// Adds the check to the readiness probe (the default when no probe is chosen).
    pub fn readiness(self) -> Self {
        self.on(Probe::Readiness)
    }

    /// Adds the check to `probe`.
    pub fn on(mut self, probe: Probe) -> Self {
        self.probes |= probe.bit();
        self
    }

    /// How long a run may take before it fails. Must be above zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a completed result is reused. `Duration::ZERO` disables caching, but runs
    /// are still shared by concurrent requests.
    pub fn cache_for(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// A failure of this check makes the probe `warn` (still `200`) instead of `fail`.
    pub fn non_critical(mut self) -> Self {
        self.critical = false;
        self
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn probe_list(&self) -> Vec<Probe> {
        Probe::ALL
            .into_iter()
            .filter(|p| self.probes & p.bit() != 0)
            .collect()
    }
}

/// Checks that `name` can be a key of the report's `checks` object: 1 to 64 ASCII letters,
/// digits, `-`, `_` and `.`, in one part or two parts joined by one `:` (the
/// `component:measurement` form of the health+json draft).
///
/// ```
/// use engine_ops_probes::validate_check_name;
///
/// assert!(validate_check_name("postgres").is_ok());
/// assert!(validate_check_name("postgres:ping").is_ok());
/// assert!(validate_check_name("a:b:c").is_err());
/// assert!(validate_check_name("").is_err());
/// ```
pub fn validate_check_name(name: &str) -> Result<(), crate::Error> {
    let err = |reason| {
        Err(crate::Error::InvalidCheckName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return err("it is empty");
    }
    if name.len() > 64 {
        return err("it is longer than 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return err("it holds a character other than letters, digits, `-`, `_`, `.` and `:`");
    }
    let mut parts = name.split(':');
    let first = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (_, Some(_)) => err("it holds more than one `:`"),
        (Some(second), None) if first.is_empty() || second.is_empty() => {
            err("a `:` must join two non-empty parts")
        }
        _ => Ok(()),
    }
}

/// One completed run.
#[derive(Debug, Clone)]
pub(crate) struct Completed {
    outcome: Outcome,
    time: SystemTime,
    duration: Duration,
}

type Flight = watch::Receiver<Option<Arc<Completed>>>;

#[derive(Default)]
struct Slot {
    last: Option<(Arc<Completed>, Instant)>,
    in_flight: Option<Flight>,
}

/// A registered check with its cache: what the registry holds.
pub(crate) struct Entry {
    pub(crate) name: String,
    check: Arc<dyn HealthCheck>,
    pub(crate) probes: u8,
    timeout: Duration,
    interval: Duration,
    critical: bool,
    slot: Mutex<Slot>,
    /// The fast path for the request path: the reported status of the last result and
    /// until when it is fresh, packed into one word (see [`Entry::fresh_status`]).
    hint: AtomicU64,
    /// The origin of `hint`'s times.
    epoch: Instant,
}

/// Either a fresh result or a run to wait for.
pub(crate) enum Lookup {
    Fresh(Arc<Completed>),
    Wait(Flight),
}

impl Entry {
    pub(crate) fn new(c: Check) -> Self {
        let probes = if c.probes == 0 {
            Probe::Readiness.bit()
        } else {
            c.probes
        };
        Self {
            name: c.name,
            check: c.check,
            probes,
            timeout: c.timeout,
            interval: c.interval,
            critical: c.critical,
            slot: Mutex::new(Slot::default()),
            hint: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // No code panics while holding the lock; recover anyway rather than propagate.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn belongs_to(&self, probe: Probe) -> bool {
        self.probes & probe.bit() != 0
    }

    /// The cached result if it is still fresh.
    /// The reported status of the cached result if it is still fresh: one atomic load.
    pub(crate) fn fresh_status(&self, now: Instant) -> Option<Status> {
        let hint = self.hint.load(Ordering::Acquire);
        let (until, status) = (hint >> 2, hint & 0b11);
        let now = now.saturating_duration_since(self.epoch).as_micros();
        if status == 0 || u128::from(until) <= now {
            return None;
        }
        Some(match status {
            1 => Status::Pass,
            2 => Status::Warn,
            _ => Status::Fail,
        })
    }

    /// Publishes a completed result to the fast path.
    fn set_hint(&self, c: &Completed, completed_at: Instant) {
        let status = match self.status(c) {
            Status::Pass => 1,
            Status::Warn => 2,
            Status::Fail => 3,
        };
        let until = (completed_at + self.interval).saturating_duration_since(self.epoch);
        // Microseconds in 62 bits: 146 000 years.
        let until = u64::try_from(until.as_micros())
            .unwrap_or(u64::MAX >> 2)
            .min(u64::MAX >> 2);
        self.hint.store(until << 2 | status, Ordering::Release);
    }

    pub(crate) fn fresh(&self, now: Instant) -> Option<Arc<Completed>> {
        let slot = self.slot();
        match &slot.last {
            Some((c, at)) if now.saturating_duration_since(*at) < self.interval => Some(c.clone()),
            _ => None,
        }
    }

    /// The fresh result, or the run in flight, or a new run.
    pub(crate) fn lookup(self: &Arc<Self>) -> Lookup {
        let mut slot = self.slot();
        if let Some((c, at)) = &slot.last
            && at.elapsed() < self.interval
        {
            return Lookup::Fresh(c.clone());
        }
        if let Some(flight) = &slot.in_flight {
            return Lookup::Wait(flight.clone());
        }
        match self.start_run() {
            Ok(flight) => {
                slot.in_flight = Some(flight.clone());
                Lookup::Wait(flight)
            }
            Err(completed) => Lookup::Fresh(completed),
        }
    }

    /// Waits for a run, bounded by the timeout (plus a margin for the runner to report).
    pub(crate) async fn wait(self: &Arc<Self>, mut flight: Flight) -> Arc<Completed> {
        let started = Instant::now();
        let time = SystemTime::now();
        let bound = self.timeout + Duration::from_millis(100);
        let waited = tokio::time::timeout(bound, flight.wait_for(Option::is_some))
            .await
            .map(|r| r.map(|done| done.clone()));
        match waited {
            Ok(Ok(Some(c))) => return c,
            Ok(Ok(None)) => {}
            Ok(Err(_)) => {
                // The runner task was dropped (the runtime is shutting down): forget it.
                let mut slot = self.slot();
                if slot
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.same_channel(&flight))
                {
                    slot.in_flight = None;
                }
                return Arc::new(Completed {
                    outcome: Outcome::fail("the check's run was cancelled"),
                    time,
                    duration: started.elapsed(),
                });
            }
            Err(_) => {}
        }
        // The runner did not report in time: its thread is probably blocked by the check.
        Arc::new(Completed {
            outcome: Outcome::fail(format!(
                "timed out after {:?} (the check may be blocking its thread)",
                self.timeout
            )),
            time,
            duration: started.elapsed(),
        })
    }

    /// Spawns a run. Outside a Tokio runtime, returns a failed result instead.
    fn start_run(self: &Arc<Self>) -> Result<Flight, Arc<Completed>> {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Err(Arc::new(Completed {
                outcome: Outcome::fail("health checks need a Tokio runtime"),
                time: SystemTime::now(),
                duration: Duration::ZERO,
            }));
        };
        let (tx, rx) = watch::channel(None);
        let entry = Arc::clone(self);
        handle.spawn(async move {
            let completed = Arc::new(entry.run().await);
            {
                let mut slot = entry.slot();
                let now = Instant::now();
                entry.set_hint(&completed, now);
                slot.last = Some((completed.clone(), now));
                slot.in_flight = None;
            }
            let _ = tx.send(Some(completed));
        });
        Ok(rx)
    }

    async fn run(&self) -> Completed {
        let time = SystemTime::now();
        let started = Instant::now();
        let check = Arc::clone(&self.check);
        let mut task = tokio::spawn(async move { check.check().await });
        let outcome = match tokio::time::timeout(self.timeout, &mut task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) if e.is_panic() => {
                let message = panic_message(e.into_panic());
                tracing::error!(check = %self.name, panic = %message, "health check panicked");
                Outcome::fail(format!("check panicked: {message}"))
            }
            Ok(Err(_)) => Outcome::fail("the check's task was cancelled"),
            Err(_) => {
                task.abort();
                Outcome::fail(format!("timed out after {:?}", self.timeout))
            }
        };
        let duration = started.elapsed();
        match &outcome {
            Outcome::Pass => tracing::trace!(check = %self.name, ?duration, "health check passed"),
            Outcome::Warn(m) => {
                tracing::warn!(check = %self.name, ?duration, output = %m, "health check warns")
            }
            Outcome::Fail(m) => {
                tracing::warn!(check = %self.name, ?duration, output = %m, critical = self.critical, "health check failed")
            }
        }
        Completed {
            outcome,
            time,
            duration,
        }
    }

    /// The result as reported, after criticality.
    pub(crate) fn report(&self, c: &Completed) -> CheckReport {
        let (status, output) = match &c.outcome {
            Outcome::Pass => (Status::Pass, None),
            Outcome::Warn(m) => (Status::Warn, Some(m.clone())),
            Outcome::Fail(m) if self.critical => (Status::Fail, Some(m.clone())),
            Outcome::Fail(m) => (Status::Warn, Some(m.clone())),
        };
        CheckReport::new(status, c.time, c.duration, output)
    }

    /// The status only, after criticality.
    pub(crate) fn status(&self, c: &Completed) -> Status {
        match &c.outcome {
            Outcome::Pass => Status::Pass,
            Outcome::Warn(_) => Status::Warn,
            Outcome::Fail(_) if self.critical => Status::Fail,
            Outcome::Fail(_) => Status::Warn,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        validate_check_name(&self.name)?;
        if self.timeout.is_zero() {
            return Err(crate::Error::ZeroTimeout {
                name: self.name.clone(),
            });
        }
        Ok(())
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a non-string panic payload".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;

    fn entry(check: Check) -> Arc<Entry> {
        Arc::new(Entry::new(check))
    }

    async fn get(e: &Arc<Entry>) -> Arc<Completed> {
        match e.lookup() {
            Lookup::Fresh(c) => c,
            Lookup::Wait(f) => e.wait(f).await,
        }
    }

    #[test]
    fn names() {
        for ok in ["a", "db", "postgres:ping", "a.b-c_d", &"x".repeat(64)] {
            assert!(validate_check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ":a", "a:", "a:b:c", "a b", "é", &"x".repeat(65), "a\"b"] {
            assert!(validate_check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_probe_is_readiness() {
        let e = Entry::new(Check::from_fn("x", || async { true }));
        assert!(e.belongs_to(Probe::Readiness));
        assert!(!e.belongs_to(Probe::Liveness));
        assert!(!e.belongs_to(Probe::Startup));
        let e = Entry::new(Check::from_fn("x", || async { true }).liveness().startup());
        assert!(!e.belongs_to(Probe::Readiness));
        assert!(e.belongs_to(Probe::Liveness) && e.belongs_to(Probe::Startup));
    }

    #[tokio::test(start_paused = true)]
    async fn caches_for_the_interval_from_completion() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let e = entry(
            Check::from_fn("c", move || {
                let r = r.clone();
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    true
                }
            })
            .cache_for(Duration::from_secs(5)),
        );
        get(&e).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(4_900)).await;
        get(&e).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "fresh for 5 s after completion"
        );
        tokio::time::advance(Duration::from_millis(200)).await;
        get(&e).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_fast_path_agrees_with_the_cache() {
        let e = entry(
            Check::from_fn("x", || async { Err::<(), _>("down") })
                .non_critical()
                .cache_for(Duration::from_secs(2)),
        );
        assert_eq!(e.fresh_status(Instant::now()), None, "nothing cached yet");
        get(&e).await;
        let now = Instant::now();
        assert_eq!(e.fresh_status(now), Some(Status::Warn));
        assert!(e.fresh(now).is_some());
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert_eq!(e.fresh_status(Instant::now()), Some(Status::Warn));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(e.fresh_status(Instant::now()), None);
        assert!(e.fresh(Instant::now()).is_none());
        let zero = entry(Check::from_fn("z", || async { true }).cache_for(Duration::ZERO));
        get(&zero).await;
        assert_eq!(
            zero.fresh_status(Instant::now()),
            None,
            "no caching, no fast path"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_fails_and_is_cached() {
        let e = entry(
            Check::from_fn("hang", std::future::pending::<bool>)
                .timeout(Duration::from_millis(300)),
        );
        let start = Instant::now();
        let c = get(&e).await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert!(matches!(&c.outcome, Outcome::Fail(m) if m.contains("timed out after 300ms")));
        assert!(
            e.fresh(Instant::now()).is_some(),
            "a timeout is a completed result"
        );
    }

    #[tokio::test]
    async fn panics_fail_with_the_message() {
        let e = entry(Check::from_fn("boom", || async {
            if true {
                panic!("kaboom");
            }
            true
        }));
        let c = get(&e).await;
        assert!(matches!(&c.outcome, Outcome::Fail(m) if m == "check panicked: kaboom"));
        assert_eq!(e.status(&c), Status::Fail);
    }

    #[tokio::test]
    async fn non_critical_failures_warn() {
        let e = entry(Check::from_fn("x", || async { Err::<(), _>("down") }).non_critical());
        let c = get(&e).await;
        let r = e.report(&c);
        assert_eq!(r.status, Status::Warn);
        assert_eq!(r.output.as_deref(), Some("down"));
    }

    #[test]
    fn outside_a_runtime_fails_without_panicking() {
        let e = entry(Check::from_fn("x", || async { true }));
        match e.lookup() {
            Lookup::Fresh(c) => assert!(matches!(c.outcome, Outcome::Fail(_))),
            Lookup::Wait(_) => panic!("no runtime: nothing can run"),
        }
    }

    proptest! {
        #[test]
        fn valid_names_are_json_keys(name in "[A-Za-z0-9._-]{1,30}(:[A-Za-z0-9._-]{1,30})?") {
            prop_assert!(validate_check_name(&name).is_ok());
            let json = serde_json::json!({ name.clone(): 1 }).to_string();
            let back: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
            prop_assert!(back.contains_key(&name));
        }

        #[test]
        fn validation_never_panics_and_rejects_odd_characters(name in ".*") {
            let ok = validate_check_name(&name).is_ok();
            if ok {
                prop_assert!(name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
                prop_assert!(name.matches(':').count() <= 1);
            }
        }
    }
}
