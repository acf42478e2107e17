//! The driver: runs one rollout at a time for an app, hands out a handle to follow, pause,
//! resume and abort it, rolls back automatically, and switches back on demand.
//!
//! See [`Rollouts`] for the rules every strategy runs under.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Error;
use crate::analysis::{Analysis, Measurement, MeasurementOutcome, Verdict};
use crate::event::{Event, EventKind, Phase};
use crate::gate::{Gate, GateContext};
use crate::platform::{Platform, PlatformStatus, Routing, Slot, TrafficStats};
use crate::report::{Outcome, RollbackReport, RolloutReport, SlotTraffic, Standby, SwitchTiming};
use crate::strategy::{ConfirmFn, RolloutStrategy};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Rollouts of one app on one platform. Cheap to clone; clones share the "one at a time"
/// rule.
///
/// Strategies decide (they plan from plain data); the driver carries the decisions out and
/// owns the rules that hold for every strategy:
///
/// - **one at a time**: [`Rollouts::start`] refuses with [`Error::Busy`] while a rollout (or a
///   rollback) runs. It never supersedes the running one: two rollouts moving traffic at once
///   would each roll back to a state the other already changed. Abort the running one
///   ([`RolloutHandle::abort`]) and start again once it has rolled back.
/// - **automatic rollback**: a failed gate or analysis, a deadline, an instance that exits, a
///   platform error or an explicit abort rolls back to the last good release: the slot that
///   was live at the start, at its original replica count and ready, gets all traffic again,
///   and the slot the rollout deployed to is stopped. The report says why
///   ([`Outcome::RolledBack`]); `Err` is only for what kept the rollout or its rollback from
///   being carried out.
/// - **aborts act at once**: a pause, a wait for readiness, a gate, an analysis window all end
///   the moment [`abort`](RolloutHandle::abort) is called (their timers are dropped);
///   operations that change the platform (deploy, scale, route, stop) are never cut half-way,
///   the abort takes effect right after.
/// - **nothing is lost**: every event is kept; [`RolloutHandle::events`] replays them from
///   the first, whenever it is called.
/// - **standby**: after a blue-green switch the previous release stays running for the
///   configured delay, then a background task stops it (unless a rollback or another rollout
///   came first). [`Rollouts::rollback`] switches back to it at once.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use engine_ops_rollout::{BlueGreen, Gate, Platform, Rollouts};
///
/// # async fn run(platform: Arc<dyn Platform>) -> Result<(), engine_ops_rollout::Error> {
/// let rollouts = Rollouts::new(platform);
/// let strategy = BlueGreen::builder()
///     .replicas(2)
///     .gate(Gate::http("smoke", "/health/ready"))
///     .standby(Duration::from_secs(300))
///     .build()?;
/// let handle = rollouts.start(strategy, "v2")?;
/// let mut events = handle.events();
/// tokio::spawn(async move {
///     while let Some(event) = events.next().await {
///         eprintln!("{event}");
///     }
/// });
/// let report = handle.await?;
/// eprintln!("{report}");
/// if report.promoted() {
///     // Later, if v2 misbehaves:
///     let rollback = rollouts.rollback().await?;
///     eprintln!("{rollback}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Rollouts {
    inner: Arc<Inner>,
}

struct Inner {
    platform: Arc<dyn Platform>,
    /// What runs now (`blue-green to v2`), if anything.
    running: Mutex<Option<String>>,
    /// Bumped to cancel a pending standby scale-down.
    standby_generation: AtomicU64,
}

impl fmt::Debug for Rollouts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rollouts")
            .field("platform", &self.inner.platform.name())
            .field("running", &*lock(&self.inner.running))
            .finish()
    }
}

/// Holds the "one at a time" slot; frees it when dropped (even on panic).
struct BusyGuard {
    inner: Arc<Inner>,
}

impl BusyGuard {
    fn acquire(inner: &Arc<Inner>, what: String) -> Result<Self, Error> {
        let mut running = lock(&inner.running);
        if let Some(running) = &*running {
            return Err(Error::Busy {
                running: running.clone(),
            });
        }
        *running = Some(what);
        Ok(Self {
            inner: Arc::clone(inner),
        })
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        *lock(&self.inner.running) = None;
    }
}

impl Inner {
    fn cancel_standby(&self) {
        self.standby_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops `slot` after `delay`, unless cancelled meanwhile, a rollout runs then, or the
    /// routing changed.
    fn schedule_standby(self: &Arc<Self>, slot: Slot, delay: Duration) {
        let generation = self.standby_generation.fetch_add(1, Ordering::SeqCst) + 1;
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let current = || inner.standby_generation.load(Ordering::SeqCst) == generation;
            if !current() {
                return;
            }
            let Ok(_busy) = BusyGuard::acquire(
                &inner,
                format!("stopping the previous release in {slot} after its standby"),
            ) else {
                tracing::debug!(%slot, "a rollout runs: the standby slot is left to it");
                return;
            };
            if !current() {
                return;
            }
            match inner.platform.status().await {
                Ok(status) if status.routing == (Routing::All { slot: slot.other() }) => {
                    match inner.platform.stop(slot).await {
                        Ok(()) => tracing::info!(%slot, "standby over: previous release stopped"),
                        Err(error) => {
                            tracing::warn!(%slot, %error, "could not stop the standby slot")
                        }
                    }
                }
                Ok(status) => {
                    tracing::debug!(%slot, routing = %status.routing, "routing changed: standby slot left alone");
                }
                Err(error) => {
                    tracing::warn!(%slot, %error, "could not read the platform status to stop the standby slot")
                }
            }
        });
    }
}

impl Rollouts {
    /// Rollouts on `platform`. An `Arc<LocalPlatform>` (or any `Arc<P: Platform>`) coerces;
    /// keep a clone of it to reach the platform's own methods.
    ///
    /// ```no_run
    /// # async fn run(platform: std::sync::Arc<dyn engine_ops_rollout::Platform>) {
    /// use engine_ops_rollout::Rollouts;
    ///
    /// let rollouts = Rollouts::new(platform.clone());
    /// assert!(rollouts.running().is_none());
    /// # }
    /// ```
    pub fn new(platform: Arc<dyn Platform>) -> Self {
        Self {
            inner: Arc::new(Inner {
                platform,
                running: Mutex::new(None),
                standby_generation: AtomicU64::new(0),
            }),
        }
    }

    /// The platform.
    pub fn platform(&self) -> &Arc<dyn Platform> {
        &self.inner.platform
    }

    /// What runs now (`blue-green to v2`), if anything.
    pub fn running(&self) -> Option<String> {
        lock(&self.inner.running).clone()
    }

    /// Starts rolling `version` out with `strategy`, in a Tokio task. The rollout runs to its
    /// end even if the handle is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] while another rollout or a rollback runs; [`Error::InvalidConfig`] for
    /// an empty version.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start<S>(&self, strategy: S, version: impl Into<String>) -> Result<RolloutHandle, Error>
    where
        S: RolloutStrategy + 'static,
    {
        let version = version.into();
        if version.trim().is_empty() {
            return Err(Error::invalid(
                "version",
                "the version is empty: give the version to roll out (`v2`)",
            ));
        }
        let busy = BusyGuard::acquire(&self.inner, format!("{} to {version}", strategy.name()))?;
        self.inner.cancel_standby();
        let shared = Arc::new(Shared::new());
        let task = tokio::spawn(drive(
            Arc::clone(&self.inner),
            Box::new(strategy),
            version,
            Arc::clone(&shared),
            busy,
        ));
        Ok(RolloutHandle {
            controller: RolloutController { shared },
            task,
        })
    }

