//! The local platform: releases run on this machine behind an in-process traffic switch.
//!
//! [`LocalPlatform`] is the embedded [`Platform`]: what the examples and the tests run, and
//! a way to rehearse a rollout without a cluster. Each slot runs instances of one version,
//! either **in-process axum apps** (a factory builds a [`Router`](axum::Router) per
//! instance) or **child processes** (a factory describes a [`ProcessSpec`]; the instance's
//! port is passed in `PORT`), each on its own loopback port.
//!
//! # The traffic switch
//!
//! A reverse proxy (hyper, HTTP/1.1) listens on the front port
//! ([`front_addr`](LocalPlatform::front_addr)). Its routing table (the [`Routing`] and the
//! ready instances of each slot) is replaced atomically and read without a lock, so:
//!
//! - a switch affects only new requests; requests in flight finish where they started;
//! - each request is routed on its own, so a client's keep-alive connection to the front
//!   port survives a switch;
//! - connections to the instances are pooled and reused (keep-alive);
//! - [`route`](Platform::route) returns once the next request is routed by the new table.
//!
//! [`Routing::All`] round-robins across the slot's ready instances. [`Routing::Split`] is
//! exact: of any 100 consecutive requests, exactly `percent` go to the canary, spread
//! evenly (request `n` goes to the canary when `⌊(n+1)·p/100⌋ > ⌊n·p/100⌋`; the count
//! restarts when the routing changes). [`Routing::Pooled`] round-robins across the ready
//! instances of both slots. With [`Routing::None`], or no ready instance where a request is
//! sent, the switch answers `503 Service Unavailable` with a short plain-text body (counted
//! as an error of the chosen slot); an instance that cannot be reached gives `502 Bad
//! Gateway` (counted too).
//!
//! Request and response bodies are streamed, never buffered whole. Hop-by-hop headers
//! (`Connection` and those it names, `Keep-Alive`, `Transfer-Encoding`, `Upgrade`, `TE`,
//! `Trailer`, `Proxy-*`) are not forwarded, so protocol upgrades (WebSocket) are not
//! proxied. The client's address is appended to `x-forwarded-for`. Every response from an
//! instance, and every `503` for a chosen slot, carries the header
//! **`x-engine-ops-slot: blue|green`** ([`LocalPlatform::SLOT_HEADER`]): which slot
//! answered, for clients, load generators and tests.
//!
//! **Preview endpoints**: one more listener per slot ([`preview_url`](Platform::preview_url))
//! reaches only that slot's ready instances, whatever the routing, like a Kubernetes
//! `<app>-preview` Service: where smoke tests go before a switch. Preview traffic is not
//! counted in [`traffic`](Platform::traffic).
//!
//! # Readiness, draining, stopping
//!
//! Each instance's readiness is probed with `GET` on the readiness path (default
//! `/health/ready`, `2xx` = ready) every `readiness_interval` (50 ms) until it passes; only
//! then does the instance join the routing table. Probing goes on every `readiness_period`
//! (500 ms); three failures in a row take the instance out of routing until a probe passes
//! again, as Kubernetes does.
//!
//! Scaling down and stopping first take the instances out of the routing table, then wait
//! until their in-flight requests (counted by the switch) are done or `drain_timeout`
//! (30 s) passes, then stop them: an in-process app closes its listener and connections
//! gracefully; a child process gets `SIGTERM` (sent with `kill -TERM`, since the crate
//! forbids `unsafe` and takes no `libc`/`nix` dependency for it), then `SIGKILL` after
//! `termination_grace` (10 s), and is always reaped.
//!
//! # Child processes are reaped
//!
//! On [`stop`](Platform::stop), on [`shutdown`](LocalPlatform::shutdown) (which returns once
//! every child is reaped), and when the last clone of the platform is dropped (children are
//! terminated in the background, and killed if the runtime goes away first, through
//! `kill_on_drop`). A child that exits on its own is noticed at once: it leaves routing, the
//! slot's `running` count drops, and [`wait_ready`](Platform::wait_ready) fails with
//! [`Error::InstanceExited`] and its exit status. If the parent process itself is killed
//! with `SIGKILL`, nothing of it runs, so its children are left running: asking Linux to
//! signal them (`prctl(PR_SET_PDEATHSIG)`) needs `unsafe`, which this crate forbids. Handle
//! Ctrl-C by calling `shutdown()`, as the examples do.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use engine_ops_rollout::{LocalPlatform, Platform, Routing, Slot};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let platform = LocalPlatform::builder()
//!     .app(|version: &str| -> Result<Router, String> {
//!         let body = format!("hello from {version}");
//!         Ok(Router::new()
//!             .route("/", get(move || async move { body }))
//!             .route("/health/ready", get(|| async { "ready" })))
//!     })
//!     .build()
//!     .await?;
//!
//! platform.deploy(Slot::Blue, "v1", 2).await?;
//! platform.wait_ready(Slot::Blue, Duration::from_secs(5)).await?;
//! platform.route(Routing::All { slot: Slot::Blue }).await?;
//! assert_eq!(platform.status().await?.slot(Slot::Blue).ready, 2);
//!
//! // Any HTTP client will do; here, one request by hand.
//! let mut front = tokio::net::TcpStream::connect(platform.front_addr()).await?;
//! front
//!     .write_all(b"GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
//!     .await?;
//! let mut response = String::new();
//! front.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200 OK"));
//! assert!(response.contains("x-engine-ops-slot: blue"));
//! assert!(response.ends_with("hello from v1"));
//!
//! platform.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod builder;
mod instance;
mod registry;
mod server;
mod switch;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::builder::Config;
pub use self::builder::LocalPlatformBuilder;
pub use self::instance::ProcessSpec;
use self::instance::{InstanceControl, Prepared, Probe};
use self::registry::{InstanceEntry, InstanceState, Registry, routed_share};
use self::switch::{Backend, Entry, Switch};
use crate::Error;
use crate::platform::{Platform, PlatformStatus, Routing, Slot, TrafficStats};

