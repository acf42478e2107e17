//! Shutdown signals: the [`Shutdown`] trigger and its [`ShutdownWatcher`]s.

use crate::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::watch;

/// The shutdown trigger. Not `Clone`: keep it where shutdown is decided, hand out
/// [`watcher`](Self::watcher)s.
///
/// As in hyper-util's `GracefulShutdown`, the trigger is a single owner (it is not `Clone`)
/// and everyone else holds a watcher. The trigger fires on [`Shutdown::trigger`] or, with
/// [`Shutdown::with_signals`], on `SIGTERM` and `SIGINT` (Ctrl-C). It counts how often it
/// fired: [`serve`](crate::serve) treats every further signal as "hurry up" (the second skips
/// the drain delay, the next one ends what remains).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use engine_ops_probes::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let watcher = shutdown.watcher();
/// assert!(!watcher.is_triggered());
///
/// let waiter = tokio::spawn(watcher.triggered());
/// shutdown.trigger();
/// waiter.await.unwrap();
/// assert_eq!(watcher.count(), 1);
/// # }
/// ```
///
/// Dropping it does not trigger anything; watchers then wait forever (unless signals were
/// installed with [`with_signals`](Self::with_signals), which keep working).
pub struct Shutdown {
    tx: watch::Sender<u32>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("count", &*self.tx.borrow())
            .finish()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A trigger that fires only when [`trigger`](Self::trigger) is called.
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(0),
        }
    }

    /// A trigger that also fires on `SIGTERM` (what Kubernetes and systemd send) and
    /// `SIGINT` (Ctrl-C); on non-Unix platforms, on Ctrl-C.
    ///
    /// The handlers are installed before this returns, so a signal that arrives right after
    /// is never missed; from then on these signals no longer kill the process. Each signal
    /// counts once, like a call to [`trigger`](Self::trigger).
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] outside a Tokio runtime, [`Error::Signal`] if the handlers cannot
    /// be installed.
    ///
    /// # Panics
    ///
    /// Inside a Tokio runtime built without I/O (`enable_io`/`enable_all`), as Tokio's own
    /// signal functions do.
    pub fn with_signals() -> Result<Self, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime {
            what: "Shutdown::with_signals",
        })?;
        let shutdown = Self::new();
        let tx = shutdown.tx.clone();
        let _guard = handle.enter();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term =
                signal(SignalKind::terminate()).map_err(|source| Error::Signal { source })?;
            let mut int =
                signal(SignalKind::interrupt()).map_err(|source| Error::Signal { source })?;
            handle.spawn(async move {
                loop {
                    let name = tokio::select! {
                        Some(()) = term.recv() => "SIGTERM",
                        Some(()) = int.recv() => "SIGINT",
                        else => break,
                    };
                    fire(&tx, name);
                }
            });
        }
        #[cfg(not(unix))]
        {
            handle.spawn(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    fire(&tx, "Ctrl-C");
                }
            });
        }
        Ok(shutdown)
    }

    /// Fires the trigger once more (the first call starts the shutdown).
    pub fn trigger(&self) {
        fire(&self.tx, "trigger");
    }

    /// How often the trigger fired.
    pub fn count(&self) -> u32 {
        *self.tx.borrow()
    }

    /// A watcher of this trigger.
    pub fn watcher(&self) -> ShutdownWatcher {
        ShutdownWatcher {
            rx: self.tx.subscribe(),
        }
    }
}

fn fire(tx: &watch::Sender<u32>, source: &'static str) {
    let mut n = 0;
    tx.send_modify(|c| {
        *c = c.saturating_add(1);
        n = *c;
    });
    tracing::info!(source, count = n, "shutdown requested");
}

/// Watches a [`Shutdown`] trigger. Cheap to clone.
#[derive(Clone)]
pub struct ShutdownWatcher {
    rx: watch::Receiver<u32>,
}

impl fmt::Debug for ShutdownWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownWatcher")
            .field("count", &self.count())
            .finish()
    }
}

impl ShutdownWatcher {
    /// How often the trigger fired so far.
    pub fn count(&self) -> u32 {
        *self.rx.borrow()
    }

    /// Whether the trigger fired at least once.
    pub fn is_triggered(&self) -> bool {
        self.count() > 0
    }

    /// Resolves when the trigger has fired (at once if it already has). Usable as the
    /// signal of `axum::serve(..).with_graceful_shutdown(..)`.
    pub fn triggered(&self) -> Triggered {
        self.nth(1)
    }

    /// Resolves when the trigger has fired `n` times in all.
    pub fn nth(&self, n: u32) -> Triggered {
        let mut rx = self.rx.clone();
        Triggered {
            inner: Box::pin(async move {
                if rx.wait_for(|c| *c >= n).await.is_err() {
                    // The trigger was dropped without firing often enough: it never will.
                    std::future::pending::<()>().await;
                }
            }),
        }
    }

    /// Runs `future` unless shutdown is requested first; then `future` is dropped (cancelled
    /// at its current `.await`) and the result is [`Error::ShutdownRequested`].
    ///
    /// Wrap startup work in it (migrations, warm-up) so that a `SIGTERM` during startup ends
    /// the process promptly and readiness never passes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use engine_ops_probes::{Error, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// shutdown.trigger();
    /// let startup = shutdown.watcher().cancel_on_shutdown(std::future::pending::<()>());
    /// assert!(matches!(startup.await, Err(Error::ShutdownRequested)));
    /// # }
    /// ```
    pub fn cancel_on_shutdown<F: Future>(&self, future: F) -> CancelOnShutdown<F> {
        CancelOnShutdown {
            future,
            triggered: self.triggered(),
        }
    }
}

/// The future of [`ShutdownWatcher::triggered`] and [`ShutdownWatcher::nth`].
#[must_use = "futures do nothing unless awaited"]
pub struct Triggered {
    inner: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl fmt::Debug for Triggered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Triggered")
    }
}

impl Future for Triggered {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`ShutdownWatcher::cancel_on_shutdown`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct CancelOnShutdown<F> {
        #[pin]
        future: F,
        triggered: Triggered,
    }
}

impl<F> fmt::Debug for CancelOnShutdown<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CancelOnShutdown")
    }
}

impl<F: Future> Future for CancelOnShutdown<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The signal wins a tie: a process told to stop must not become ready.
        if Pin::new(this.triggered).poll(cx).is_ready() {
            return Poll::Ready(Err(Error::ShutdownRequested));
        }
        this.future.poll(cx).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_and_nth() {
        let s = Shutdown::new();
        let w = s.watcher();
        let second = tokio::spawn(w.nth(2));
        s.trigger();
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        s.trigger();
        second.await.unwrap();
        assert_eq!(w.count(), 2);
        assert_eq!(s.count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_trigger_never_fires() {
        let s = Shutdown::new();
        let w = s.watcher();
        drop(s);
        let r = tokio::time::timeout(std::time::Duration::from_secs(60), w.triggered()).await;
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn cancel_on_shutdown_passes_results_through() {
        let s = Shutdown::new();
        let r = s.watcher().cancel_on_shutdown(async { 7 }).await;
        assert_eq!(r.unwrap(), 7);
    }

    #[test]
    fn with_signals_outside_a_runtime_is_an_error() {
        assert!(matches!(
            Shutdown::with_signals(),
            Err(Error::NoRuntime { .. })
        ));
    }
}