    /// Switches all traffic back to the previous release, at once, while it is on standby
    /// (the slot that is not live runs a version, every instance ready); then stops the slot
    /// that was live.
    ///
    /// # Errors
    ///
    /// [`Error::NoRollbackTarget`] when nothing is on standby (stopped after its delay, or
    /// replaced by a rolling or canary rollout); [`Error::Busy`] while a rollout runs (abort
    /// it instead: it rolls back by itself); a platform error.
    pub async fn rollback(&self) -> Result<RollbackReport, Error> {
        let _busy = BusyGuard::acquire(&self.inner, "a rollback".to_owned())?;
        let started = Instant::now();
        let platform = &self.inner.platform;
        let status = platform.status().await?;
        let (from, to) =
            rollback_target(&status).map_err(|reason| Error::NoRollbackTarget { reason })?;
        self.inner.cancel_standby();
        let switching = Instant::now();
        platform.route(Routing::All { slot: to }).await?;
        let switch_took = switching.elapsed();
        tracing::info!(from = %from, to = %to, ?switch_took, "rolled back");
        let warning = match platform.stop(from).await {
            Ok(()) => None,
            Err(error) => {
                tracing::warn!(slot = %from, %error, "rolled back, but could not stop the abandoned slot");
                Some(format!("could not stop slot {from}: {error}"))
            }
        };
        Ok(RollbackReport {
            from_slot: from,
            from_version: status.slot(from).version.clone(),
            to_slot: to,
            to_version: status.slot(to).version.clone(),
            switch_took,
            duration: started.elapsed(),
            warning,
        })
    }
}

/// The rollback target of a platform: `(live, standby)` when the slot that is not live runs a
/// version with every desired instance ready, or why not.
pub(crate) fn rollback_target(status: &PlatformStatus) -> Result<(Slot, Slot), String> {
    let Routing::All { slot: live } = status.routing else {
        return Err(format!(
            "no slot receives all traffic ({}); route all traffic to one slot first",
            status.routing
        ));
    };
    let standby = live.other();
    let slot = status.slot(standby);
    let Some(version) = &slot.version else {
        return Err(format!(
            "slot {standby} runs nothing: the previous release was stopped (after its standby delay, or by a rolling or canary rollout)"
        ));
    };
    if slot.running == 0 || slot.desired == 0 {
        return Err(format!(
            "slot {standby} ({version}) has no instances: the previous release was scaled down"
        ));
    }
    if slot.ready < slot.desired {
        return Err(format!(
            "slot {standby} ({version}) is not ready ({} of {} instances): wait for it, or roll out the previous version again",
            slot.ready, slot.desired
        ));
    }
    Ok((live, standby))
}

/// State shared by a running rollout and its handles.
struct Shared {
    events: Mutex<Vec<Event>>,
    /// Bumped on every event; `true` once the rollout ended.
    events_tx: watch::Sender<bool>,
    /// The abort reason, once asked.
    abort: watch::Sender<Option<String>>,
    /// Bumped by each effective resume.
    resume: watch::Sender<u64>,
    state: Mutex<ControlState>,
}

struct ControlState {
    phase: Phase,
    paused: bool,
    finished: bool,
}

impl Shared {
    fn new() -> Self {
        Self {
            events: Mutex::new(Vec::new()),
            events_tx: watch::Sender::new(false),
            abort: watch::Sender::new(None),
            resume: watch::Sender::new(0),
            state: Mutex::new(ControlState {
                phase: Phase::Progressing,
                paused: false,
                finished: false,
            }),
        }
    }

    fn push(&self, event: Event) {
        tracing::info!(target: "engine_ops_rollout", "{event}");
        lock(&self.events).push(event);
        self.events_tx.send_modify(|_| {});
    }

    fn close(&self) {
        lock(&self.state).finished = true;
        self.events_tx.send_replace(true);
    }
}

/// Closes the event log when the driver ends, however it ends.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Controls a running rollout: abort, resume, events, phase. Cheap to clone, so that a
/// signal handler can abort while the report is awaited.
#[derive(Clone)]
pub struct RolloutController {
    shared: Arc<Shared>,
}

impl fmt::Debug for RolloutController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RolloutController")
            .field("phase", &self.phase())
            .finish()
    }
}

impl RolloutController {
    /// Asks the rollout to stop and roll back. Acts at once during pauses, waits, gates and
    /// analyses; right after the platform operation in progress otherwise. The first reason
    /// given is kept; calls after the end do nothing.
    pub fn abort(&self, reason: impl Into<String>) {
        if lock(&self.shared.state).finished {
            return;
        }
        let reason = reason.into();
        self.shared.abort.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Ends the current pause (a [`Pause`](crate::Pause) step or an inconclusive analysis).
    /// Returns `false`, and does nothing, when the rollout is not paused: a resume is never
    /// kept for a later pause.
    pub fn resume(&self) -> bool {
        let mut state = lock(&self.shared.state);
        if !state.paused {
            return false;
        }
        state.paused = false;
        self.shared
            .resume
            .send_modify(|generation| *generation += 1);
        true
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        lock(&self.shared.state).phase
    }

    /// Every event from the first one, then those to come; ends with the rollout.
    pub fn events(&self) -> EventStream {
        EventStream {
            shared: Arc::clone(&self.shared),
            rx: self.shared.events_tx.subscribe(),
            next: 0,
        }
    }

    /// `true` once the rollout has ended (its report is ready).
    pub fn is_finished(&self) -> bool {
        lock(&self.shared.state).finished
    }
}

/// A running rollout. Await it (or call [`wait`](Self::wait)) for the [`RolloutReport`].
/// Dropping it does not stop the rollout.
#[must_use = "await the handle to learn how the rollout ended"]
pub struct RolloutHandle {
    controller: RolloutController,
    task: JoinHandle<Result<RolloutReport, Error>>,
}

impl fmt::Debug for RolloutHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RolloutHandle")
            .field("phase", &self.phase())
            .finish()
    }
}

impl RolloutHandle {
    /// See [`RolloutController::abort`].
    pub fn abort(&self, reason: impl Into<String>) {
        self.controller.abort(reason);
    }

    /// See [`RolloutController::resume`].
    pub fn resume(&self) -> bool {
        self.controller.resume()
    }

    /// See [`RolloutController::phase`].
    pub fn phase(&self) -> Phase {
        self.controller.phase()
    }

    /// See [`RolloutController::events`].
    pub fn events(&self) -> EventStream {
        self.controller.events()
    }

    /// A controller that outlives the handle (to abort from a signal handler while the
    /// report is awaited).
    pub fn controller(&self) -> RolloutController {
        self.controller.clone()
    }

    /// The report, once the rollout ends.
    ///
    /// # Errors
    ///
    /// When the rollout could not start (a platform error, a platform left half-way by
    /// another rollout), or was aborted and even the rollback failed
    /// ([`Error::RollbackFailed`]).
    ///
    /// # Panics
    ///
    /// Resumes the panic of the rollout task, if it panicked.
    pub async fn wait(self) -> Result<RolloutReport, Error> {
        match self.task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(Error::Aborted {
                reason: "the rollout task was cancelled: the Tokio runtime shut down".to_owned(),
            }),
        }
    }
}