/// The local platform: instances on this machine behind an in-process traffic switch.
/// See the [module documentation](self) for how it routes, drains and stops.
///
/// Cheap to clone (an `Arc` inside); every clone drives the same platform. Build one with
/// [`LocalPlatform::builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use engine_ops_rollout::{LocalPlatform, Platform, Slot};
///
/// let platform = LocalPlatform::builder()
///     .app(|_version: &str| Ok(Router::new().route("/health/ready", get(|| async { "ok" }))))
///     .build()
///     .await?;
/// let same = platform.clone();
/// same.deploy(Slot::Green, "v2", 2).await?;
/// platform.wait_ready(Slot::Green, Duration::from_secs(5)).await?;
///
/// let instances = platform.instances(Slot::Green);
/// assert_eq!(instances.len(), 2);
/// assert!(instances.iter().all(|i| i.ready && i.pid.is_none() && i.version == "v2"));
/// // Smoke tests go to the preview endpoint before any traffic is switched.
/// let preview = platform.preview_url(Slot::Green).await?.unwrap();
/// assert_eq!(preview, format!("http://{}", platform.preview_addr(Slot::Green)));
/// platform.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LocalPlatform {
    inner: Arc<Inner>,
}

/// One instance of a slot, as [`LocalPlatform::instances`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InstanceInfo {
    /// Unique within the platform; grows with each instance started.
    pub id: u64,
    /// The slot.
    pub slot: Slot,
    /// The version it runs.
    pub version: String,
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// The process id of a child process; `None` for an in-process app.
    pub pid: Option<u32>,
    /// Whether it is in the routing table (ready and not draining).
    pub ready: bool,
    /// Taken out of routing, finishing its requests before it stops.
    pub draining: bool,
    /// The exit status, when it exited on its own.
    pub exited: Option<String>,
}

impl fmt::Debug for LocalPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPlatform")
            .field("front_addr", &self.inner.front_addr)
            .field("preview_addrs", &self.inner.preview_addrs)
            .field("routing", &self.inner.registry().routing)
            .finish_non_exhaustive()
    }
}

