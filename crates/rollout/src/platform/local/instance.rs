//! Instances of the local platform: in-process axum apps and child processes, how each is
//! started, watched, probed for readiness and stopped.
//!
//! Every instance runs in one supervising task that owns it (the app's listener and
//! connections, or the [`Child`]) and ends only once the instance is gone: a stopped app has
//! closed its listener and connections, a stopped child has been reaped. The task is told to
//! stop through a `watch` channel whose sender lives in the platform's registry, so dropping
//! the platform stops every instance too.

use std::ffi::{OsStr, OsString};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Weak;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_service::Service;

use super::server::serve_http1;
use super::{Inner, stop_requested};
use crate::Error;
use crate::platform::Slot;

/// How long one readiness probe may take (Kubernetes' default `timeoutSeconds`).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Consecutive failed probes that take a ready instance out of routing (Kubernetes'
/// default `failureThreshold`).
pub(crate) const FAILURE_THRESHOLD: u32 = 3;

/// A program to run as an instance of the local platform, built by the
/// [`process`](crate::LocalPlatformBuilder::process) factory for each version.
///
/// The platform picks a free loopback port for every instance and passes it in the `PORT`
/// environment variable (it wins over a `PORT` given here); the program must listen on
/// `127.0.0.1:$PORT` and answer the readiness probe there. Standard input is closed;
/// standard output and error are inherited unless [`discard_output`](Self::discard_output)
/// is set.
///
/// ```
/// use engine_ops_rollout::ProcessSpec;
///
/// let spec = ProcessSpec::new("/usr/local/bin/shop")
///     .arg("--release")
///     .arg("v2")
///     .env("RUST_LOG", "info")
///     .current_dir("/srv/shop");
/// assert_eq!(spec.program(), std::path::Path::new("/usr/local/bin/shop"));
/// assert_eq!(spec.get_args().len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    discard_output: bool,
}

impl ProcessSpec {
    /// Runs `program` (a path, or a name looked up in `PATH`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
            discard_output: false,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable (on top of the parent's environment).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs the program in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Sends the program's standard output and error to `/dev/null` instead of the parent's.
    pub fn discard_output(mut self) -> Self {
        self.discard_output = true;
        self
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }
}

/// What the factory made for one instance, before anything runs.
pub(crate) enum Prepared {
    App(Router),
    Process(ProcessSpec),
}

/// The handle the registry keeps for a running instance. Dropping it stops the instance.
#[derive(Debug)]
pub(crate) struct InstanceControl {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl InstanceControl {
    /// Tells the instance to stop (its readiness prober stops too).
    pub(crate) fn signal(&self) {
        self.stop.send_replace(true);
    }