impl IntoFuture for RolloutHandle {
    type Output = Result<RolloutReport, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

/// The events of a rollout, from the first; ends after the last one.
pub struct EventStream {
    shared: Arc<Shared>,
    rx: watch::Receiver<bool>,
    next: usize,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("next", &self.next)
            .finish()
    }
}

impl EventStream {
    /// The next event; `None` once the rollout has ended and every event was returned.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            // Mark the current version seen *before* looking, so that an event pushed after
            // the look wakes `changed` below.
            let closed = *self.rx.borrow_and_update();
            if let Some(event) = lock(&self.shared.events).get(self.next).cloned() {
                self.next += 1;
                return Some(event);
            }
            if closed || self.rx.changed().await.is_err() {
                let event = lock(&self.shared.events).get(self.next).cloned();
                self.next += usize::from(event.is_some());
                return event;
            }
        }
    }

    /// As a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Event> + Send + 'static {
        futures_util::stream::unfold(self, |mut events| async move {
            events.next().await.map(|event| (event, events))
        })
    }
}

/// What a strategy works with: the platform, the version, the slot that was live at the
/// start, and operations that honour aborts and emit events. Made by the driver.
pub struct RolloutContext {
    platform: Arc<dyn Platform>,
    shared: Arc<Shared>,
    version: String,
    started: Instant,
    initial: PlatformStatus,
    live: Option<Slot>,
    deployed: Vec<Slot>,
    switch: Option<SwitchTiming>,
    standby: Option<(Slot, Duration)>,
}

impl fmt::Debug for RolloutContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RolloutContext")
            .field("platform", &self.platform.name())
            .field("version", &self.version)
            .field("live", &self.live)
            .field("deployed", &self.deployed)
            .finish()
    }
}

impl RolloutContext {
    /// The platform.
    pub fn platform(&self) -> &Arc<dyn Platform> {
        &self.platform
    }

    /// The version being rolled out.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The platform's status when the rollout started.
    pub fn initial(&self) -> &PlatformStatus {
        &self.initial
    }

    /// The slot that received all traffic when the rollout started, if any: what a rollback
    /// returns to.
    pub fn live_slot(&self) -> Option<Slot> {
        self.live
    }

    /// Time since the rollout started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records an event.
    pub fn emit(&self, kind: EventKind) {
        self.shared.push(Event {
            at: self.elapsed(),
            kind,
        });
    }

    /// Enters a phase (and records it).
    pub fn phase(&self, phase: Phase, reason: Option<String>) {
        lock(&self.shared.state).phase = phase;
        self.emit(EventKind::Phase { phase, reason });
    }

    /// Records the start of step `index` (1-based) of `total`.
    pub fn step(&self, index: usize, total: usize, description: impl Into<String>) {
        self.emit(EventKind::Step {
            index,
            total,
            description: description.into(),
        });
    }

    /// `Err(Error::Aborted)` once an abort was asked.
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] with the operator's reason.
    pub fn check_abort(&self) -> Result<(), Error> {
        match &*self.shared.abort.borrow() {
            Some(reason) => Err(Error::Aborted {
                reason: abort_reason(reason),
            }),
            None => Ok(()),
        }
    }

    /// Runs `future` until it completes or an abort is asked, whichever comes first; on an
    /// abort the future is dropped (timers and all).
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] when an abort came first.
    pub async fn interruptible<F: Future>(&self, future: F) -> Result<F::Output, Error> {
        let mut abort = self.shared.abort.subscribe();
        tokio::select! {
            biased;
            reason = aborted(&mut abort) => Err(Error::Aborted { reason }),
            output = future => Ok(output),
        }
    }

    /// Deploys the rollout's version to `slot` (after checking for an abort). The slot is
    /// remembered: a rollback stops it.
    ///
    /// # Errors
    ///
    /// An abort, or the platform's error.
    pub async fn deploy(&mut self, slot: Slot, replicas: u32) -> Result<(), Error> {
        self.check_abort()?;
        if !self.deployed.contains(&slot) {
            self.deployed.push(slot);
        }
        self.platform.deploy(slot, &self.version, replicas).await
    }

    /// Scales `slot` (after checking for an abort).
    ///
    /// # Errors
    ///
    /// An abort, or the platform's error.
    pub async fn scale(&self, slot: Slot, replicas: u32) -> Result<(), Error> {
        self.check_abort()?;
        self.platform.scale(slot, replicas).await
    }

    /// Waits until `slot` is ready, within `deadline`; an abort ends the wait at once.
    ///
    /// # Errors
    ///
    /// An abort, [`Error::Deadline`], [`Error::InstanceExited`], or another platform error.
    pub async fn wait_ready(&self, slot: Slot, deadline: Duration) -> Result<(), Error> {
        self.interruptible(self.platform.wait_ready(slot, deadline))
            .await?
    }

    /// Changes the routing (after checking for an abort) and records it. The first routing
    /// that gives the new version all traffic is the switch the report times.
    ///
    /// # Errors
    ///
    /// An abort, or the platform's error.
    pub async fn route(&mut self, routing: Routing) -> Result<(), Error> {
        self.check_abort()?;
        let at = self.elapsed();
        let switching = Instant::now();
        self.platform.route(routing).await?;
        let took = switching.elapsed();
        self.emit(EventKind::Traffic(routing));
        if let Routing::All { slot } = routing
            && self.live != Some(slot)
            && self.switch.is_none()
        {
            self.switch = Some(SwitchTiming { at, took });
        }
        Ok(())
    }

    /// Stops `slot` (after checking for an abort).
    ///
    /// # Errors
    ///
    /// An abort, or the platform's error.
    pub async fn stop(&self, slot: Slot) -> Result<(), Error> {
        self.check_abort()?;
        self.platform.stop(slot).await
    }

    /// Pauses: phase [`Phase::Paused`] with `reason`, until [`resume`](RolloutHandle::resume)
    /// or, with a `timeout`, until it elapses; then [`Phase::Progressing`] again.
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] when aborted meanwhile (at once).
    pub async fn pause(
        &self,
        reason: impl Into<String>,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        self.check_abort()?;
        let mut resumed = self.shared.resume.subscribe();
        resumed.borrow_and_update();
        lock(&self.shared.state).paused = true;
        self.phase(Phase::Paused, Some(reason.into()));
        let wait = async {
            match timeout {
                Some(timeout) => tokio::select! {
                    () = tokio::time::sleep(timeout) => "the pause elapsed",
                    _ = resumed.changed() => "resumed",
                },
                None => {
                    let _ = resumed.changed().await;
                    "resumed"
                }
            }
        };
        let result = self.interruptible(wait).await;
        lock(&self.shared.state).paused = false;
        let how = result?;
        self.phase(Phase::Progressing, Some(how.to_owned()));
        Ok(())
    }

    /// Runs `gate` against `slot`'s preview URL and records the result; an abort ends it at
    /// once.
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] when the gate failed (`gate smoke failed: …`) or on an abort.
    pub async fn run_gate(&self, gate: &Gate, slot: Slot) -> Result<(), Error> {
        let ctx = self.gate_context(slot).await?;
        let result = self.interruptible(gate.run(ctx)).await?;
        let (passed, detail) = match &result {
            Ok(detail) => (true, detail.clone()),
            Err(reason) => (false, reason.clone()),
        };
        self.emit(EventKind::Gate {
            name: gate.name().to_owned(),
            passed,
            detail,
        });
        result.map(drop).map_err(|reason| Error::Aborted {
            reason: format!("gate {} failed: {reason}", gate.name()),
        })
    }

    pub(crate) async fn confirm(&self, slot: Slot, confirm: &ConfirmFn) -> Result<(), Error> {
        let ctx = self.gate_context(slot).await?;
        let confirmed = self.interruptible(confirm(ctx)).await?;
        self.emit(EventKind::Gate {
            name: "confirmation".to_owned(),
            passed: confirmed,
            detail: if confirmed {
                "confirmed"
            } else {
                "not confirmed"
            }
            .to_owned(),
        });
        if confirmed {
            Ok(())
        } else {
            Err(Error::Aborted {
                reason: "not confirmed".to_owned(),
            })
        }
    }

    async fn gate_context(&self, slot: Slot) -> Result<GateContext, Error> {
        self.check_abort()?;
        let preview_url = self
            .interruptible(self.platform.preview_url(slot))
            .await??;
        Ok(GateContext::new(slot, self.version.clone(), preview_url))
    }

    /// Runs `analysis` over `slot`'s traffic, one event per measurement: returns when it
    /// passes; pauses when it is inconclusive (returns once resumed); an abort ends it at once.
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] when it fails (`analysis failed: …`) or on an abort.
    pub async fn analyze(&self, slot: Slot, analysis: &Analysis) -> Result<(), Error> {
        let mut measurements = Vec::with_capacity(analysis.count as usize);
        let mut before = self.read_traffic(slot).await;
        for index in 1..=analysis.count {
            self.interruptible(tokio::time::sleep(analysis.interval))
                .await?;
            let after = self.read_traffic(slot).await;
            let measurement = match (&before, &after) {
                (Ok(before), Ok(after)) => analysis.measure(&after.since(before)),
                (Err(error), _) | (_, Err(error)) => Measurement {
                    requests: 0,
                    errors: 0,
                    error_rate: None,
                    p99: None,
                    outcome: MeasurementOutcome::NoData {
                        reason: format!("the traffic counters could not be read: {error}"),
                    },
                },
            };
            before = after;
            measurements.push(measurement.clone());
            let verdict = analysis.evaluate(&measurements);
            self.emit(EventKind::Analysis {
                index,
                count: analysis.count,
                measurement,
                verdict: verdict.clone(),
            });
            match verdict {
                Verdict::Pending => {}
                Verdict::Pass => return Ok(()),
                Verdict::Fail { reason } => {
                    return Err(Error::Aborted {
                        reason: format!("analysis of {slot} failed: {reason}"),
                    });
                }
                Verdict::Inconclusive { reason } => {
                    return self
                        .pause(
                            format!(
                                "analysis of {slot} inconclusive: {reason}; resume to go on, abort to roll back"
                            ),
                            None,
                        )
                        .await;
                }
            }
        }
        Ok(())
    }

    async fn read_traffic(&self, slot: Slot) -> Result<TrafficStats, String> {
        self.platform
            .traffic(slot)
            .await
            .map_err(|error| error.to_string())
    }

    /// Leaves `slot` running after the rollout, for an instant
    /// [`rollback`](Rollouts::rollback); the driver stops it after `delay`.
    pub fn keep_on_standby(&mut self, slot: Slot, delay: Duration) {
        self.standby = Some((slot, delay));
    }

    /// Routes without checking for an abort and without counting as the switch: for the
    /// rollback.
    async fn route_back(&self, routing: Routing) -> Result<(), Error> {
        self.platform.route(routing).await?;
        self.emit(EventKind::Traffic(routing));
        Ok(())
    }

    fn target_slot(&self) -> Option<Slot> {
        self.deployed
            .iter()
            .copied()
            .find(|&slot| Some(slot) != self.live)
    }
}