/// The platform's state, shared by its clones. Background tasks hold only a [`Weak`] to
/// it, so dropping the last clone drops it, which stops every instance and listener.
pub(crate) struct Inner {
    config: Config,
    switch: Arc<Switch>,
    registry: Mutex<Registry>,
    /// Bumped on every registry change: what [`Platform::wait_ready`] waits on.
    changes: watch::Sender<u64>,
    /// Serializes deploy, scale and stop per slot (never taken on the request path).
    operations: [tokio::sync::Mutex<()>; 2],
    next_id: AtomicU64,
    front_addr: SocketAddr,
    preview_addrs: [SocketAddr; 2],
    close_listeners: watch::Sender<bool>,
    listener_tasks: Mutex<Vec<JoinHandle<()>>>,
    probe_client: Client<HttpConnector, Empty<Bytes>>,
}

impl LocalPlatform {
    /// The response header naming the slot that answered: `x-engine-ops-slot`, with the
    /// value `blue` or `green`.
    pub const SLOT_HEADER: &'static str = switch::SLOT_HEADER;

    /// A builder with the defaults; give it a factory with
    /// [`app`](LocalPlatformBuilder::app) or [`process`](LocalPlatformBuilder::process).
    pub fn builder() -> LocalPlatformBuilder {
        LocalPlatformBuilder::default()
    }

    async fn start(config: Config, front: SocketAddr) -> Result<Self, Error> {
        let bind = |addr: SocketAddr, what: &'static str| async move {
            let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
                context: format!("binding the {what} {addr}"),
                source,
            })?;
            let addr = listener.local_addr().map_err(|source| Error::Io {
                context: format!("reading the address of the {what}"),
                source,
            })?;
            Ok::<_, Error>((listener, addr))
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let (front_listener, front_addr) = bind(front, "front port").await?;
        let (blue_listener, blue_addr) = bind(loopback, "blue preview port").await?;
        let (green_listener, green_addr) = bind(loopback, "green preview port").await?;

        let switch = Switch::new();
        let (close_listeners, closed) = watch::channel(false);
        let grace = config.drain_timeout;
        let tasks = [
            (front_listener, Entry::Front),
            (blue_listener, Entry::Preview(Slot::Blue)),
            (green_listener, Entry::Preview(Slot::Green)),
        ]
        .into_iter()
        .map(|(listener, entry)| {
            tokio::spawn(switch::serve(
                listener,
                Arc::clone(&switch),
                entry,
                closed.clone(),
                grace,
            ))
        })
        .collect();

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let probe_client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        tracing::info!(%front_addr, %blue_addr, %green_addr, "local platform listening");
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                switch,
                registry: Mutex::new(Registry::new()),
                changes: watch::Sender::new(0),
                operations: [tokio::sync::Mutex::new(()), tokio::sync::Mutex::new(())],
                next_id: AtomicU64::new(1),
                front_addr,
                preview_addrs: [blue_addr, green_addr],
                close_listeners,
                listener_tasks: Mutex::new(tasks),
                probe_client,
            }),
        })
    }

    /// Where the traffic switch listens (the port chosen when `0` was asked for).
    pub fn front_addr(&self) -> SocketAddr {
        self.inner.front_addr
    }

    /// `http://` and [`front_addr`](Self::front_addr): the base URL clients use.
    pub fn front_url(&self) -> String {
        format!("http://{}", self.inner.front_addr)
    }

    /// Where the preview endpoint of `slot` listens.
    pub fn preview_addr(&self, slot: Slot) -> SocketAddr {
        self.inner.preview_addrs[slot as usize]
    }

    /// The instances of `slot`, oldest first, including draining ones and those that
    /// exited on their own.
    pub fn instances(&self, slot: Slot) -> Vec<InstanceInfo> {
        self.inner
            .registry()
            .slot(slot)
            .instances
            .iter()
            .map(|entry| InstanceInfo {
                id: entry.id(),
                slot,
                version: entry.version.clone(),
                addr: entry.backend.addr(),
                pid: entry.pid,
                ready: entry.is_routable(),
                draining: entry.state == InstanceState::Draining,
                exited: match &entry.state {
                    InstanceState::Exited(status) => Some(status.clone()),
                    _ => None,
                },
            })
            .collect()
    }

    /// Stops everything and returns once it is done: the listeners close, the switch's
    /// connections finish their requests (up to the drain timeout), every instance is
    /// drained and stopped, every child process is reaped. Afterwards the routing is
    /// [`Routing::None`] and deploying is refused. Calling it again does nothing.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.close_listeners.send_replace(true);
        let tasks = std::mem::take(
            &mut *inner
                .listener_tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "a listener task of the switch failed");
            }
        }
        {
            let mut registry = inner.registry();
            registry.shut_down = true;
            registry.routing = Routing::None;
            inner.publish(&registry);
        }
        for slot in Slot::ALL {
            let _operation = inner.operations[slot as usize].lock().await;
            inner.stop_instances(slot, |_| true).await;
            let mut registry = inner.registry();
            let state = registry.slot_mut(slot);
            state.version = None;
            state.desired = 0;
            inner.publish(&registry);
        }
        tracing::info!("local platform shut down");
    }
}

