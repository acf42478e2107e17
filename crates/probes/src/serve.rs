//! [`serve`]: the graceful HTTP/1.1 server (accept loop, drain, close, deadline).

use crate::Error;
use crate::lifecycle::{Lifecycle, LifecycleState};
use crate::shutdown::ShutdownWatcher;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::header::{CONNECTION, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tower_service::Service;

/// The default drain delay: how long the server keeps serving after the first signal.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(15);

/// The default deadline, counted from the first signal: 5 s below Kubernetes' default
/// `terminationGracePeriodSeconds` (30 s).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(25);

/// How long a connection that has not sent a request yet may still send one once the
/// listener has closed.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `app` on `listener` until shutdown, then shuts down without dropping a request.
/// Configure with the [`Serve`] methods, then `.await` it (or spawn `.into_future()`).
///
/// `app` is an axum [`Router`](axum::Router) or any tower service of
/// `Request<axum::body::Body>`. Requests carry
/// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo), as with
/// `into_make_service_with_connect_info`.
///
/// On the first shutdown signal:
///
/// 1. **Draining** (`drain_delay`, default 15 s): the lifecycle moves to
///    [`Draining`](crate::LifecycleState::Draining), so readiness answers `503` at once while
///    liveness keeps passing. The server keeps accepting and serving new connections and
///    requests, because endpoint removal reaches load balancers (kube-proxy, ingress
///    controllers, cloud load balancers) seconds later. Every response now carries
///    `Connection: close`, so keep-alive clients reconnect, to an instance that is ready.
///    If startup never completed, no load balancer routes here and the delay is skipped.
/// 2. **Closing**: the listener closes (connections already queued in the kernel are
///    accepted first), idle keep-alive connections close at once, in-flight requests finish.
///    A connection that has not sent its first request yet gets one second to do so.
/// 3. **Deadline** (`deadline`, default 25 s, counted from the first signal): whatever
///    remains is ended; the requests cut short are counted and logged. Keep it below the
///    orchestrator's grace period (Kubernetes: `terminationGracePeriodSeconds`, 30 s by
///    default, minus any `preStop` hook time).
///
/// Each further signal skips the current wait: the second skips the rest of the drain delay,
/// the next one ends in-flight requests at once. Each phase is logged with `tracing` and
/// published on [`Serve::phases`].
///
/// HTTP/1.1 only (what probes, kubelet and most load balancers speak to a backend).
/// Upgraded connections (WebSocket) leave the server's hands once upgraded: close them from
/// your handler when the [`ShutdownWatcher`] fires.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{Router, routing::get};
/// use engine_ops_probes::{Lifecycle, Probes, Shutdown, serve};
/// use std::time::Duration;
///
/// let lifecycle = Lifecycle::new();
/// let probes = Probes::builder(lifecycle.clone()).build()?;
/// let app = Router::new().route("/", get(|| async { "hello" })).merge(probes.router());
///
/// let shutdown = Shutdown::new(); // Shutdown::with_signals()? in a real service
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let server = serve(listener, app, lifecycle.clone(), shutdown.watcher())
///     .drain_delay(Duration::ZERO)
///     .deadline(Duration::from_secs(5));
/// let server = tokio::spawn(server.into_future());
///
/// lifecycle.mark_started();
/// shutdown.trigger();
/// let report = server.await??;
/// assert_eq!(report.aborted_requests, 0);
/// # Ok(())
/// # }
/// ```
pub fn serve<S, B>(
    listener: TcpListener,
    app: S,
    lifecycle: Lifecycle,
    shutdown: ShutdownWatcher,
) -> Serve<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Serve {
        listener,
        app,
        lifecycle,
        shutdown,
        drain_delay: DEFAULT_DRAIN_DELAY,
        deadline: DEFAULT_DEADLINE,
        phase: watch::Sender::new(ServePhase::Serving),
    }
}