    /// Tells the instance to stop and waits until it is gone (a child: reaped).
    pub(crate) async fn stop(self) {
        self.signal();
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "an instance's supervising task failed");
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// A running instance, before it is registered.
pub(crate) struct Launched {
    pub(crate) addr: SocketAddr,
    pub(crate) pid: Option<u32>,
    pub(crate) control: InstanceControl,
}

/// Starts one instance. `grace` is how long it gets to stop once told to.
pub(crate) async fn launch(
    prepared: Prepared,
    slot: Slot,
    version: &str,
    id: u64,
    platform: Weak<Inner>,
    grace: Duration,
) -> Result<Launched, Error> {
    let start_error = |message: String| Error::InstanceStart {
        slot,
        version: version.to_owned(),
        message,
    };
    let (stop, stopped) = watch::channel(false);
    match prepared {
        Prepared::App(router) => {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| start_error(format!("binding a loopback port: {e}")))?;
            let addr = listener
                .local_addr()
                .map_err(|e| start_error(format!("reading the bound port: {e}")))?;
            let task = tokio::spawn(serve_app(listener, router, stopped, grace));
            Ok(Launched {
                addr,
                pid: None,
                control: InstanceControl { stop, task },
            })
        }
        Prepared::Process(spec) => {
            let addr = free_port().map_err(|e| start_error(format!("picking a port: {e}")))?;
            let mut command = Command::new(&spec.program);
            command
                .args(&spec.args)
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .env("PORT", addr.port().to_string())
                .stdin(Stdio::null())
                .kill_on_drop(true);
            if spec.discard_output {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
            if let Some(dir) = &spec.current_dir {
                command.current_dir(dir);
            }
            let child = command
                .spawn()
                .map_err(|e| start_error(format!("running {}: {e}", spec.program.display())))?;
            let pid = child.id();
            tracing::debug!(%slot, version, id, ?pid, %addr, "started a child process");
            let task = tokio::spawn(supervise_child(child, stopped, grace, platform, id));
            Ok(Launched {
                addr,
                pid,
                control: InstanceControl { stop, task },
            })
        }
    }
}

/// A free loopback port for a child process: bound, read, closed, then passed in `PORT`.
///
/// Another socket could take the port before the child binds it. To make that unlikely, the
/// port is drawn at random **below the kernel's ephemeral range** (Linux:
/// `/proc/sys/net/ipv4/ip_local_port_range`), where neither `bind(:0)` nor outgoing
/// connections pick ports, so a busy machine's client sockets cannot take it; only where
/// that range cannot be read (or no port there is free) does it fall back to `bind(:0)`.
/// Should the child still fail to bind, it exits and the platform reports
/// [`Error::InstanceExited`].
fn free_port() -> std::io::Result<SocketAddr> {
    let bind = |port: u16| std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)));
    if let Some((low, high)) = below_ephemeral_range() {
        for _ in 0..16 {
            let port = low + u16::try_from(random() % u64::from(high - low)).unwrap_or(0);
            if let Ok(probe) = bind(port) {
                return probe.local_addr();
            }
        }
    }
    bind(0)?.local_addr()
}

/// Ports `[low, high)` below the ephemeral range, if it can be read and leaves room.
fn below_ephemeral_range() -> Option<(u16, u16)> {
    const LOWEST: u16 = 10_000;
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let ephemeral_low: u16 = range.split_whitespace().next()?.parse().ok()?;
    (ephemeral_low > LOWEST + 1_000).then_some((LOWEST, ephemeral_low))
}

/// A random number from the standard library's per-process random hash keys.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Serves `router` on `listener` until stopped, then stops gracefully: the listener closes,
/// idle connections close, in-flight requests get `grace` to finish, the rest is ended.
async fn serve_app(
    listener: TcpListener,
    router: Router,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let make_service = move |peer: SocketAddr| {
        let router = router.clone();
        service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut router, cx)).await?;
                router.call(request).await
            }
        })
    };
    serve_http1(listener, make_service, stop, grace, "in-process instance").await;
}

/// Owns `child` until it is reaped: reports an exit of its own to the platform, or, when
/// told to stop, terminates it (SIGTERM, then SIGKILL after `grace`) and reaps it.
async fn supervise_child(
    mut child: Child,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    platform: Weak<Inner>,
    id: u64,
) {
    let exited = tokio::select! {
        status = child.wait() => Some(status),
        () = stop_requested(&mut stop) => None,
    };
    match exited {
        Some(status) => {
            let status = match status {
                Ok(status) => status.to_string(),
                Err(error) => format!("could not be awaited: {error}"),
            };
            if let Some(platform) = platform.upgrade() {
                platform.instance_exited(id, status);
            }
        }
        None => terminate(&mut child, grace).await,
    }
}

/// Asks `child` to stop with SIGTERM, waits up to `grace`, then kills it; always reaps it.
///
/// SIGTERM is sent by running `kill -TERM <pid>` (`/bin/kill`): the crate forbids `unsafe`
/// and takes no `libc`/`nix` dependency for one signal. Where that fails (no `kill`
/// program, not Unix), the child gets SIGKILL at once through [`Child::start_kill`].
async fn terminate(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else {
        // Already reaped.
        return;
    };
    let asked = sigterm(pid).await;
    if asked {
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(status)) => {
                tracing::debug!(pid, %status, "child process stopped");
                return;
            }
            Ok(Err(error)) => tracing::warn!(pid, %error, "waiting for a child process failed"),
            Err(_) => tracing::warn!(
                pid,
                "child process ignored SIGTERM for {grace:?}; killing it"
            ),
        }
    }
    if let Err(error) = child.start_kill() {
        tracing::debug!(pid, %error, "killing a child process failed (it may have exited)");
    }
    match child.wait().await {
        Ok(status) => tracing::debug!(pid, %status, "child process killed"),
        Err(error) => tracing::warn!(pid, %error, "reaping a child process failed"),
    }
}

