//! [`LocalPlatformBuilder`]: what the local platform runs and how, checked once in
//! [`build`](LocalPlatformBuilder::build), which also binds the listeners.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use http::uri::PathAndQuery;

use super::LocalPlatform;
use super::instance::{Prepared, ProcessSpec};
use crate::Error;

/// The default readiness path, as served by `engine-ops-probes`.
pub(crate) const DEFAULT_READINESS_PATH: &str = "/health/ready";
/// The default pause between readiness probes until an instance is first ready.
pub(crate) const DEFAULT_READINESS_INTERVAL: Duration = Duration::from_millis(50);
/// The default pause between readiness probes once an instance is ready.
pub(crate) const DEFAULT_READINESS_PERIOD: Duration = Duration::from_millis(500);
/// The default drain timeout, as Kubernetes' default `terminationGracePeriodSeconds`.
pub(crate) const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default time an instance has to stop once told to.
pub(crate) const DEFAULT_TERMINATION_GRACE: Duration = Duration::from_secs(10);

type AppFactory = dyn Fn(&str) -> Result<Router, String> + Send + Sync;
type ProcessFactory = dyn Fn(&str) -> Result<ProcessSpec, String> + Send + Sync;

/// How instances of a version are made.
#[derive(Clone)]
pub(crate) enum Factory {
    App(Arc<AppFactory>),
    Process(Arc<ProcessFactory>),
}

impl Factory {
    pub(crate) fn prepare(&self, version: &str) -> Result<Prepared, String> {
        match self {
            Factory::App(make) => make(version).map(Prepared::App),
            Factory::Process(make) => make(version).map(Prepared::Process),
        }
    }
}

impl fmt::Debug for Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Factory::App(_) => "App(..)",
            Factory::Process(_) => "Process(..)",
        })
    }
}

/// The checked settings of a platform.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) factory: Factory,
    pub(crate) readiness_path: PathAndQuery,
    pub(crate) readiness_interval: Duration,
    pub(crate) readiness_period: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) termination_grace: Duration,
}

/// Builds a [`LocalPlatform`]: consuming, with defaults, checked once by
/// [`build`](Self::build).
///
/// Exactly one of [`app`](Self::app) (in-process axum apps) and [`process`](Self::process)
/// (child processes) says how an instance of a version is made.
///
/// | setting                                          | default          |
/// |--------------------------------------------------|------------------|
/// | [`front_addr`](Self::front_addr)                 | `127.0.0.1:0`    |
/// | [`readiness_path`](Self::readiness_path)         | `/health/ready`  |
/// | [`readiness_interval`](Self::readiness_interval) | 50 ms            |
/// | [`readiness_period`](Self::readiness_period)     | 500 ms           |
/// | [`drain_timeout`](Self::drain_timeout)           | 30 s             |
/// | [`termination_grace`](Self::termination_grace)   | 10 s             |
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use engine_ops_rollout::LocalPlatform;
///
/// let platform = LocalPlatform::builder()
///     .app(|version: &str| -> Result<Router, String> {
///         let body = format!("hello from {version}");
///         Ok(Router::new()
///             .route("/", get(move || async move { body }))
///             .route("/health/ready", get(|| async { "ready" })))
///     })
///     .front_addr("127.0.0.1:0".parse()?)
///     .readiness_interval(Duration::from_millis(20))
///     .drain_timeout(Duration::from_secs(5))
///     .build()
///     .await?;
/// assert!(platform.front_addr().ip().is_loopback());
///
/// // Configuration that cannot work is refused when building.
/// let refused = LocalPlatform::builder().build().await.unwrap_err();
/// assert!(refused.is_bad_input());
/// platform.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `.build().await`"]
pub struct LocalPlatformBuilder {
    factory: Option<Factory>,
    factories_given: u8,
    front_addr: SocketAddr,
    readiness_path: String,
    readiness_interval: Duration,
    readiness_period: Duration,
    drain_timeout: Duration,
    termination_grace: Duration,
}

impl fmt::Debug for LocalPlatformBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPlatformBuilder")
            .field("factory", &self.factory)
            .field("front_addr", &self.front_addr)
            .field("readiness_path", &self.readiness_path)
            .field("readiness_interval", &self.readiness_interval)
            .field("readiness_period", &self.readiness_period)
            .field("drain_timeout", &self.drain_timeout)
            .field("termination_grace", &self.termination_grace)
            .finish()
    }
}

impl Default for LocalPlatformBuilder {
    fn default() -> Self {
        Self {
            factory: None,
            factories_given: 0,
            front_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            readiness_path: DEFAULT_READINESS_PATH.to_owned(),
            readiness_interval: DEFAULT_READINESS_INTERVAL,
            readiness_period: DEFAULT_READINESS_PERIOD,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            termination_grace: DEFAULT_TERMINATION_GRACE,
        }
    }
}

impl LocalPlatformBuilder {
    /// Instances are in-process axum apps: `factory` builds the [`Router`] of a version (an
    /// `Err` is reported as [`Error::InstanceStart`]). It is called once per instance, so
    /// it can give each instance its own state. Each instance serves on its own loopback
    /// port; handlers can read the switch's address with
    /// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
    pub fn app<F>(mut self, factory: F) -> Self
    where
        F: Fn(&str) -> Result<Router, String> + Send + Sync + 'static,
    {
        self.factory = Some(Factory::App(Arc::new(factory)));
        self.factories_given += 1;
        self
    }

    /// Instances are child processes: `factory` describes the program of a version (an
    /// `Err` is reported as [`Error::InstanceStart`]). Each gets its port in `PORT`.
    pub fn process<F>(mut self, factory: F) -> Self
    where
        F: Fn(&str) -> Result<ProcessSpec, String> + Send + Sync + 'static,
    {
        self.factory = Some(Factory::Process(Arc::new(factory)));
        self.factories_given += 1;
        self
    }