impl Inner {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the routing table derived from `registry` (the caller holds the lock, so
    /// tables are published in the order of the changes) and wakes waiters.
    fn publish(&self, registry: &Registry) {
        let previous = self.switch.table();
        self.switch.publish(registry.table(&previous));
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A readiness change reported by an instance's prober.
    pub(crate) fn set_ready(&self, id: u64, ready: bool) {
        let mut registry = self.registry();
        let Some(entry) = registry.entry_mut(id) else {
            return;
        };
        if entry.state != InstanceState::Running || entry.ready == ready {
            return;
        }
        entry.ready = ready;
        tracing::debug!(id, ready, addr = %entry.backend.addr(), "instance readiness changed");
        self.publish(&registry);
    }

    /// A child process that exited on its own (its supervisor has reaped it).
    pub(crate) fn instance_exited(&self, id: u64, status: String) {
        let mut registry = self.registry();
        let Some(entry) = registry.entry_mut(id) else {
            return;
        };
        if entry.state != InstanceState::Running {
            return;
        }
        tracing::warn!(id, pid = ?entry.pid, version = %entry.version, %status, "an instance exited");
        entry.state = InstanceState::Exited(status);
        entry.ready = false;
        if let Some(control) = &entry.control {
            // Stops its readiness prober.
            control.signal();
        }
        let backend = Arc::clone(&entry.backend);
        self.publish(&registry);
        backend.retire();
    }

    fn refuse_if_shut_down(registry: &Registry, operation: &str) -> Result<(), Error> {
        if registry.shut_down {
            return Err(Error::Platform {
                platform: "local".to_owned(),
                operation: operation.to_owned(),
                message: "the platform was shut down: build a new one".to_owned(),
            });
        }
        Ok(())
    }

    fn refuse_if_live(
        registry: &Registry,
        slot: Slot,
        operation: &'static str,
    ) -> Result<(), Error> {
        match routed_share(registry.routing, slot) {
            Some(share) if share > 0 => Err(Error::SlotLive { slot, operation }),
            _ => Ok(()),
        }
    }

    /// Makes `count` instances of `version` with the factory, before any starts: a factory
    /// that refuses a version refuses it before anything changed.
    fn prepare(&self, slot: Slot, version: &str, count: u32) -> Result<Vec<Prepared>, Error> {
        (0..count)
            .map(|_| self.config.factory.prepare(version))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|message| Error::InstanceStart {
                slot,
                version: version.to_owned(),
                message,
            })
    }

    /// Starts the `prepared` instances of `version` in `slot`.
    async fn start_instances(
        self: &Arc<Self>,
        slot: Slot,
        version: &str,
        prepared: Vec<Prepared>,
    ) -> Result<(), Error> {
        for prepared in prepared {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let launched = instance::launch(
                prepared,
                slot,
                version,
                id,
                Arc::downgrade(self),
                self.config.termination_grace,
            )
            .await?;
            let backend =
                Backend::new(id, slot, launched.addr).map_err(|e| Error::InstanceStart {
                    slot,
                    version: version.to_owned(),
                    message: format!("unusable address {}: {e}", launched.addr),
                })?;
            let stop = launched.control.subscribe();
            self.registry()
                .slot_mut(slot)
                .instances
                .push(InstanceEntry {
                    backend,
                    version: version.to_owned(),
                    pid: launched.pid,
                    ready: false,
                    state: InstanceState::Running,
                    control: Some(launched.control),
                });
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
            let probe = Probe {
                client: self.probe_client.clone(),
                path: self.config.readiness_path.clone(),
                interval: self.config.readiness_interval,
                period: self.config.readiness_period,
            };
            tokio::spawn(probe.run(Arc::downgrade(self), id, launched.addr, stop));
        }
        Ok(())
    }

    /// Takes the instances of `slot` that `select` picks out of routing, drains them, stops
    /// them and forgets them. Instances that exited on their own are forgotten too when
    /// selected.
    async fn stop_instances(&self, slot: Slot, select: impl Fn(&InstanceEntry) -> bool) {
        let mut leaving = Vec::new();
        {
            let mut registry = self.registry();
            for entry in registry.slot_mut(slot).instances.iter_mut() {
                if !select(entry) || entry.state == InstanceState::Draining {
                    continue;
                }
                if entry.state == InstanceState::Running {
                    entry.state = InstanceState::Draining;
                }
                entry.ready = false;
                leaving.push((Arc::clone(&entry.backend), entry.control.take()));
            }
            if leaving.is_empty() {
                return;
            }
            self.publish(&registry);
        }
        // Retired after the table without them is published: see `Backend::enter`.
        for (backend, _) in &leaving {
            backend.retire();
        }
        let until = Instant::now() + self.config.drain_timeout;
        for (backend, _) in &leaving {
            if !backend.drained(until).await {
                tracing::warn!(
                    %slot,
                    id = backend.id(),
                    in_flight = backend.in_flight(),
                    "drain timeout ({:?}) passed with requests in flight; stopping the instance",
                    self.config.drain_timeout
                );
            }
        }
        let ids: Vec<u64> = leaving.iter().map(|(backend, _)| backend.id()).collect();
        let stops = leaving
            .into_iter()
            .filter_map(|(_, control)| control)
            .map(InstanceControl::stop);
        futures_util::future::join_all(stops).await;
        let mut registry = self.registry();
        registry
            .slot_mut(slot)
            .instances
            .retain(|entry| !ids.contains(&entry.id()));
        self.publish(&registry);
        tracing::debug!(%slot, stopped = ids.len(), "instances drained and stopped");
    }
}

/// Resolves once `stop` says `true` or its sender is gone (the platform was dropped).
pub(crate) async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not in a `select!` arm.
    let _ = stop.wait_for(|stop| *stop).await;
}