async fn aborted(abort: &mut watch::Receiver<Option<String>>) -> String {
    let reason = abort
        .wait_for(Option::is_some)
        .await
        .map(|reason| reason.clone().unwrap_or_default());
    match reason {
        Ok(reason) => abort_reason(&reason),
        // The sender lives as long as the rollout: never.
        Err(_) => std::future::pending().await,
    }
}

fn abort_reason(reason: &str) -> String {
    format!("abort requested: {reason}")
}

/// Runs one rollout to its end.
async fn drive(
    inner: Arc<Inner>,
    strategy: Box<dyn RolloutStrategy>,
    version: String,
    shared: Arc<Shared>,
    busy: BusyGuard,
) -> Result<RolloutReport, Error> {
    let _close = CloseOnDrop(Arc::clone(&shared));
    let _busy = busy;
    let started = Instant::now();
    let platform = Arc::clone(&inner.platform);
    let initial = platform.status().await?;
    let live = match initial.routing {
        Routing::None => None,
        routing => Some(routing.live_slot().ok_or_else(|| {
            Error::invalid(
                "platform routing",
                format!(
                    "traffic is {routing}, as a rollout leaves it half-way: route all traffic to one slot before starting a rollout"
                ),
            )
        })?),
    };
    let before = read_all(platform.as_ref()).await;
    let mut ctx = RolloutContext {
        platform: Arc::clone(&platform),
        shared: Arc::clone(&shared),
        version: version.clone(),
        started,
        live,
        deployed: Vec::new(),
        switch: None,
        standby: None,
        initial,
    };
    let from_version = live.and_then(|slot| ctx.initial.slot(slot).version.clone());
    let from = match (&from_version, live) {
        (Some(v), Some(slot)) => format!("{v} in {slot}"),
        _ => "nothing live".to_owned(),
    };
    ctx.phase(
        Phase::Progressing,
        Some(format!("{} of {version} ({from})", strategy.name())),
    );

    let outcome = match strategy.run(&mut ctx).await {
        Ok(()) => {
            if let Some((slot, delay)) = ctx.standby {
                inner.schedule_standby(slot, delay);
            }
            ctx.phase(Phase::Completed, None);
            Outcome::Promoted
        }
        Err(error) => {
            let reason = match error {
                Error::Aborted { reason } => reason,
                other => other.to_string(),
            };
            ctx.phase(Phase::Aborted, Some(reason.clone()));
            ctx.standby = None;
            if let Err(error) = roll_back(&ctx, strategy.ready_deadline()).await {
                ctx.emit(EventKind::Warning(format!("the rollback failed: {error}")));
                return Err(Error::RollbackFailed {
                    reason,
                    source: Box::new(error),
                });
            }
            let back = match (&from_version, live) {
                (Some(v), Some(slot)) => format!("{v} in {slot} serves again"),
                _ => "nothing is live again".to_owned(),
            };
            ctx.phase(Phase::RolledBack, Some(back));
            Outcome::RolledBack { reason }
        }
    };

    let after = read_all(platform.as_ref()).await;
    let traffic = Slot::ALL
        .iter()
        .map(|&slot| {
            let index = slot as usize;
            let stats = match (&before[index], &after[index]) {
                (_, Err(error)) => {
                    ctx.emit(EventKind::Warning(format!(
                        "the traffic counters of {slot} could not be read: {error}"
                    )));
                    TrafficStats::default()
                }
                // Deployed during the rollout: the counters restarted at the deploy.
                (_, Ok(after)) if ctx.deployed.contains(&slot) => after.clone(),
                (Ok(before), Ok(after)) => after.since(before),
                (Err(_), Ok(after)) => after.clone(),
            };
            SlotTraffic { slot, stats }
        })
        .collect();
    let standby = ctx.standby.map(|(slot, delay)| Standby {
        slot,
        version: ctx.initial.slot(slot).version.clone(),
        stops_after: delay,
    });
    let report = RolloutReport {
        strategy: strategy.name().to_owned(),
        platform: platform.name().to_owned(),
        from_version,
        to_version: version,
        from_slot: live,
        to_slot: ctx.target_slot(),
        outcome,
        duration: started.elapsed(),
        switch: ctx.switch,
        standby,
        traffic,
        events: lock(&shared.events).clone(),
    };
    Ok(report)
}