    /// Where the traffic switch listens (port `0`: any free port, see
    /// [`LocalPlatform::front_addr`]).
    pub fn front_addr(mut self, addr: SocketAddr) -> Self {
        self.front_addr = addr;
        self
    }

    /// The readiness probe's path (and query); `2xx` means ready.
    pub fn readiness_path(mut self, path: impl Into<String>) -> Self {
        self.readiness_path = path.into();
        self
    }

    /// The pause between readiness probes until an instance is first ready.
    pub fn readiness_interval(mut self, interval: Duration) -> Self {
        self.readiness_interval = interval;
        self
    }

    /// The pause between readiness probes once an instance is ready; three failures in a
    /// row take it out of routing until a probe passes again.
    pub fn readiness_period(mut self, period: Duration) -> Self {
        self.readiness_period = period;
        self
    }

    /// How long scaling down and stopping wait for an instance's in-flight requests (and
    /// [`shutdown`](LocalPlatform::shutdown) for the switch's connections) before going on.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How long a drained instance has to stop once told to: a child process between
    /// `SIGTERM` and `SIGKILL`, an in-process app before its remaining connections are
    /// closed.
    pub fn termination_grace(mut self, grace: Duration) -> Self {
        self.termination_grace = grace;
        self
    }

    /// Checks the settings, binds the front and preview listeners and starts the switch.
    ///
    /// Fails with [`Error::InvalidConfig`] when no factory or both kinds were given, the
    /// readiness path is not an absolute path, or an interval is zero; with [`Error::Io`]
    /// when a listener cannot be bound.
    pub async fn build(self) -> Result<LocalPlatform, Error> {
        let config = self.check()?;
        LocalPlatform::start(config, self.front_addr).await
    }

    fn check(&self) -> Result<Config, Error> {
        let factory = match (&self.factory, self.factories_given) {
            (Some(factory), 1) => factory.clone(),
            (None, _) => {
                return Err(Error::invalid(
                    "instances",
                    "no factory given: call `.app(..)` for in-process apps or `.process(..)` for child processes",
                ));
            }
            _ => {
                return Err(Error::invalid(
                    "instances",
                    "more than one factory given: call only one of `.app(..)` and `.process(..)`",
                ));
            }
        };
        let readiness_path = PathAndQuery::try_from(self.readiness_path.as_str())
            .ok()
            .filter(|_| self.readiness_path.starts_with('/'))
            .ok_or_else(|| {
                Error::invalid(
                    "readiness path",
                    format!(
                        "{:?} is not an absolute path: use one like \"/health/ready\"",
                        self.readiness_path
                    ),
                )
            })?;
        for (what, value) in [
            ("readiness interval", self.readiness_interval),
            ("readiness period", self.readiness_period),
        ] {
            if value.is_zero() {
                return Err(Error::invalid(
                    what,
                    "zero would probe in a busy loop: use a few milliseconds or more",
                ));
            }
        }
        Ok(Config {
            factory,
            readiness_path,
            readiness_interval: self.readiness_interval,
            readiness_period: self.readiness_period,
            drain_timeout: self.drain_timeout,
            termination_grace: self.termination_grace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> LocalPlatformBuilder {
        LocalPlatformBuilder::default().app(|_: &str| Ok(Router::new()))
    }

    fn refused(builder: &LocalPlatformBuilder) -> String {
        match builder.check() {
            Err(error) => {
                assert!(error.is_bad_input());
                error.to_string()
            }
            Ok(config) => panic!("accepted: {config:?}"),
        }
    }

    #[test]
    fn defaults_are_checked_once() {
        let config = app().check().unwrap();
        assert_eq!(config.readiness_path, "/health/ready");
        assert_eq!(config.readiness_interval, Duration::from_millis(50));
        assert_eq!(config.readiness_period, Duration::from_millis(500));
        assert_eq!(config.drain_timeout, Duration::from_secs(30));
        assert_eq!(config.termination_grace, Duration::from_secs(10));
        assert!(matches!(config.factory, Factory::App(_)));
    }

    #[test]
    fn bad_settings_are_refused_with_what_to_do() {
        let none = refused(&LocalPlatformBuilder::default());
        assert!(none.contains("call `.app(..)`"), "{none}");
        let both = refused(&app().process(|_: &str| Ok(ProcessSpec::new("x"))));
        assert!(both.contains("only one"), "{both}");
        let path = refused(&app().readiness_path("health"));
        assert!(path.contains("not an absolute path"), "{path}");
        let zero = refused(&app().readiness_interval(Duration::ZERO));
        assert!(zero.starts_with("invalid readiness interval"), "{zero}");
        let zero = refused(&app().readiness_period(Duration::ZERO));
        assert!(zero.starts_with("invalid readiness period"), "{zero}");
        assert!(
            app()
                .readiness_path("/ready?full=1")
                .drain_timeout(Duration::ZERO)
                .check()
                .is_ok()
        );
    }

    #[test]
    fn factories_make_one_instance_per_call() {
        let config = LocalPlatformBuilder::default()
            .process(|version: &str| {
                if version == "bad" {
                    Err("no such release".to_owned())
                } else {
                    Ok(ProcessSpec::new("/bin/app").arg(version))
                }
            })
            .check()
            .unwrap();
        match config.factory.prepare("v2") {
            Ok(Prepared::Process(spec)) => assert_eq!(spec.get_args(), ["v2"]),
            _ => panic!("expected a process"),
        }
        assert_eq!(
            config.factory.prepare("bad").err().as_deref(),
            Some("no such release")
        );
    }
}
