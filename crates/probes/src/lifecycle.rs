//! The process lifecycle state machine.

use crate::Error;
use crate::shutdown::ShutdownWatcher;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use tokio::sync::watch;

/// Where the process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LifecycleState {
    /// Starting up (migrations, cache warm-up): not ready for traffic yet.
    Starting,
    /// Started and serving traffic.
    Ready,
    /// Shutting down: readiness fails so that load balancers stop routing here, while the
    /// server finishes what it has.
    Draining,
    /// The server has stopped serving.
    Stopped,
}

impl LifecycleState {
    /// The state's name in lowercase, as shown in probe output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Draining => "draining",
            Self::Stopped => "stopped",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Starting,
            1 => Self::Ready,
            2 => Self::Draining,
            _ => Self::Stopped,
        }
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

struct Inner {
    /// Mirror of the watch value, for lock-free reads on the request path.
    state: AtomicU8,
    /// Whether `mark_started` ever succeeded.
    started: AtomicBool,
    tx: watch::Sender<LifecycleState>,
}

/// The process lifecycle, `Starting → Ready → Draining → Stopped`: a shared handle; clones
/// share the same state.
///
/// It is shared by the probes, the server and the application. Reading the state is one
/// atomic load, so the request path can consult it on every request; [`Lifecycle::subscribe`] gives a watch receiver for code that waits for a
/// transition.
///
/// Transitions only move forward:
///
/// ```text
/// Starting ──mark_started()──▶ Ready ──start_draining()──▶ Draining ──mark_stopped()──▶ Stopped
///     │                                                       ▲
///     └──────────────── start_draining() (signal during startup) ┘
/// ```
///
/// | state      | startup probe          | liveness probe | readiness probe |
/// |------------|------------------------|----------------|-----------------|
/// | `Starting` | fail                   | checks         | fail            |
/// | `Ready`    | checks                 | checks         | checks          |
/// | `Draining` | checks if it had started, else fail | checks | fail        |
/// | `Stopped`  | as `Draining`          | checks         | fail            |
///
/// "checks" means: pass unless a critical check registered for that probe fails.
///
/// ```
/// use engine_ops_probes::{Lifecycle, LifecycleState};
///
/// let lifecycle = Lifecycle::new();
/// assert_eq!(lifecycle.state(), LifecycleState::Starting);
/// assert!(lifecycle.mark_started());
/// assert!(lifecycle.start_draining());
/// assert!(!lifecycle.mark_started(), "never back to ready");
/// assert_eq!(lifecycle.state(), LifecycleState::Draining);
/// assert!(lifecycle.has_started());
/// ```
#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle")
            .field("state", &self.state())
            .field("started", &self.has_started())
            .finish()
    }
}

impl Lifecycle {
    /// A new lifecycle, in [`LifecycleState::Starting`].
    pub fn new() -> Self {
        let (tx, _) = watch::channel(LifecycleState::Starting);
        Self {
            inner: Arc::new(Inner {
                state: AtomicU8::new(LifecycleState::Starting as u8),
                started: AtomicBool::new(false),
                tx,
            }),
        }
    }

    /// The current state (one atomic load).
    pub fn state(&self) -> LifecycleState {
        LifecycleState::from_u8(self.inner.state.load(Ordering::Acquire))
    }

    /// Whether [`mark_started`](Self::mark_started) ever succeeded: startup completed, even if
    /// the process is draining now.
    pub fn has_started(&self) -> bool {
        self.inner.started.load(Ordering::Acquire)
    }

    /// Whether the state is [`LifecycleState::Ready`], the only state in which readiness
    /// passes.
    pub fn is_ready(&self) -> bool {
        self.state() == LifecycleState::Ready
    }

    /// Startup is complete (call it after migrations and warm-up): `Starting → Ready`.
    ///
    /// Returns whether the state changed. Once draining has begun this does nothing and
    /// returns `false`: a process told to stop during startup never becomes ready.
    pub fn mark_started(&self) -> bool {
        self.transition(|s| (s == LifecycleState::Starting).then_some(LifecycleState::Ready))
    }

    /// Shutdown has begun: `Starting | Ready → Draining`. Readiness fails from this moment.
    ///
    /// Returns whether the state changed. [`serve`](crate::serve) calls this on the first
    /// shutdown signal; call it yourself if you run your own server.
    pub fn start_draining(&self) -> bool {
        self.transition(|s| (s < LifecycleState::Draining).then_some(LifecycleState::Draining))
    }