/// A server waiting to run; made by [`serve`].
#[must_use = "a server does nothing until it is awaited or spawned"]
pub struct Serve<S> {
    listener: TcpListener,
    app: S,
    lifecycle: Lifecycle,
    shutdown: ShutdownWatcher,
    drain_delay: Duration,
    deadline: Duration,
    phase: watch::Sender<ServePhase>,
}

impl<S> fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("drain_delay", &self.drain_delay)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl<S> Serve<S> {
    /// How long to keep serving after the first signal (default 15 s). Use the time your
    /// load balancers take to stop routing to a pod; set it to zero if a `preStop` hook
    /// already sleeps that long, and in tests.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// When to end whatever remains, counted from the first signal (default 25 s). Must be
    /// longer than the drain delay; the server refuses to start otherwise.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|source| Error::LocalAddr { source })
    }

    /// A receiver of the server's phases, to report progress or wait for a phase.
    pub fn phases(&self) -> watch::Receiver<ServePhase> {
        self.phase.subscribe()
    }
}

/// Where a [`serve`] server is in its shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServePhase {
    /// Serving normally.
    Serving,
    /// Shutdown requested: readiness fails, new connections and requests are still served,
    /// with `Connection: close`.
    Draining,
    /// The listener is closed; open connections finish their requests.
    Closing,
    /// Everything is closed: the server's future is about to complete.
    Stopped,
}

/// What ended the wait for in-flight requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShutdownEnd {
    /// Every connection finished on its own.
    Completed,
    /// The deadline ended the connections that remained.
    Deadline,
    /// Another signal ended the connections that remained.
    Signal,
}

/// What happened during shutdown; the output of a [`serve`] server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Time spent draining (serving after the first signal, before the listener closed).
    pub drain: Duration,
    /// Whether the drain delay was cut short (a second signal, or startup never completed).
    pub drain_skipped: bool,
    /// Time from the first signal until the server stopped.
    pub elapsed: Duration,
    /// Connections still open when the listener closed.
    pub open_at_close: usize,
    /// Requests that were still being served when the deadline (or a last signal) ended
    /// them: those clients got no complete response.
    pub aborted_requests: usize,
    /// Connections closed by the deadline (or a last signal), including those of
    /// `aborted_requests`.
    pub aborted_connections: usize,
    /// What ended the shutdown.
    pub end: ShutdownEnd,
}

/// The future of a [`Serve`]: resolves when the server has stopped.
#[must_use = "futures do nothing unless awaited"]
pub struct ServeFuture {
    inner: Pin<Box<dyn Future<Output = Result<ShutdownReport, Error>> + Send + 'static>>,
}

impl fmt::Debug for ServeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServeFuture")
    }
}

impl Future for ServeFuture {
    type Output = Result<ShutdownReport, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S, B> IntoFuture for Serve<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = Result<ShutdownReport, Error>;
    type IntoFuture = ServeFuture;

    fn into_future(self) -> ServeFuture {
        ServeFuture {
            inner: Box::pin(run(self)),
        }
    }
}

/// Per-connection bookkeeping.
#[derive(Default)]
struct ConnState {
    requests: AtomicU64,
    first_request: Notify,
}

struct Connections<S> {
    app: S,
    lifecycle: Lifecycle,
    tasks: JoinSet<()>,
    live: HashMap<tokio::task::Id, Arc<ConnState>>,
    close: watch::Sender<bool>,
    /// Accepting is paused until then after a resource error (EMFILE and the like).
    paused_until: Option<Instant>,
    accepted: u64,
}