#[async_trait]
impl Platform for LocalPlatform {
    fn name(&self) -> &str {
        "local"
    }

    async fn status(&self) -> Result<PlatformStatus, Error> {
        Ok(self.inner.registry().status())
    }

    async fn deploy(&self, slot: Slot, version: &str, replicas: u32) -> Result<(), Error> {
        let inner = &self.inner;
        let _operation = inner.operations[slot as usize].lock().await;
        {
            let registry = inner.registry();
            Inner::refuse_if_shut_down(&registry, "deploying")?;
            Inner::refuse_if_live(&registry, slot, "deploy to")?;
        }
        // A version the factory refuses is refused before what runs is stopped.
        let prepared = inner.prepare(slot, version, replicas)?;
        inner.stop_instances(slot, |_| true).await;
        {
            let mut registry = inner.registry();
            let state = registry.slot_mut(slot);
            state.version = Some(version.to_owned());
            state.desired = replicas;
            inner.switch.reset_counters(slot);
            inner.publish(&registry);
        }
        tracing::info!(%slot, version, replicas, "deploying");
        inner.start_instances(slot, version, prepared).await
    }

    async fn scale(&self, slot: Slot, replicas: u32) -> Result<(), Error> {
        let inner = &self.inner;
        let _operation = inner.operations[slot as usize].lock().await;
        let (version, running) = {
            let mut registry = inner.registry();
            Inner::refuse_if_shut_down(&registry, "scaling")?;
            let state = registry.slot_mut(slot);
            let Some(version) = state.version.clone() else {
                if replicas == 0 {
                    state.desired = 0;
                    return Ok(());
                }
                return Err(Error::invalid(
                    "scale",
                    format!("slot {slot} runs no version: deploy one before scaling it"),
                ));
            };
            // Instances that exited on their own are replaced, not counted.
            state
                .instances
                .retain(|entry| !matches!(entry.state, InstanceState::Exited(_)));
            state.desired = replicas;
            let running: Vec<u64> = state
                .instances
                .iter()
                .filter(|entry| entry.state == InstanceState::Running)
                .map(InstanceEntry::id)
                .collect();
            inner.publish(&registry);
            (version, running)
        };
        let count = u32::try_from(running.len()).unwrap_or(u32::MAX);
        tracing::info!(%slot, from = count, to = replicas, "scaling");
        if replicas > count {
            let prepared = inner.prepare(slot, &version, replicas - count)?;
            inner.start_instances(slot, &version, prepared).await
        } else {
            // The newest go first (ids only grow).
            let keep = replicas as usize;
            let newest: Vec<u64> = running[keep..].to_vec();
            inner
                .stop_instances(slot, |entry| newest.contains(&entry.id()))
                .await;
            Ok(())
        }
    }