/// Back to the release that was live at the start: its original replica count, ready, all
/// traffic; the slots the rollout deployed to are stopped.
async fn roll_back(ctx: &RolloutContext, deadline: Duration) -> Result<(), Error> {
    let platform = &ctx.platform;
    match ctx.live {
        Some(live) => {
            let replicas = ctx.initial.slot(live).desired;
            platform.scale(live, replicas).await?;
            platform.wait_ready(live, deadline).await?;
            ctx.route_back(Routing::All { slot: live }).await?;
            for &slot in ctx.deployed.iter().filter(|&&slot| slot != live) {
                platform.stop(slot).await?;
            }
        }
        None => {
            ctx.route_back(Routing::None).await?;
            for &slot in &ctx.deployed {
                platform.stop(slot).await?;
            }
        }
    }
    Ok(())
}

async fn read_all(platform: &dyn Platform) -> [Result<TrafficStats, String>; 2] {
    let blue = platform
        .traffic(Slot::Blue)
        .await
        .map_err(|e| e.to_string());
    let green = platform
        .traffic(Slot::Green)
        .await
        .map_err(|e| e.to_string());
    [blue, green]
}

#[cfg(test)]
pub(crate) mod fake {
    //! A recording in-memory platform for driver tests: every call is logged as a line,
    //! readiness takes `ready_delay` (of the paused test clock), traffic grows at a fixed
    //! rate per slot since its deploy.

    use super::*;
    use crate::platform::SlotStatus;
    use async_trait::async_trait;

    #[derive(Debug, Default, Clone)]
    struct FakeSlot {
        version: Option<String>,
        desired: u32,
        ready: u32,
        deployed_at: Option<Instant>,
    }

    #[derive(Debug)]
    struct State {
        slots: [FakeSlot; 2],
        routing: Routing,
        calls: Vec<String>,
        ready_delay: Duration,
        exits: Vec<Slot>,
        /// (requests, errors) per second, per slot.
        rates: [(u64, u64); 2],
    }

    #[derive(Debug)]
    pub(crate) struct FakePlatform {
        state: Mutex<State>,
    }

    impl FakePlatform {
        /// Nothing deployed, no routing.
        pub(crate) fn empty() -> Self {
            Self {
                state: Mutex::new(State {
                    slots: Default::default(),
                    routing: Routing::None,
                    calls: Vec::new(),
                    ready_delay: Duration::from_secs(1),
                    exits: Vec::new(),
                    rates: [(0, 0); 2],
                }),
            }
        }

        /// `version` live in `slot` with `replicas` ready instances.
        pub(crate) fn live(slot: Slot, version: &str, replicas: u32) -> Self {
            let fake = Self::empty();
            {
                let mut state = lock(&fake.state);
                state.slots[slot as usize] = FakeSlot {
                    version: Some(version.to_owned()),
                    desired: replicas,
                    ready: replicas,
                    deployed_at: Some(Instant::now()),
                };
                state.routing = Routing::All { slot };
            }
            fake
        }

        /// Instances of `slot` exit while waited for.
        pub(crate) fn exits(self, slot: Slot) -> Self {
            lock(&self.state).exits.push(slot);
            self
        }

        /// `slot` sees `requests` per second, `errors` of them failed.
        pub(crate) fn traffic_rate(self, slot: Slot, requests: u64, errors: u64) -> Self {
            lock(&self.state).rates[slot as usize] = (requests, errors);
            self
        }

        pub(crate) fn set_routing(&self, routing: Routing) {
            lock(&self.state).routing = routing;
        }

        pub(crate) fn calls(&self) -> Vec<String> {
            lock(&self.state).calls.clone()
        }

        fn record(&self, call: String) {
            lock(&self.state).calls.push(call);
        }
    }

    #[async_trait]
    impl Platform for FakePlatform {
        fn name(&self) -> &str {
            "fake"
        }

        async fn status(&self) -> Result<PlatformStatus, Error> {
            let state = lock(&self.state);
            let slot = |slot: Slot| {
                let s = &state.slots[slot as usize];
                SlotStatus {
                    slot,
                    version: s.version.clone(),
                    desired: s.desired,
                    running: s.desired,
                    ready: s.ready,
                }
            };
            Ok(PlatformStatus {
                slots: [slot(Slot::Blue), slot(Slot::Green)],
                routing: state.routing,
            })
        }

        async fn deploy(&self, slot: Slot, version: &str, replicas: u32) -> Result<(), Error> {
            self.record(format!("deploy {slot} {version} {replicas}"));
            let mut state = lock(&self.state);
            if state.routing.live_slot() == Some(slot) {
                return Err(Error::SlotLive {
                    slot,
                    operation: "deploy to",
                });
            }
            state.slots[slot as usize] = FakeSlot {
                version: Some(version.to_owned()),
                desired: replicas,
                ready: 0,
                deployed_at: Some(Instant::now()),
            };
            Ok(())
        }

        async fn scale(&self, slot: Slot, replicas: u32) -> Result<(), Error> {
            self.record(format!("scale {slot} {replicas}"));
            let mut state = lock(&self.state);
            let s = &mut state.slots[slot as usize];
            s.desired = replicas;
            s.ready = s.ready.min(replicas);
            Ok(())
        }

        async fn wait_ready(&self, slot: Slot, deadline: Duration) -> Result<(), Error> {
            self.record(format!("wait_ready {slot}"));
            let delay = lock(&self.state).ready_delay;
            if delay > deadline {
                tokio::time::sleep(deadline).await;
                return Err(Error::Deadline {
                    what: format!("slot {slot} ready"),
                    waited: deadline,
                });
            }
            tokio::time::sleep(delay).await;
            let mut state = lock(&self.state);
            if state.exits.contains(&slot) {
                return Err(Error::InstanceExited {
                    slot,
                    version: state.slots[slot as usize]
                        .version
                        .clone()
                        .unwrap_or_default(),
                    status: "exit status: 1".to_owned(),
                });
            }
            let s = &mut state.slots[slot as usize];
            s.ready = s.desired;
            Ok(())
        }

        async fn route(&self, routing: Routing) -> Result<(), Error> {
            self.record(format!("route {routing}"));
            lock(&self.state).routing = routing;
            Ok(())
        }

        async fn stop(&self, slot: Slot) -> Result<(), Error> {
            self.record(format!("stop {slot}"));
            let mut state = lock(&self.state);
            if state.routing.live_slot() == Some(slot) {
                return Err(Error::SlotLive {
                    slot,
                    operation: "stop",
                });
            }
            state.slots[slot as usize] = FakeSlot::default();
            Ok(())
        }

        async fn preview_url(&self, slot: Slot) -> Result<Option<String>, Error> {
            Ok(Some(format!("http://{slot}.preview.invalid")))
        }