async fn run<S, B>(serve: Serve<S>) -> Result<ShutdownReport, Error>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Serve {
        listener,
        app,
        lifecycle,
        shutdown,
        drain_delay,
        deadline,
        phase,
    } = serve;
    if deadline <= drain_delay {
        return Err(Error::InvalidShutdownTimings {
            drain_delay,
            deadline,
        });
    }
    let addr = listener
        .local_addr()
        .map_err(|source| Error::LocalAddr { source })?;
    tracing::info!(%addr, "serving");
    let mut conns = Connections {
        app,
        lifecycle: lifecycle.clone(),
        tasks: JoinSet::new(),
        live: HashMap::new(),
        close: watch::Sender::new(false),
        paused_until: None,
        accepted: 0,
    };

    // Serving.
    conns.serve_until(&listener, shutdown.triggered()).await;

    // Draining.
    let signal_at = Instant::now();
    let deadline_at = signal_at + deadline;
    let started = lifecycle.has_started();
    lifecycle.start_draining();
    phase.send_replace(ServePhase::Draining);
    let drain = if started {
        tracing::info!(
            ?drain_delay,
            ?deadline,
            "shutdown: readiness now fails; still serving during the drain delay so that load balancers notice"
        );
        drain_delay
    } else {
        tracing::info!(
            "shutdown during startup: readiness never passed, so no load balancer routes here; skipping the drain delay"
        );
        Duration::ZERO
    };
    let second = shutdown.nth(2);
    let skipped_by_signal = conns
        .serve_until(&listener, async {
            tokio::select! {
                biased;
                () = second => true,
                () = tokio::time::sleep(drain) => false,
            }
        })
        .await;
    if skipped_by_signal {
        tracing::info!("another shutdown signal: skipping the rest of the drain delay");
    }
    let drain_spent = signal_at.elapsed();

    // Closing: accept what the kernel already queued, then close the listener.
    conns.accept_backlog(listener);
    let open_at_close = conns.live.len();
    conns.close.send_replace(true);
    phase.send_replace(ServePhase::Closing);
    tracing::info!(
        open_connections = open_at_close,
        remaining = ?deadline_at.saturating_duration_since(Instant::now()),
        "listener closed; idle connections close now, in-flight requests finish before the deadline"
    );
    // The signal after the one that ended the drain (or after the first, if the delay ran
    // out) ends what remains; one that already arrived does so at once.
    let next_signal = shutdown.nth(if skipped_by_signal { 3 } else { 2 });
    let end = tokio::select! {
        biased;
        () = conns.join_all() => ShutdownEnd::Completed,
        () = tokio::time::sleep_until(deadline_at) => ShutdownEnd::Deadline,
        () = next_signal => ShutdownEnd::Signal,
    };
    let (mut aborted_requests, mut aborted_connections) = (0, 0);
    if end != ShutdownEnd::Completed {
        aborted_connections = conns.live.len();
        aborted_requests = conns
            .live
            .values()
            .filter(|c| c.requests.load(Ordering::Acquire) > 0)
            .count();
        tracing::warn!(
            aborted_requests,
            aborted_connections,
            cause = if end == ShutdownEnd::Deadline {
                "deadline"
            } else {
                "signal"
            },
            "ending the connections that remain; their requests get no complete response"
        );
        conns.tasks.abort_all();
        conns.join_all().await;
    }
    lifecycle.mark_stopped();
    phase.send_replace(ServePhase::Stopped);
    let report = ShutdownReport {
        drain: drain_spent,
        drain_skipped: skipped_by_signal || (!started && !drain_delay.is_zero()),
        elapsed: signal_at.elapsed(),
        open_at_close,
        aborted_requests,
        aborted_connections,
        end,
    };
    tracing::info!(
        elapsed = ?report.elapsed,
        connections_served = conns.accepted,
        aborted_requests,
        "server stopped"
    );
    Ok(report)
}

