//! [`Probes`]: the registry of checks, the lifecycle, and how each probe is evaluated.

use crate::Error;
use crate::check::{Check, Completed, Entry, Lookup, Probe};
use crate::lifecycle::{Lifecycle, LifecycleState};
use crate::report::{Detail, HealthReport, Status};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tokio::time::Instant;

/// The default paths of the startup, liveness and readiness probes.
pub const DEFAULT_PATHS: [&str; 3] = ["/health/startup", "/health/live", "/health/ready"];

/// The probes of one service: its [`Lifecycle`], its checks and how responses look.
/// Cheap to clone (clones share the checks and their caches).
///
/// Build it with [`Probes::builder`]; serve it with [`Probes::router`] (axum) or
/// [`Probes::service`] (any tower stack); or ask it directly with [`Probes::report`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), engine_ops_probes::Error> {
/// use engine_ops_probes::{Check, Lifecycle, Probe, Probes, Status};
///
/// let lifecycle = Lifecycle::new();
/// let probes = Probes::builder(lifecycle.clone())
///     .check(Check::from_fn("cache", || async { Err::<(), _>("connection refused") }).non_critical())
///     .build()?;
///
/// assert_eq!(probes.report(Probe::Readiness).await.status, Status::Fail, "still starting");
/// assert_eq!(probes.report(Probe::Liveness).await.status, Status::Pass);
/// lifecycle.mark_started();
/// let ready = probes.report(Probe::Readiness).await;
/// assert_eq!(ready.status, Status::Warn, "a non-critical check failed");
/// assert_eq!(ready.check("cache").unwrap().output.as_deref(), Some("connection refused"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Probes {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    lifecycle: Lifecycle,
    /// The checks of each probe, in `Probe` order.
    by_probe: [Vec<Arc<Entry>>; 3],
    paths: [String; 3],
    pub(crate) detail: Detail,
}

impl fmt::Debug for Probes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |p: Probe| -> Vec<&str> {
            self.inner.by_probe[p as usize]
                .iter()
                .map(|e| e.name.as_str())
                .collect()
        };
        f.debug_struct("Probes")
            .field("lifecycle", &self.inner.lifecycle)
            .field("paths", &self.inner.paths)
            .field("detail", &self.inner.detail)
            .field("startup", &names(Probe::Startup))
            .field("liveness", &names(Probe::Liveness))
            .field("readiness", &names(Probe::Readiness))
            .finish()
    }
}

/// Configures [`Probes`]; made by [`Probes::builder`].
#[must_use = "call `build()` to get the probes"]
pub struct ProbesBuilder {
    lifecycle: Lifecycle,
    checks: Vec<Check>,
    paths: [String; 3],
    detail: Detail,
}

impl fmt::Debug for ProbesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbesBuilder")
            .field("checks", &self.checks)
            .field("paths", &self.paths)
            .field("detail", &self.detail)
            .finish()
    }
}

impl ProbesBuilder {
    /// Registers a check.
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// Serves `probe` on `path` instead of its default (`/health/startup`, `/health/live`,
    /// `/health/ready`).
    pub fn path(mut self, probe: Probe, path: impl Into<String>) -> Self {
        self.paths[probe as usize] = path.into();
        self
    }