        async fn traffic(&self, slot: Slot) -> Result<TrafficStats, Error> {
            let state = lock(&self.state);
            let (rps, eps) = state.rates[slot as usize];
            let secs = state.slots[slot as usize]
                .deployed_at
                .map_or(0, |at| at.elapsed().as_secs());
            Ok(TrafficStats {
                requests: rps * secs,
                errors: eps * secs,
                ..TrafficStats::default()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakePlatform;
    use super::*;
    use crate::platform::SlotStatus;
    use crate::{BlueGreen, Canary, CanaryStep, Pause, Rolling};

    fn rollouts(fake: &Arc<FakePlatform>) -> Rollouts {
        Rollouts::new(Arc::clone(fake) as Arc<dyn Platform>)
    }

    /// Waits for the first event matching `pred`.
    async fn until(events: &mut EventStream, pred: impl Fn(&EventKind) -> bool) -> Event {
        loop {
            let event = events.next().await.expect("the rollout ended first");
            if pred(&event.kind) {
                return event;
            }
        }
    }

    fn is_phase(phase: Phase) -> impl Fn(&EventKind) -> bool {
        move |kind| matches!(kind, EventKind::Phase { phase: p, .. } if *p == phase)
    }

    fn phases(report: &RolloutReport) -> Vec<Phase> {
        report
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Phase { phase, .. } => Some(*phase),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn blue_green_switches_and_keeps_the_old_slot_on_standby_until_its_delay() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 2));
        let rollouts = rollouts(&fake);
        let strategy = BlueGreen::builder()
            .replicas(2)
            .gate(Gate::from_fn("smoke", |ctx| async move {
                assert_eq!(
                    ctx.preview_url.as_deref(),
                    Some("http://green.preview.invalid")
                );
                Ok(())
            }))
            .standby(Duration::from_secs(60))
            .build()
            .unwrap();
        let report = rollouts.start(strategy, "v2").unwrap().await.unwrap();
        assert_eq!(report.outcome, Outcome::Promoted);
        assert_eq!(
            (report.from_slot, report.to_slot),
            (Some(Slot::Blue), Some(Slot::Green))
        );
        assert_eq!(report.from_version.as_deref(), Some("v1"));
        assert!(report.switch.is_some());
        assert_eq!(report.standby.as_ref().map(|s| s.slot), Some(Slot::Blue));
        assert_eq!(
            phases(&report),
            [Phase::Progressing, Phase::Promoted, Phase::Completed]
        );
        assert_eq!(
            fake.calls(),
            ["deploy green v2 2", "wait_ready green", "route 100% green"]
        );
        // The standby delay passes: the old slot is stopped in the background.
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(fake.calls().last().map(String::as_str), Some("stop blue"));
        let err = rollouts.rollback().await.unwrap_err();
        assert!(matches!(err, Error::NoRollbackTarget { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn rollback_switches_back_at_once_while_the_old_slot_is_on_standby() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 1));
        let rollouts = rollouts(&fake);
        let strategy = BlueGreen::builder()
            .standby(Duration::from_secs(300))
            .build()
            .unwrap();
        let report = rollouts.start(strategy, "v2").unwrap().await.unwrap();
        assert!(report.promoted());
        let rollback = rollouts.rollback().await.unwrap();
        assert_eq!(
            (rollback.from_slot, rollback.to_slot),
            (Slot::Green, Slot::Blue)
        );
        assert_eq!(rollback.to_version.as_deref(), Some("v1"));
        assert!(rollback.warning.is_none());
        assert_eq!(&fake.calls()[3..], ["route 100% blue", "stop green"]);
        // The cancelled standby timer does not stop blue, now live, later.
        tokio::time::sleep(Duration::from_secs(301)).await;
        assert_eq!(fake.calls().len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_rollout_is_refused_while_one_runs() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 2));
        let rollouts = rollouts(&fake);
        let canary = || {
            Canary::builder()
                .replicas(2)
                .step(CanaryStep::SetWeight(10))
                .step(CanaryStep::Pause(Pause::UntilResumed))
                .build()
                .unwrap()
        };
        let handle = rollouts.start(canary(), "v2").unwrap();
        let err = rollouts.start(canary(), "v3").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a rollout is already running (canary to v2): wait for it to finish or abort it before starting another"
        );
        assert!(matches!(
            rollouts.clone().rollback().await,
            Err(Error::Busy { .. })
        ));
        assert_eq!(rollouts.running().as_deref(), Some("canary to v2"));
        handle.abort("make room");
        let report = handle.await.unwrap();
        assert!(!report.promoted());
        assert!(rollouts.running().is_none());
        let report = {
            let handle = rollouts.start(canary(), "v3").unwrap();
            let mut events = handle.events();
            until(&mut events, is_phase(Phase::Paused)).await;
            assert!(handle.resume());
            handle.await.unwrap()
        };
        assert!(report.promoted(), "{report}");
    }