#[cfg(unix)]
async fn sigterm(pid: u32) -> bool {
    for kill in ["/bin/kill", "kill"] {
        let status = Command::new(kill)
            .arg("-TERM")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        match status {
            Ok(status) => return status.success(),
            Err(error) => tracing::debug!(kill, %error, "cannot run kill"),
        }
    }
    false
}

#[cfg(not(unix))]
async fn sigterm(_pid: u32) -> bool {
    false
}

/// How an instance's readiness is probed.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    pub(crate) client: Client<HttpConnector, Empty<Bytes>>,
    pub(crate) path: PathAndQuery,
    /// Between probes until the instance is first ready.
    pub(crate) interval: Duration,
    /// Between probes once it is ready.
    pub(crate) period: Duration,
}

impl Probe {
    /// One probe: `true` for a `2xx` answer within [`PROBE_TIMEOUT`].
    async fn check(&self, uri: &Uri) -> bool {
        let Ok(request) = Request::get(uri.clone())
            .header(
                http::header::USER_AGENT,
                "engine-ops-rollout readiness probe",
            )
            .body(Empty::new())
        else {
            return false;
        };
        let exchange = async {
            let response = self.client.request(request).await.ok()?;
            let ready = response.status().is_success();
            // Read the (small) body so that the connection goes back to the pool.
            response.into_body().collect().await.ok()?;
            Some(ready)
        };
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, exchange).await,
            Ok(Some(true))
        )
    }

    /// Probes the instance `id` at `addr` until it stops (or the platform is gone), telling
    /// the platform each time readiness changes: ready at the first success, not ready after
    /// [`FAILURE_THRESHOLD`] failures in a row.
    pub(crate) async fn run(
        self,
        platform: Weak<Inner>,
        id: u64,
        addr: SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) {
        let Ok(authority) = Authority::try_from(addr.to_string().as_str()) else {
            return;
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(authority);
        parts.path_and_query = Some(self.path.clone());
        let Ok(uri) = Uri::from_parts(parts) else {
            return;
        };
        let probing = async {
            let mut ready = false;
            let mut failures = 0;
            loop {
                let passed = self.check(&uri).await;
                let changed = if passed {
                    failures = 0;
                    !std::mem::replace(&mut ready, true)
                } else if ready {
                    failures += 1;
                    if failures >= FAILURE_THRESHOLD {
                        failures = 0;
                        ready = false;
                        true
                    } else {
                        false
                    }
                } else {
                    false
                };
                if changed {
                    let Some(platform) = platform.upgrade() else {
                        return;
                    };
                    platform.set_ready(id, ready);
                }
                let pause = if ready { self.period } else { self.interval };
                tokio::time::sleep(pause).await;
                if platform.strong_count() == 0 {
                    return;
                }
            }
        };
        tokio::select! {
            () = probing => {}
            () = stop_requested(&mut stop) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_specs_collect_arguments_and_environment() {
        let spec = ProcessSpec::new("app")
            .arg("--a")
            .args(["b", "c"])
            .env("K", "V")
            .discard_output();
        assert_eq!(spec.program(), Path::new("app"));
        assert_eq!(spec.get_args(), ["--a", "b", "c"].map(OsString::from));
        assert_eq!(spec.env, [(OsString::from("K"), OsString::from("V"))]);
        assert!(spec.discard_output);
        assert!(spec.current_dir.is_none());
    }

    #[test]
    fn free_ports_are_loopback_bindable_and_outside_the_ephemeral_range() {
        let addr = free_port().unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        std::net::TcpListener::bind(addr).expect("the port is free");
        if let Some((low, high)) = below_ephemeral_range() {
            assert!((low..high).contains(&addr.port()), "{addr}");
        }
        let ports: std::collections::BTreeSet<u16> =
            (0..8).map(|_| free_port().unwrap().port()).collect();
        assert!(ports.len() > 1, "ports are drawn at random: {ports:?}");
    }
}