    /// How much responses tell (default [`Detail::Never`]: status only).
    pub fn detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    /// Checks the configuration and builds the probes.
    ///
    /// # Errors
    ///
    /// An invalid or duplicate check name, a zero timeout, an invalid or duplicate path.
    pub fn build(self) -> Result<Probes, Error> {
        for (i, probe) in Probe::ALL.into_iter().enumerate() {
            validate_path(probe, &self.paths[i])?;
            for other in &Probe::ALL[..i] {
                if self.paths[*other as usize] == self.paths[i] {
                    return Err(Error::DuplicatePath {
                        path: self.paths[i].clone(),
                        first: other.as_str(),
                        second: probe.as_str(),
                    });
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut by_probe: [Vec<Arc<Entry>>; 3] = Default::default();
        for check in self.checks {
            let entry = Arc::new(Entry::new(check));
            entry.validate()?;
            if !seen.insert(entry.name.clone()) {
                return Err(Error::DuplicateCheck {
                    name: entry.name.clone(),
                });
            }
            for probe in Probe::ALL {
                if entry.belongs_to(probe) {
                    by_probe[probe as usize].push(entry.clone());
                }
            }
        }
        Ok(Probes {
            inner: Arc::new(Inner {
                lifecycle: self.lifecycle,
                by_probe,
                paths: self.paths,
                detail: self.detail,
            }),
        })
    }
}

/// Paths must be routable by axum as plain, literal paths.
fn validate_path(probe: Probe, path: &str) -> Result<(), Error> {
    let err = |reason| {
        Err(Error::InvalidPath {
            probe: probe.as_str(),
            path: path.to_owned(),
            reason,
        })
    };
    if !path.starts_with('/') {
        return err("it must start with `/`");
    }
    if path.len() > 1024 {
        return err("it is longer than 1024 bytes");
    }
    let pchar = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'%'
            )
    };
    if !path.bytes().all(pchar) {
        return err(
            "use only letters, digits and `-._~!$&'()+,;=:@%/` (no query, fragment, spaces or `{}`/`*`)",
        );
    }
    if path.split('/').any(|seg| seg.starts_with(':')) {
        return err("a segment may not start with `:` (axum reads it as a capture)");
    }
    Ok(())
}

impl Probes {
    /// A builder, with no checks, the default paths and status-only responses.
    pub fn builder(lifecycle: Lifecycle) -> ProbesBuilder {
        ProbesBuilder {
            lifecycle,
            checks: Vec::new(),
            paths: DEFAULT_PATHS.map(str::to_owned),
            detail: Detail::default(),
        }
    }

    /// The lifecycle the probes report on.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.inner.lifecycle
    }

    /// The path `probe` is served on.
    pub fn path(&self, probe: Probe) -> &str {
        &self.inner.paths[probe as usize]
    }

    /// The probe served on `path`, if any.
    pub fn probe_for_path(&self, path: &str) -> Option<Probe> {
        Probe::ALL.into_iter().find(|p| self.path(*p) == path)
    }

    /// How responses are detailed.
    pub fn detail(&self) -> Detail {
        self.inner.detail
    }

    fn entries(&self, probe: Probe) -> &[Arc<Entry>] {
        &self.inner.by_probe[probe as usize]
    }