    #[tokio::test(start_paused = true)]
    async fn abort_during_a_pause_acts_at_once_and_rolls_back_in_order() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 3));
        let rollouts = rollouts(&fake);
        let strategy = Canary::builder()
            .replicas(3)
            .step(CanaryStep::SetWeight(20))
            .step(CanaryStep::Pause(Pause::For(Duration::from_secs(3600))))
            .step(CanaryStep::SetWeight(50))
            .build()
            .unwrap();
        let started = Instant::now();
        let handle = rollouts.start(strategy, "v2").unwrap();
        let mut events = handle.events();
        let paused = until(&mut events, is_phase(Phase::Paused)).await;
        assert_eq!(handle.phase(), Phase::Paused);
        handle.abort("operator");
        let report = handle.await.unwrap();
        // The hour-long pause was cut short: its timer never fired.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
        assert!(report.duration < Duration::from_secs(60));
        assert!(paused.at < Duration::from_secs(60));
        assert_eq!(
            report.outcome,
            Outcome::RolledBack {
                reason: "abort requested: operator".into()
            }
        );
        assert_eq!(
            fake.calls(),
            [
                "deploy green v2 1",
                "wait_ready green",
                "route 80% blue, 20% green",
                // The rollback: the stable slot at its size, ready, all traffic; then the
                // canary stops.
                "scale blue 3",
                "wait_ready blue",
                "route 100% blue",
                "stop green",
            ]
        );
        assert_eq!(
            phases(&report),
            [
                Phase::Progressing,
                Phase::Paused,
                Phase::Aborted,
                Phase::RolledBack
            ]
        );
        // Nothing after the pause ran.
        assert!(!report.events.iter().any(|e| matches!(
            e.kind,
            EventKind::Traffic(Routing::Split { percent: 50, .. })
        )));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_gate_rolls_back_before_any_traffic_moves() {
        let fake = Arc::new(FakePlatform::live(Slot::Green, "v1", 2));
        let rollouts = rollouts(&fake);
        let strategy = BlueGreen::builder()
            .replicas(2)
            .gate(Gate::from_fn("smoke", |_| async {
                Err("GET /smoke: status 500".to_owned())
            }))
            .build()
            .unwrap();
        let report = rollouts.start(strategy, "v2").unwrap().await.unwrap();
        assert_eq!(
            report.outcome,
            Outcome::RolledBack {
                reason: "gate smoke failed: GET /smoke: status 500".into()
            }
        );
        assert_eq!(
            fake.calls(),
            [
                "deploy blue v2 2",
                "wait_ready blue",
                "scale green 2",
                "wait_ready green",
                "route 100% green",
                "stop blue",
            ]
        );
        assert!(report.switch.is_none());
        assert!(report.events.iter().any(|e| matches!(
            &e.kind,
            EventKind::Gate { name, passed: false, .. } if name == "smoke"
        )));
        // Nothing on standby: a rollback has no target.
        assert!(matches!(
            rollouts.rollback().await,
            Err(Error::NoRollbackTarget { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_confirmation_aborts() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 1));
        let strategy = BlueGreen::builder()
            .confirm(|ctx| async move { ctx.version == "v3" })
            .build()
            .unwrap();
        let report = rollouts(&fake)
            .start(strategy, "v2")
            .unwrap()
            .await
            .unwrap();
        assert_eq!(
            report.outcome,
            Outcome::RolledBack {
                reason: "not confirmed".into()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_that_exits_rolls_back() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 1).exits(Slot::Green));
        let report = rollouts(&fake)
            .start(BlueGreen::builder().build().unwrap(), "v2")
            .unwrap()
            .await
            .unwrap();
        match &report.outcome {
            Outcome::RolledBack { reason } => {
                assert_eq!(
                    reason,
                    "an instance of v2 in slot green exited: exit status: 1"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.calls().last().map(String::as_str), Some("stop green"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_rollback_is_an_error() {
        let fake = Arc::new(
            FakePlatform::live(Slot::Blue, "v1", 1)
                .exits(Slot::Green)
                .exits(Slot::Blue),
        );
        let err = rollouts(&fake)
            .start(BlueGreen::builder().build().unwrap(), "v2")
            .unwrap()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RollbackFailed { .. }), "{err}");
        assert!(err.to_string().contains("in slot blue exited"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn rolling_follows_its_plan_under_pooled_routing() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 2));
        let strategy = Rolling::builder()
            .replicas(2)
            .max_surge(1)
            .max_unavailable(0)
            .build()
            .unwrap();
        let report = rollouts(&fake)
            .start(strategy, "v2")
            .unwrap()
            .await
            .unwrap();
        assert!(report.promoted());
        assert_eq!(
            fake.calls(),
            [
                "deploy green v2 0",
                "route pooled across ready instances",
                "scale green 1",
                "wait_ready green",
                "scale blue 1",
                "scale green 2",
                "wait_ready green",
                "scale blue 0",
                "route 100% green",
                "stop blue",
            ]
        );
        let steps = report
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Step { .. }))
            .count();
        assert_eq!(steps, 10);
        assert!(report.standby.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_rolling_update_that_fails_half_way_restores_the_old_size() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 2).exits(Slot::Green));
        let strategy = Rolling::builder()
            .replicas(2)
            .max_surge(0)
            .max_unavailable(1)
            .build()
            .unwrap();
        let report = rollouts(&fake)
            .start(strategy, "v2")
            .unwrap()
            .await
            .unwrap();
        assert!(!report.promoted());
        assert_eq!(
            fake.calls(),
            [
                "deploy green v2 0",
                "route pooled across ready instances",
                "scale blue 1",
                "scale green 1",
                "wait_ready green",
                "scale blue 2",
                "wait_ready blue",
                "route 100% blue",
                "stop green",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_analysis_rolls_back_and_a_passing_one_promotes() {
        let analysis = Analysis {
            interval: Duration::from_secs(10),
            count: 2,
            max_error_rate: 0.05,
            ..Analysis::default()
        };
        let canary = |analysis: &Analysis| {
            Canary::builder()
                .replicas(2)
                .step(CanaryStep::SetWeight(25))
                .step(CanaryStep::Analysis(analysis.clone()))
                .build()
                .unwrap()
        };
        let failing =
            Arc::new(FakePlatform::live(Slot::Blue, "v1", 2).traffic_rate(Slot::Green, 10, 5));
        let report = rollouts(&failing)
            .start(canary(&analysis), "v2")
            .unwrap()
            .await
            .unwrap();
        match &report.outcome {
            Outcome::RolledBack { reason } => assert!(
                reason.starts_with("analysis of green failed: 1 of 1 measurements failed"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        let healthy =
            Arc::new(FakePlatform::live(Slot::Blue, "v1", 2).traffic_rate(Slot::Green, 10, 0));
        let report = rollouts(&healthy)
            .start(canary(&analysis), "v2")
            .unwrap()
            .await
            .unwrap();
        assert!(report.promoted(), "{report}");
        let measured = report
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Analysis { .. }))
            .count();
        assert_eq!(measured, 2);
        assert_eq!(report.traffic(Slot::Green).map(|t| t.errors), Some(0));
        assert!(report.traffic(Slot::Green).unwrap().requests >= 200);
    }

    #[tokio::test(start_paused = true)]
    async fn an_inconclusive_analysis_pauses_until_resumed_or_aborted() {
        let strategy = Canary::builder()
            .step(CanaryStep::SetWeight(5))
            .step(CanaryStep::Analysis(Analysis {
                interval: Duration::from_secs(10),
                count: 2,
                ..Analysis::default()
            }))
            .build()
            .unwrap();
        for resume in [true, false] {
            // No traffic reaches the canary: no data.
            let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 1));
            let handle = rollouts(&fake).start(strategy.clone(), "v2").unwrap();
            let mut events = handle.events();
            let paused = until(&mut events, is_phase(Phase::Paused)).await;
            match &paused.kind {
                EventKind::Phase {
                    reason: Some(reason),
                    ..
                } => {
                    assert!(
                        reason.starts_with("analysis of green inconclusive"),
                        "{reason}"
                    );
                }
                other => panic!("{other:?}"),
            }
            if resume {
                assert!(handle.resume());
                assert!(handle.await.unwrap().promoted());
            } else {
                handle.abort("no traffic to judge");
                assert!(!handle.await.unwrap().promoted());
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn resume_outside_a_pause_does_nothing() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 1));
        let strategy = Canary::builder()
            .step(CanaryStep::Pause(Pause::UntilResumed))
            .build()
            .unwrap();
        let handle = rollouts(&fake).start(strategy, "v2").unwrap();
        // Not paused yet: the resume is not kept for later.
        assert!(!handle.resume());
        let mut events = handle.events();
        until(&mut events, is_phase(Phase::Paused)).await;
        assert!(handle.resume());
        assert!(!handle.resume());
        let report = handle.await.unwrap();
        assert!(report.promoted());
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_replayed_to_late_subscribers() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 1));
        let handle = rollouts(&fake)
            .start(BlueGreen::builder().build().unwrap(), "v2")
            .unwrap();
        let controller = handle.controller();
        let report = handle.await.unwrap();
        assert!(controller.is_finished());
        let mut late = controller.events();
        let mut seen = Vec::new();
        while let Some(event) = late.next().await {
            seen.push(event);
        }
        assert_eq!(seen, report.events);
        assert!(late.next().await.is_none());
        use futures_util::StreamExt;
        let streamed: Vec<Event> = controller.events().into_stream().collect().await;
        assert_eq!(streamed, report.events);
        // An abort after the end changes nothing.
        controller.abort("too late");
        assert_eq!(controller.phase(), Phase::Completed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_release_goes_to_blue_and_a_rollback_leaves_nothing_live() {
        let fake = Arc::new(FakePlatform::empty());
        let report = rollouts(&fake)
            .start(BlueGreen::builder().build().unwrap(), "v1")
            .unwrap()
            .await
            .unwrap();
        assert!(report.promoted());
        assert_eq!(report.to_slot, Some(Slot::Blue));
        assert!(report.standby.is_none());
        assert_eq!(
            fake.calls(),
            ["deploy blue v1 1", "wait_ready blue", "route 100% blue"]
        );

        let fake = Arc::new(FakePlatform::empty().exits(Slot::Blue));
        let report = rollouts(&fake)
            .start(BlueGreen::builder().build().unwrap(), "v1")
            .unwrap()
            .await
            .unwrap();
        assert!(!report.promoted());
        assert_eq!(
            fake.calls(),
            [
                "deploy blue v1 1",
                "wait_ready blue",
                "route no traffic",
                "stop blue"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_platform_left_half_way_is_refused() {
        let fake = Arc::new(FakePlatform::live(Slot::Blue, "v1", 1));
        fake.set_routing(Routing::Pooled);
        let err = rollouts(&fake)
            .start(BlueGreen::builder().build().unwrap(), "v2")
            .unwrap()
            .await
            .unwrap_err();
        assert!(err.is_bad_input(), "{err}");
        assert!(fake.calls().is_empty());
        assert!(
            rollouts(&fake)
                .start(BlueGreen::builder().build().unwrap(), " ")
                .is_err()
        );
    }

    /// The driver over the real local platform: HTTP gates against the preview port, a
    /// switch, an on-demand rollback, then a release whose smoke test fails.
    #[tokio::test]
    async fn over_the_local_platform_gates_switch_and_roll_back() {
        use axum::Router;
        use axum::http::StatusCode;
        use axum::routing::get;

        let platform = crate::LocalPlatform::builder()
            .app(|version: &str| -> Result<Router, String> {
                let healthy = version != "v3";
                let body = format!("hello from {version}");
                Ok(Router::new()
                    .route("/", get(move || async move { body }))
                    .route("/health/ready", get(|| async { "ready" }))
                    .route(
                        "/smoke",
                        get(move || async move {
                            if healthy {
                                (StatusCode::OK, "ok")
                            } else {
                                (StatusCode::INTERNAL_SERVER_ERROR, "broken")
                            }
                        }),
                    ))
            })
            .build()
            .await
            .unwrap();
        let rollouts = Rollouts::new(Arc::new(platform.clone()));
        let blue_green = || {
            BlueGreen::builder()
                .replicas(2)
                .ready_deadline(Duration::from_secs(10))
                .gate(Gate::http("smoke", "/smoke").body_contains("ok"))
                .standby(Duration::from_secs(300))
                .build()
                .unwrap()
        };
        let first = rollouts.start(blue_green(), "v1").unwrap().await.unwrap();
        assert!(first.promoted(), "{first}");
        assert_eq!(first.to_slot, Some(Slot::Blue));

        let second = rollouts.start(blue_green(), "v2").unwrap().await.unwrap();
        assert!(second.promoted(), "{second}");
        assert_eq!(second.to_slot, Some(Slot::Green));
        assert!(second.switch.is_some());
        let status = platform.status().await.unwrap();
        assert_eq!(status.routing, Routing::All { slot: Slot::Green });
        assert_eq!(status.slot(Slot::Blue).ready, 2, "blue stays on standby");

        let rollback = rollouts.rollback().await.unwrap();
        assert_eq!(rollback.to_slot, Slot::Blue);
        assert_eq!(rollback.to_version.as_deref(), Some("v1"));
        let status = platform.status().await.unwrap();
        assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
        assert_eq!(status.slot(Slot::Green).running, 0);

        let third = rollouts.start(blue_green(), "v3").unwrap().await.unwrap();
        match &third.outcome {
            Outcome::RolledBack { reason } => assert!(
                reason.starts_with("gate smoke failed: GET /smoke: status 500"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        let status = platform.status().await.unwrap();
        assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
        assert_eq!(status.slot(Slot::Blue).version.as_deref(), Some("v1"));
        assert_eq!(status.slot(Slot::Green).running, 0);
        platform.shutdown().await;
    }

    /// A rolling update and a canary over the real local platform.
    #[tokio::test]
    async fn over_the_local_platform_rolling_and_canary_promote() {
        use axum::Router;
        use axum::routing::get;

        let platform = crate::LocalPlatform::builder()
            .app(|version: &str| -> Result<Router, String> {
                let body = format!("hello from {version}");
                Ok(Router::new()
                    .route("/", get(move || async move { body }))
                    .route("/health/ready", get(|| async { "ready" })))
            })
            .build()
            .await
            .unwrap();
        let rollouts = Rollouts::new(Arc::new(platform.clone()));
        let rolling = || {
            Rolling::builder()
                .replicas(3)
                .max_surge(1)
                .max_unavailable(0)
                .ready_deadline(Duration::from_secs(10))
                .build()
                .unwrap()
        };
        assert!(
            rollouts
                .start(rolling(), "v1")
                .unwrap()
                .await
                .unwrap()
                .promoted()
        );
        let report = rollouts.start(rolling(), "v2").unwrap().await.unwrap();
        assert!(report.promoted(), "{report}");
        let status = platform.status().await.unwrap();
        assert_eq!(status.routing, Routing::All { slot: Slot::Green });
        assert_eq!(status.slot(Slot::Green).ready, 3);
        assert_eq!(status.slot(Slot::Blue).running, 0);

        let canary = Canary::builder()
            .replicas(3)
            .ready_deadline(Duration::from_secs(10))
            .step(CanaryStep::SetWeight(25))
            .step(CanaryStep::Pause(Pause::For(Duration::from_millis(50))))
            .step(CanaryStep::SetWeight(75))
            .build()
            .unwrap();
        let report = rollouts.start(canary, "v3").unwrap().await.unwrap();
        assert!(report.promoted(), "{report}");
        let status = platform.status().await.unwrap();
        assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
        assert_eq!(status.slot(Slot::Blue).version.as_deref(), Some("v3"));
        assert_eq!(status.slot(Slot::Blue).ready, 3);
        platform.shutdown().await;
    }

    fn status(routing: Routing, green: (Option<&str>, u32, u32)) -> PlatformStatus {
        PlatformStatus {
            slots: [
                SlotStatus {
                    slot: Slot::Blue,
                    version: Some("v2".into()),
                    desired: 2,
                    running: 2,
                    ready: 2,
                },
                SlotStatus {
                    slot: Slot::Green,
                    version: green.0.map(str::to_owned),
                    desired: green.1,
                    running: green.1,
                    ready: green.2,
                },
            ],
            routing,
        }
    }

    #[test]
    fn rollback_needs_a_ready_release_on_standby() {
        let live_blue = Routing::All { slot: Slot::Blue };
        assert_eq!(
            rollback_target(&status(live_blue, (Some("v1"), 2, 2))),
            Ok((Slot::Blue, Slot::Green))
        );
        let not_ready = rollback_target(&status(live_blue, (Some("v1"), 2, 1))).unwrap_err();
        assert!(
            not_ready.contains("not ready (1 of 2 instances)"),
            "{not_ready}"
        );
        let stopped = rollback_target(&status(live_blue, (None, 0, 0))).unwrap_err();
        assert!(stopped.contains("runs nothing"), "{stopped}");
        let scaled = rollback_target(&status(live_blue, (Some("v1"), 0, 0))).unwrap_err();
        assert!(scaled.contains("no instances"), "{scaled}");
        let split = Routing::Split {
            canary: Slot::Green,
            percent: 30,
        };
        assert!(rollback_target(&status(split, (Some("v1"), 2, 2))).is_err());
        assert!(rollback_target(&status(Routing::None, (Some("v1"), 2, 2))).is_err());
    }
}