impl<S, B> Connections<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Accepts and serves connections until `stop` resolves.
    async fn serve_until<F: Future>(&mut self, listener: &TcpListener, stop: F) -> F::Output {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                out = &mut stop => return out,
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.reap(done);
                }
                () = sleep_until_opt(self.paused_until), if self.paused_until.is_some() => {
                    self.paused_until = None;
                }
                accepted = listener.accept(), if self.paused_until.is_none() => match accepted {
                    Ok((stream, remote)) => self.spawn(stream, remote),
                    Err(e) => self.accept_error(e),
                },
            }
        }
    }

    /// Accepts every connection already queued, then closes the listener.
    fn accept_backlog(&mut self, listener: TcpListener) {
        // Readiness events may lag behind the kernel's queue: ask the socket itself.
        let listener = match listener.into_std() {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "cannot inspect the accept queue; closing the listener");
                return;
            }
        };
        loop {
            match listener.accept() {
                Ok((stream, remote)) => {
                    let stream = stream
                        .set_nonblocking(true)
                        .and_then(|()| TcpStream::from_std(stream));
                    match stream {
                        Ok(stream) => self.spawn(stream, remote),
                        Err(e) => tracing::debug!(error = %e, "dropping a queued connection"),
                    }
                }
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        tracing::debug!(error = %e, "accept error while closing the listener");
                    }
                    break;
                }
            }
        }
        drop(listener);
    }

    fn accept_error(&mut self, e: io::Error) {
        if is_connection_error(&e) {
            return;
        }
        // Out of file descriptors and the like: retrying at once would spin. As hyper and
        // axum do, wait a second.
        tracing::error!(error = %e, "accept error; pausing accept for 1 s");
        self.paused_until = Some(Instant::now() + Duration::from_secs(1));
    }

    fn spawn(&mut self, stream: TcpStream, remote: SocketAddr) {
        self.accepted += 1;
        // Small responses (probes) should not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::default());
        let task = connection(
            stream,
            remote,
            self.app.clone(),
            self.lifecycle.clone(),
            self.close.subscribe(),
            state.clone(),
        );
        let handle = self.tasks.spawn(task);
        self.live.insert(handle.id(), state);
    }

    fn reap(&mut self, done: Result<(tokio::task::Id, ()), JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                if e.is_panic() {
                    tracing::error!("a connection task panicked");
                }
                e.id()
            }
        };
        self.live.remove(&id);
    }

    async fn join_all(&mut self) {
        while let Some(done) = self.tasks.join_next_with_id().await {
            self.reap(done);
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn connection<S, B>(
    stream: TcpStream,
    remote: SocketAddr,
    app: S,
    lifecycle: Lifecycle,
    mut close: watch::Receiver<bool>,
    state: Arc<ConnState>,
) where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let counter = state.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        counter.requests.fetch_add(1, Ordering::AcqRel);
        counter.first_request.notify_one();
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(remote));
        let mut app = app.clone();
        let lifecycle = lifecycle.clone();
        async move {
            std::future::poll_fn(|cx| app.poll_ready(cx)).await?;
            let mut res = app.call(req).await?;
            // While draining, every response ends its connection, so that keep-alive
            // clients reconnect to an instance that is ready.
            if lifecycle.state() >= LifecycleState::Draining
                && res.status() != StatusCode::SWITCHING_PROTOCOLS
            {
                res.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(res)
        }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);

    tokio::select! {
        res = conn.as_mut() => return log_end(res),
        _ = close.wait_for(|closing| *closing) => {}
    }
    if state.requests.load(Ordering::Acquire) == 0 {
        // A connection accepted but without a request yet: its request may be on the way
        // (hyper would close it at once, before reading what is in the socket buffer).
        // Give it a moment to arrive.
        tokio::select! {
            res = conn.as_mut() => return log_end(res),
            () = state.first_request.notified() => {}
            () = tokio::time::sleep(FIRST_REQUEST_GRACE) => {
                tracing::debug!(%remote, "closing a connection that sent no request");
            }
        }
    }
    // Idle keep-alive connections close now; a request in flight finishes first.
    conn.as_mut().graceful_shutdown();
    log_end(conn.await);
}

fn log_end(res: Result<(), hyper::Error>) {
    if let Err(e) = res {
        // Clients that disconnect mid-request are routine.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