    /// Why the lifecycle fails `probe` now, if it does.
    fn lifecycle_failure(&self, probe: Probe) -> Option<&'static str> {
        let lifecycle = &self.inner.lifecycle;
        match probe {
            Probe::Liveness => None,
            Probe::Startup if lifecycle.has_started() => None,
            Probe::Startup => Some(match lifecycle.state() {
                LifecycleState::Starting => "starting: startup has not completed",
                _ => "startup did not complete: the service is shutting down",
            }),
            Probe::Readiness => match lifecycle.state() {
                LifecycleState::Ready => None,
                LifecycleState::Starting => Some("starting: startup has not completed"),
                LifecycleState::Draining => Some("draining: the service is shutting down"),
                LifecycleState::Stopped => Some("stopped"),
            },
        }
    }

    /// The status of `probe` from cached results only, if every check has a fresh one.
    pub(crate) fn cached_status(&self, probe: Probe) -> Option<Status> {
        if self.lifecycle_failure(probe).is_some() {
            return Some(Status::Fail);
        }
        let now = Instant::now();
        let mut status = Status::Pass;
        for e in self.entries(probe) {
            status = status.max(e.fresh_status(now)?);
        }
        Some(status)
    }

    /// The full report of `probe` from cached results only, if every check has a fresh one.
    pub(crate) fn cached_report(&self, probe: Probe) -> Option<HealthReport> {
        if let Some(why) = self.lifecycle_failure(probe) {
            return Some(lifecycle_report(why));
        }
        let now = Instant::now();
        let results = self
            .entries(probe)
            .iter()
            .map(|e| Some((e, e.fresh(now)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(assemble(results.iter().map(|(e, c)| (&***e, &**c))))
    }

    /// Evaluates `probe`: the lifecycle, then every check of the probe (cached results where
    /// fresh, otherwise a run, shared with concurrent requests). Checks run concurrently;
    /// this takes at most about the longest check timeout.
    ///
    /// When the lifecycle alone fails the probe (readiness while starting or draining), no
    /// check runs and the answer is immediate.
    pub async fn report(&self, probe: Probe) -> HealthReport {
        if let Some(why) = self.lifecycle_failure(probe) {
            return lifecycle_report(why);
        }
        // Start every run first, then wait: the checks run concurrently.
        let lookups: Vec<(&Arc<Entry>, Lookup)> = self
            .entries(probe)
            .iter()
            .map(|e| (e, e.lookup()))
            .collect();
        let mut results: Vec<(&Entry, Arc<Completed>)> = Vec::with_capacity(lookups.len());
        for (entry, lookup) in lookups {
            let completed = match lookup {
                Lookup::Fresh(c) => c,
                Lookup::Wait(flight) => entry.wait(flight).await,
            };
            results.push((entry, completed));
        }
        // The lifecycle may have changed while checks ran: draining wins.
        if let Some(why) = self.lifecycle_failure(probe) {
            return lifecycle_report(why);
        }
        assemble(results.iter().map(|(e, c)| (*e, &**c)))
    }
}

fn lifecycle_report(why: &str) -> HealthReport {
    let mut report = HealthReport::new(Status::Fail);
    report.output = Some(why.to_owned());
    report
}

fn assemble<'a>(results: impl Iterator<Item = (&'a Entry, &'a Completed)>) -> HealthReport {
    let mut status = Status::Pass;
    let mut checks = BTreeMap::new();
    for (entry, completed) in results {
        let report = entry.report(completed);
        status = status.max(report.status);
        checks.insert(entry.name.clone(), vec![report]);
    }
    let mut report = HealthReport::new(status);
    report.checks = checks;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(f: impl FnOnce(ProbesBuilder) -> ProbesBuilder) -> Result<Probes, Error> {
        f(Probes::builder(Lifecycle::new())).build()
    }

    #[test]
    fn rejects_bad_configuration() {
        let ok = || Check::from_fn("a", || async { true });
        assert!(matches!(
            build(|b| b.check(ok()).check(ok())),
            Err(Error::DuplicateCheck { .. })
        ));
        assert!(matches!(
            build(|b| b.check(Check::from_fn("a b", || async { true }))),
            Err(Error::InvalidCheckName { .. })
        ));
        assert!(matches!(
            build(|b| b.check(ok().timeout(std::time::Duration::ZERO))),
            Err(Error::ZeroTimeout { .. })
        ));
        assert!(matches!(
            build(|b| b.path(Probe::Readiness, "/health/live")),
            Err(Error::DuplicatePath {
                first: "liveness",
                second: "readiness",
                ..
            })
        ));
        for bad in [
            "health", "/a b", "/{x}", "/*rest", "/:id", "/a?b", "/a#b", "/é",
        ] {
            assert!(
                matches!(
                    build(|b| b.path(Probe::Startup, bad)),
                    Err(Error::InvalidPath { .. })
                ),
                "{bad}"
            );
        }
        let p = build(|b| {
            b.path(Probe::Liveness, "/livez")
                .path(Probe::Readiness, "/readyz")
        })
        .unwrap();
        assert_eq!(p.probe_for_path("/livez"), Some(Probe::Liveness));
        assert_eq!(p.probe_for_path("/health/ready"), None);
        // Every accepted path must be routable: axum panics on invalid ones.
        let _ = p.router::<()>();
    }

    proptest::proptest! {
        /// Whatever path the builder accepts, axum routes without panicking, and the
        /// builder itself never panics.
        #[test]
        fn accepted_paths_are_routable(
            paths in proptest::collection::vec("/?[a-z:{}*%./@;=~-]{0,12}", 3),
        ) {
            let built = build(|b| {
                b.path(Probe::Startup, paths[0].clone())
                    .path(Probe::Liveness, paths[1].clone())
                    .path(Probe::Readiness, paths[2].clone())
            });
            if let Ok(probes) = built {
                let routed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probes.router::<()>()));
                proptest::prop_assert!(routed.is_ok(), "axum rejected {:?}", paths);
            }
        }
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let e = build(|b| b.check(Check::from_fn("", || async { true }))).unwrap_err();
        assert!(e.to_string().contains("use 1 to 64 letters"), "{e}");
    }
}