    /// The server has stopped: any state `→ Stopped`. Returns whether the state changed.
    pub fn mark_stopped(&self) -> bool {
        self.transition(|s| (s != LifecycleState::Stopped).then_some(LifecycleState::Stopped))
    }

    /// Runs `startup` (migrations, warm-up), then marks the lifecycle started; if shutdown
    /// is requested first, drops `startup` (cancelling it at its current `.await`), moves to
    /// [`Draining`](LifecycleState::Draining) at once, and returns
    /// [`Error::ShutdownRequested`]: readiness never passes.
    ///
    /// Also returns `Error::ShutdownRequested` if the lifecycle was already draining when
    /// `startup` completed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use engine_ops_probes::{Error, Lifecycle, LifecycleState, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// let lifecycle = Lifecycle::new();
    /// let migrated = lifecycle.startup(&shutdown.watcher(), async { 3 }).await;
    /// assert_eq!(migrated.unwrap(), 3);
    /// assert!(lifecycle.is_ready());
    ///
    /// let lifecycle = Lifecycle::new();
    /// shutdown.trigger();
    /// let r = lifecycle.startup(&shutdown.watcher(), std::future::pending::<()>()).await;
    /// assert!(matches!(r, Err(Error::ShutdownRequested)));
    /// assert_eq!(lifecycle.state(), LifecycleState::Draining);
    /// # }
    /// ```
    pub async fn startup<F: Future>(
        &self,
        shutdown: &ShutdownWatcher,
        startup: F,
    ) -> Result<F::Output, Error> {
        match shutdown.cancel_on_shutdown(startup).await {
            Ok(out) if self.mark_started() => Ok(out),
            Ok(_) => Err(Error::ShutdownRequested),
            Err(e) => {
                tracing::info!("shutdown requested during startup: startup cancelled");
                self.start_draining();
                Err(e)
            }
        }
    }

    /// A receiver that sees every transition (the current state is marked seen).
    pub fn subscribe(&self) -> watch::Receiver<LifecycleState> {
        self.inner.tx.subscribe()
    }

    /// Waits until the state is `state` or later (states only move forward).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use engine_ops_probes::{Lifecycle, LifecycleState};
    ///
    /// let lifecycle = Lifecycle::new();
    /// let waiter = tokio::spawn({
    ///     let lifecycle = lifecycle.clone();
    ///     async move { lifecycle.reached(LifecycleState::Ready).await }
    /// });
    /// lifecycle.mark_started();
    /// waiter.await.unwrap();
    /// # }
    /// ```
    pub async fn reached(&self, state: LifecycleState) {
        let mut rx = self.inner.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| *s >= state).await;
    }

    fn transition(&self, next: impl FnOnce(LifecycleState) -> Option<LifecycleState>) -> bool {
        // `send_if_modified` holds the channel's write lock: transitions are serialized, and
        // the atomic mirror is updated under the same lock.
        self.inner
            .tx
            .send_if_modified(|current| match next(*current) {
                Some(new) => {
                    if new == LifecycleState::Ready {
                        self.inner.started.store(true, Ordering::Release);
                    }
                    self.inner.state.store(new as u8, Ordering::Release);
                    tracing::info!(from = %current, to = %new, "lifecycle transition");
                    *current = new;
                    true
                }
                None => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_forward_only() {
        let l = Lifecycle::new();
        assert!(!l.has_started());
        assert!(l.mark_started());
        assert!(!l.mark_started());
        assert!(l.is_ready());
        assert!(l.start_draining());
        assert!(!l.start_draining());
        assert!(!l.mark_started());
        assert!(l.mark_stopped());
        assert!(!l.mark_stopped());
        assert!(!l.start_draining());
        assert_eq!(l.state(), LifecycleState::Stopped);
        assert!(l.has_started());
    }

    #[test]
    fn draining_during_startup_never_becomes_ready() {
        let l = Lifecycle::new();
        assert!(l.start_draining());
        assert!(!l.mark_started());
        assert!(!l.has_started());
        assert_eq!(l.state(), LifecycleState::Draining);
    }

    #[test]
    fn subscribers_see_transitions() {
        let l = Lifecycle::new();
        let mut rx = l.subscribe();
        assert!(!rx.has_changed().unwrap());
        l.mark_started();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), LifecycleState::Ready);
        let clone = l.clone();
        clone.start_draining();
        assert_eq!(l.state(), LifecycleState::Draining);
        assert_eq!(*rx.borrow_and_update(), LifecycleState::Draining);
    }
}