    async fn wait_ready(&self, slot: Slot, deadline: Duration) -> Result<(), Error> {
        let inner = &self.inner;
        let mut changes = inner.changes.subscribe();
        let until = Instant::now() + deadline;
        loop {
            changes.borrow_and_update();
            let (ready, desired) = {
                let registry = inner.registry();
                let state = registry.slot(slot);
                if let Some((entry, status)) = state.exited() {
                    return Err(Error::InstanceExited {
                        slot,
                        version: entry.version.clone(),
                        status: status.to_owned(),
                    });
                }
                (state.ready(), state.desired)
            };
            if ready >= desired {
                return Ok(());
            }
            match tokio::time::timeout_at(until, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `inner`, which is borrowed here: cannot happen.
                Ok(Err(_)) => return Ok(()),
                Err(_) => {
                    return Err(Error::Deadline {
                        what: format!("slot {slot} ready ({ready} of {desired} instances ready)"),
                        waited: deadline,
                    });
                }
            }
        }
    }

    async fn route(&self, routing: Routing) -> Result<(), Error> {
        if let Routing::Split { percent, .. } = routing
            && percent > 100
        {
            return Err(Error::invalid(
                "routing",
                format!("a split of {percent}% is above 100%: give 0 to 100"),
            ));
        }
        let inner = &self.inner;
        let mut registry = inner.registry();
        Inner::refuse_if_shut_down(&registry, "routing")?;
        if registry.routing != routing {
            tracing::info!(from = %registry.routing, to = %routing, "routing");
        }
        registry.routing = routing;
        inner.publish(&registry);
        Ok(())
    }

    async fn stop(&self, slot: Slot) -> Result<(), Error> {
        let inner = &self.inner;
        let _operation = inner.operations[slot as usize].lock().await;
        Inner::refuse_if_live(&inner.registry(), slot, "stop")?;
        inner.stop_instances(slot, |_| true).await;
        let mut registry = inner.registry();
        let state = registry.slot_mut(slot);
        state.version = None;
        state.desired = 0;
        inner.publish(&registry);
        tracing::info!(%slot, "stopped");
        Ok(())
    }

    async fn preview_url(&self, slot: Slot) -> Result<Option<String>, Error> {
        Ok(Some(format!("http://{}", self.preview_addr(slot))))
    }

    async fn traffic(&self, slot: Slot) -> Result<TrafficStats, Error> {
        Ok(self.inner.switch.traffic(slot))
    }
}
