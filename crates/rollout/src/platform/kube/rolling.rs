//! The rolling layout's update: Kubernetes replaces the pods of one Deployment in place with
//! its own `RollingUpdate` strategy, and this module drives and watches it the way an
//! operator does with `kubectl set image`, `kubectl rollout status` and `kubectl rollout
//! undo`, with the previous image recorded so that a failed update goes back by itself.
//!
//! The Deployment is the one [`manifests::rolling`](super::manifests::rolling) builds: named
//! like the app, its app container named like the app (or the first one). Nothing is
//! remembered in the process; what a later command needs is written on the Deployment:
//!
//! | annotation | while | holds |
//! |---|---|---|
//! | [`ROLLOUT_ANNOTATION`] | an update runs | `rolling to <image>`: a second update is refused ([`Error::Busy`]) |
//! | [`STARTED_ANNOTATION`] | an update runs | when it began (RFC 3339, UTC) |
//! | [`PREVIOUS_IMAGE_ANNOTATION`] | from the first update on | the image before the last update: what [`KubePlatform::undo_rolling`] restores |
//!
//! [`ROLLOUT_ANNOTATION`]: super::ROLLOUT_ANNOTATION
//! [`STARTED_ANNOTATION`]: super::STARTED_ANNOTATION
//! [`PREVIOUS_IMAGE_ANNOTATION`]: super::PREVIOUS_IMAGE_ANNOTATION

use std::fmt;
use std::pin::pin;
use std::time::Duration;

use ::kube::api::{Api, Patch, WatchEvent, WatchParams};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use super::platform::{
    CONFLICT_ATTEMPTS, KubePlatform, MAX_WATCH_SECONDS, PLATFORM, PREVIOUS_IMAGE_ANNOTATION,
    ROLLOUT_ANNOTATION, STARTED_ANNOTATION, app_container, conflict_exhausted, image_of,
    is_conflict, patch_params,
};
use super::status::{RolloutStatus, rollout_status};
use crate::event::secs;
use crate::{Error, IntOrPercent, Outcome};

/// How long [`KubePlatform::rolling_update`] waits for the update by default: 5 minutes.
pub const DEFAULT_ROLLING_TIMEOUT: Duration = Duration::from_secs(300);

/// What [`KubePlatform::rolling_update`] does: the new image, the surge settings to set on
/// the Deployment's `RollingUpdate` strategy (left as they are when `None`), and how long
/// the update may take.
///
/// ```
/// use std::time::Duration;
/// use engine_ops_rollout::{IntOrPercent, RollingUpdate};
///
/// let update = RollingUpdate::new("ghcr.io/engine-ops/shop:2.0.0")
///     .max_surge(IntOrPercent::Int(1))
///     .max_unavailable("0".parse()?)
///     .timeout(Duration::from_secs(120));
/// assert_eq!(update.max_unavailable, Some(IntOrPercent::Int(0)));
/// # Ok::<(), engine_ops_rollout::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RollingUpdate {
    /// The image the app container gets.
    pub image: String,
    /// `spec.strategy.rollingUpdate.maxSurge` to set, if any.
    pub max_surge: Option<IntOrPercent>,
    /// `spec.strategy.rollingUpdate.maxUnavailable` to set, if any.
    pub max_unavailable: Option<IntOrPercent>,
    /// How long the update may take before it is undone. Default
    /// [`DEFAULT_ROLLING_TIMEOUT`]. A `ProgressDeadlineExceeded` undoes it at once.
    pub timeout: Duration,
}

impl RollingUpdate {
    /// An update to `image` that keeps the Deployment's surge settings, with a 5 minute
    /// timeout.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            max_surge: None,
            max_unavailable: None,
            timeout: DEFAULT_ROLLING_TIMEOUT,
        }
    }

    /// Sets `maxSurge` on the Deployment: pods above the desired count during the update.
    pub fn max_surge(mut self, value: IntOrPercent) -> Self {
        self.max_surge = Some(value);
        self
    }

    /// Sets `maxUnavailable` on the Deployment: pods below the desired count during the
    /// update. `0` keeps full capacity throughout.
    pub fn max_unavailable(mut self, value: IntOrPercent) -> Self {
        self.max_unavailable = Some(value);
        self
    }

    /// How long the update may take before it is undone.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if self.image.trim().is_empty() {
            return Err(Error::invalid(
                "image",
                "the image is empty: give a reference such as `ghcr.io/engine-ops/shop:2.0.0`",
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid(
                "rolling timeout",
                "zero leaves no time for the update: give it time to roll out (e.g. 5m)",
            ));
        }
        for (what, value) in [
            ("maxSurge", self.max_surge),
            ("maxUnavailable", self.max_unavailable),
        ] {
            if let Some(value) = value {
                value.validate(what)?;
            }
        }
        if self.max_surge.is_some_and(IntOrPercent::is_zero)
            && self.max_unavailable.is_some_and(IntOrPercent::is_zero)
        {
            return Err(Error::invalid(
                "rolling update",
                "maxSurge and maxUnavailable are both 0, so no pod could ever be replaced (Kubernetes refuses it): allow a surge (`--max-surge 1`)",
            ));
        }
        Ok(())
    }
}

/// What happened during a rolling update, as it happens. `Display` is a progress line.
///
/// ```
/// use engine_ops_rollout::RollingEvent;
///
/// let event = RollingEvent::Status {
///     message: r#"Waiting for deployment "shop" rollout to finish: 1 of 3 updated replicas are available..."#.into(),
/// };
/// assert_eq!(event.to_string(), r#"Waiting for deployment "shop" rollout to finish: 1 of 3 updated replicas are available..."#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RollingEvent {
    /// The Deployment's pod template now names the new image (and the strategy is set).
    Updated {
        /// The Deployment.
        deployment: String,
        /// The image before.
        from_image: Option<String>,
        /// The image now.
        to_image: String,
    },
    /// The rollout status changed: kubectl's message for it.
    Status {
        /// `Waiting for deployment "shop" rollout to finish: …`.
        message: String,
    },
    /// The update failed and is being undone.
    Undoing {
        /// Why.
        reason: String,
        /// The image restored.
        to_image: String,
    },
}

impl fmt::Display for RollingEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollingEvent::Updated {
                deployment,
                from_image,
                to_image,
            } => write!(
                f,
                "deployment {deployment:?} image updated: {} -> {to_image}",
                from_image.as_deref().unwrap_or("(none)")
            ),
            RollingEvent::Status { message } => f.write_str(message),
            RollingEvent::Undoing { reason, to_image } => {
                write!(f, "undoing: {reason}; restoring {to_image}")
            }
        }
    }
}

/// What [`KubePlatform::undo_rolling`] did: the image the Deployment ran and the one it was
/// given back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RollingUndo {
    /// The Deployment.
    pub deployment: String,
    /// The image it ran (now recorded as the previous one, so that a second undo goes
    /// forward again, as `kubectl rollout undo` does).
    pub from_image: Option<String>,
    /// The image it runs again.
    pub to_image: String,
}

/// The record of one [`KubePlatform::rolling_update`]. `Display` gives a short summary,
/// `Serialize` the whole record.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RollingReport {
    /// The Deployment.
    pub deployment: String,
    /// The image before the update.
    pub from_image: Option<String>,
    /// The image rolled out.
    pub to_image: String,
    /// [`Outcome::Promoted`] once every pod runs the new image, or
    /// [`Outcome::RolledBack`] with why it was undone.
    pub outcome: Outcome,
    /// From the first request to the end, undo included. Serialized in seconds.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// The undo, when the update failed.
    pub undo: Option<RollingUndo>,
    /// Something that deserves attention although the outcome stands (the undo's own
    /// rollout did not finish in time, the record could not be cleared).
    pub warning: Option<String>,
    /// Every event, in order.
    pub events: Vec<RollingEvent>,
}

impl RollingReport {
    /// `true` when the new image is rolled out.
    pub fn completed(&self) -> bool {
        self.outcome == Outcome::Promoted
    }
}

impl fmt::Display for RollingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self.from_image.as_deref().unwrap_or("(none)");
        match &self.outcome {
            Outcome::Promoted => write!(
                f,
                "rolling update of deployment {:?} from {from} to {}: rolled out",
                self.deployment, self.to_image
            )?,
            Outcome::RolledBack { reason } => write!(
                f,
                "rolling update of deployment {:?} from {from} to {}: undone: {reason}",
                self.deployment, self.to_image
            )?,
        }
        write!(f, "\n  took {:.2?}", self.duration)?;
        if let Some(warning) = &self.warning {
            write!(f, "\n  warning: {warning}")?;
        }
        Ok(())
    }
}

/// Keeps the events and hands each to the caller's progress function; repeats of the same
/// status message are dropped.
struct Recorder<F> {
    progress: F,
    events: Vec<RollingEvent>,
    last_status: Option<String>,
}

impl<F: FnMut(&RollingEvent)> Recorder<F> {
    fn emit(&mut self, event: RollingEvent) {
        (self.progress)(&event);
        self.events.push(event);
    }

    fn status(&mut self, status: &RolloutStatus) {
        let message = status.to_string();
        if self.last_status.as_deref() != Some(message.as_str()) {
            self.last_status = Some(message.clone());
            self.emit(RollingEvent::Status { message });
        }
    }
}

/// How a watch of a Deployment ended.
enum Watched {
    Done,
    Failed(RolloutStatus),
}

impl KubePlatform {
    /// Updates the rolling layout's Deployment (named like the app) to `update.image` and
    /// watches Kubernetes replace its pods, as `kubectl set image` followed by `kubectl
    /// rollout status` does; undoes the update when it fails.
    ///
    /// 1. One strategic-merge PATCH, conditional on the Deployment's `resourceVersion`, sets
    ///    the app container's image, the `RollingUpdate` strategy's `maxSurge` and
    ///    `maxUnavailable` when given, and the annotations: the rollout record and the
    ///    previous image. A Deployment that already carries a rollout record is refused with
    ///    [`Error::Busy`] (another update runs, or its driver crashed: the message says how to
    ///    check and clear it).
    /// 2. A GET, then a WATCH of the Deployment, deciding with [`rollout_status`] after every
    ///    change (`progress` gets each new status message).
    /// 3. On `ProgressDeadlineExceeded`, or when `update.timeout` passes first:
    ///    [`undo_rolling`](Self::undo_rolling), then a watch of the undo's own rollout
    ///    (within `update.timeout` again; if it does not finish, the report's warning says
    ///    so). The outcome is then [`Outcome::RolledBack`]: a failed update that was undone is
    ///    an outcome, not an error.
    /// 4. The rollout record is cleared.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an empty image, a zero timeout, or `maxSurge` and
    /// `maxUnavailable` both zero; [`Error::Busy`]; [`Error::Platform`] for a missing
    /// Deployment or an API error before the update was applied; [`Error::RollbackFailed`]
    /// when the undo itself failed.
    ///
    /// ```no_run
    /// use engine_ops_rollout::{KubePlatform, RollingUpdate};
    ///
    /// # async fn run() -> Result<(), engine_ops_rollout::Error> {
    /// let platform = KubePlatform::try_default(Some("shop"), "shop").await?;
    /// let update = RollingUpdate::new("ghcr.io/engine-ops/shop:2.0.0");
    /// let report = platform
    ///     .rolling_update(&update, |event| eprintln!("{event}"))
    ///     .await?;
    /// if !report.completed() {
    ///     eprintln!("{report}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn rolling_update<F>(
        &self,
        update: &RollingUpdate,
        progress: F,
    ) -> Result<RollingReport, Error>
    where
        F: FnMut(&RollingEvent) + Send,
    {
        update.validate()?;
        let started = Instant::now();
        let name = self.app().to_owned();
        let api = self.deployment_api();
        let mut recorder = Recorder {
            progress,
            events: Vec::new(),
            last_status: None,
        };

        let from_image = self.start_rolling(&api, &name, update).await?;
        recorder.emit(RollingEvent::Updated {
            deployment: name.clone(),
            from_image: from_image.clone(),
            to_image: update.image.clone(),
        });
        tracing::info!(deployment = %name, image = %update.image, "rolling update started");

        let failure = self
            .wait_rolled_out(&api, &name, update.timeout, &mut recorder)
            .await
            .err();
        let mut report = RollingReport {
            deployment: name.clone(),
            from_image,
            to_image: update.image.clone(),
            outcome: Outcome::Promoted,
            duration: Duration::ZERO,
            undo: None,
            warning: None,
            events: Vec::new(),
        };
        if let Some(reason) = failure {
            tracing::warn!(deployment = %name, %reason, "rolling update failed; undoing");
            let undo = match self.undo_rolling().await {
                Ok(undo) => undo,
                Err(error) => {
                    return Err(Error::RollbackFailed {
                        reason,
                        source: Box::new(error),
                    });
                }
            };
            recorder.emit(RollingEvent::Undoing {
                reason: reason.clone(),
                to_image: undo.to_image.clone(),
            });
            recorder.last_status = None;
            if let Err(undo_failure) = self
                .wait_rolled_out(&api, &name, update.timeout, &mut recorder)
                .await
            {
                report.warning = Some(format!(
                    "{} was restored, but its rollout did not finish: {undo_failure}; check `kubectl rollout status deployment/{name} -n {}`",
                    undo.to_image,
                    self.namespace()
                ));
            }
            report.outcome = Outcome::RolledBack { reason };
            report.undo = Some(undo);
        }
        if let Err(error) = self.clear_rolling_record(&api, &name).await {
            let cleared = format!(
                "the rollout record could not be cleared ({error}): clear it with `kubectl annotate deployment {name} -n {} {ROLLOUT_ANNOTATION}-`",
                self.namespace()
            );
            report.warning = Some(match report.warning.take() {
                Some(warning) => format!("{warning}; {cleared}"),
                None => cleared,
            });
        }
        report.duration = started.elapsed();
        report.events = recorder.events;
        Ok(report)
    }

    /// Restores the image the rolling layout's Deployment ran before its last update, as
    /// `kubectl rollout undo` restores the previous pod template, and records the image it
    /// replaces as the previous one (so that a second undo goes forward again). Also clears a
    /// rollout record left by a crashed driver. Returns once the API server accepted the
    /// change, without waiting for the pods (as kubectl does).
    ///
    /// # Errors
    ///
    /// [`Error::NoRollbackTarget`] when no previous image is recorded (the Deployment was
    /// never updated by [`rolling_update`](Self::rolling_update)); [`Error::Platform`] for a
    /// missing Deployment or an API error.
    ///
    /// ```no_run
    /// use engine_ops_rollout::KubePlatform;
    ///
    /// # async fn run() -> Result<(), engine_ops_rollout::Error> {
    /// let platform = KubePlatform::try_default(Some("shop"), "shop").await?;
    /// let undo = platform.undo_rolling().await?;
    /// eprintln!("{} runs {} again", undo.deployment, undo.to_image);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn undo_rolling(&self) -> Result<RollingUndo, Error> {
        let name = self.app().to_owned();
        let api = self.deployment_api();
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let deployment = self.read_deployment(&api, &name).await?;
            let container = self.container_name(&deployment, &name)?;
            let current = image_of(&deployment, self.app());
            let Some(previous) = annotation(&deployment, PREVIOUS_IMAGE_ANNOTATION) else {
                return Err(Error::NoRollbackTarget {
                    reason: format!(
                        "Deployment {name} has no previous image recorded ({PREVIOUS_IMAGE_ANNOTATION}): it was not updated by `rollout rolling`; use `kubectl rollout undo deployment/{name} -n {}`",
                        self.namespace()
                    ),
                });
            };
            let patch = json!({
                "metadata": {
                    "resourceVersion": deployment.metadata.resource_version,
                    "annotations": {
                        PREVIOUS_IMAGE_ANNOTATION: current,
                        ROLLOUT_ANNOTATION: null,
                        STARTED_ANNOTATION: null,
                    }
                },
                "spec": { "template": { "spec": {
                    "containers": [{ "name": container, "image": previous }]
                } } }
            });
            match api
                .patch(&name, &patch_params(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(deployment = %name, image = %previous, "rolling update undone");
                    return Ok(RollingUndo {
                        deployment: name,
                        from_image: current,
                        to_image: previous,
                    });
                }
                Err(e) if is_conflict(&e) && attempt < CONFLICT_ATTEMPTS => {
                    tracing::debug!(deployment = %name, attempt, "conflict while undoing; reading again");
                }
                Err(e) => return Err(api_error(self, "patching", "Deployment", &name, e)),
            }
        }
        Err(conflict_exhausted("Deployment", &name))
    }

    fn deployment_api(&self) -> Api<Deployment> {
        Api::namespaced(self.client().clone(), self.namespace())
    }

    async fn read_deployment(
        &self,
        api: &Api<Deployment>,
        name: &str,
    ) -> Result<Deployment, Error> {
        api.get(name)
            .await
            .map_err(|e| api_error(self, "reading", "Deployment", name, e))
    }

    fn container_name(&self, deployment: &Deployment, name: &str) -> Result<String, Error> {
        app_container(deployment, self.app())
            .map(|container| container.name.clone())
            .ok_or_else(|| Error::Platform {
                platform: PLATFORM.into(),
                operation: format!("reading Deployment {name}"),
                message: format!(
                    "its pod template has no container: recreate it with `rollout manifests rolling --app {} --image <image> | kubectl apply -n {} -f -`",
                    self.app(),
                    self.namespace()
                ),
            })
    }

    /// The conditional patch that starts the update; returns the image it replaced.
    async fn start_rolling(
        &self,
        api: &Api<Deployment>,
        name: &str,
        update: &RollingUpdate,
    ) -> Result<Option<String>, Error> {
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let deployment = self.read_deployment(api, name).await?;
            if let Some(running) = annotation(&deployment, ROLLOUT_ANNOTATION) {
                let mut running = format!("{running} on Deployment {name}");
                if let Some(at) = annotation(&deployment, STARTED_ANNOTATION) {
                    running.push_str(&format!(", started {at}"));
                }
                running.push_str(&format!(
                    "; if its driver crashed, check `kubectl rollout status deployment/{name} -n {ns}` and clear it with `kubectl annotate deployment {name} -n {ns} {ROLLOUT_ANNOTATION}-`",
                    ns = self.namespace()
                ));
                return Err(Error::Busy { running });
            }
            let container = self.container_name(&deployment, name)?;
            let from_image = image_of(&deployment, self.app());
            let mut spec = json!({
                "template": { "spec": {
                    "containers": [{ "name": container, "image": update.image }]
                } }
            });
            if update.max_surge.is_some() || update.max_unavailable.is_some() {
                let mut rolling = json!({});
                if let Some(surge) = update.max_surge {
                    rolling["maxSurge"] = json!(surge);
                }
                if let Some(unavailable) = update.max_unavailable {
                    rolling["maxUnavailable"] = json!(unavailable);
                }
                spec["strategy"] = json!({ "type": "RollingUpdate", "rollingUpdate": rolling });
            }
            let patch = json!({
                "metadata": {
                    "resourceVersion": deployment.metadata.resource_version,
                    "annotations": {
                        ROLLOUT_ANNOTATION: format!("rolling to {}", update.image),
                        STARTED_ANNOTATION: now_rfc3339(),
                        PREVIOUS_IMAGE_ANNOTATION: from_image,
                    }
                },
                "spec": spec,
            });
            match api
                .patch(name, &patch_params(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => return Ok(from_image),
                Err(e) if is_conflict(&e) && attempt < CONFLICT_ATTEMPTS => {
                    tracing::debug!(deployment = %name, attempt, "conflict while starting a rolling update; reading again");
                }
                Err(e) => return Err(api_error(self, "patching", "Deployment", name, e)),
            }
        }
        Err(conflict_exhausted("Deployment", name))
    }

    async fn clear_rolling_record(&self, api: &Api<Deployment>, name: &str) -> Result<(), Error> {
        let patch = json!({
            "metadata": { "annotations": { ROLLOUT_ANNOTATION: null, STARTED_ANNOTATION: null } }
        });
        api.patch(name, &patch_params(), &Patch::Merge(&patch))
            .await
            .map(drop)
            .map_err(|e| api_error(self, "patching", "Deployment", name, e))
    }

    /// Watches `name` until it is rolled out; `Err(reason)` on `ProgressDeadlineExceeded`,
    /// an API error, or when `timeout` passes.
    async fn wait_rolled_out<F: FnMut(&RollingEvent)>(
        &self,
        api: &Api<Deployment>,
        name: &str,
        timeout: Duration,
        recorder: &mut Recorder<F>,
    ) -> Result<(), String> {
        let watch_seconds = timeout.as_secs().saturating_add(1).min(MAX_WATCH_SECONDS) as u32;
        let mut last = None;
        let watched = tokio::time::timeout(
            timeout,
            self.watch_deployment(api, name, watch_seconds, &mut last, recorder),
        )
        .await;
        match watched {
            Ok(Ok(Watched::Done)) => Ok(()),
            Ok(Ok(Watched::Failed(status))) => {
                Err(format!("{status} ({})", super::PROGRESS_DEADLINE_EXCEEDED))
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!(
                "not rolled out within {timeout:?} (last status: {})",
                last.map_or_else(|| "none read".to_owned(), |status| status.to_string())
            )),
        }
    }

    async fn watch_deployment<F: FnMut(&RollingEvent)>(
        &self,
        api: &Api<Deployment>,
        name: &str,
        watch_seconds: u32,
        last: &mut Option<RolloutStatus>,
        recorder: &mut Recorder<F>,
    ) -> Result<Watched, Error> {
        let mut check = |deployment: &Deployment, last: &mut Option<RolloutStatus>| {
            let status = rollout_status(deployment);
            recorder.status(&status);
            let watched = if status.is_failed() {
                Some(Watched::Failed(status.clone()))
            } else if status.is_done() {
                Some(Watched::Done)
            } else {
                None
            };
            *last = Some(status);
            watched
        };
        loop {
            let deployment = self.read_deployment(api, name).await?;
            if let Some(watched) = check(&deployment, last) {
                return Ok(watched);
            }
            let version = deployment.metadata.resource_version.unwrap_or_default();
            let params = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(watch_seconds);
            let stream = api
                .watch(&params, &version)
                .await
                .map_err(|e| api_error(self, "watching", "Deployment", name, e))?;
            let mut stream = pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(WatchEvent::Added(deployment) | WatchEvent::Modified(deployment)) => {
                        if let Some(watched) = check(&deployment, last) {
                            return Ok(watched);
                        }
                    }
                    Ok(WatchEvent::Deleted(_)) => {
                        return Err(Error::Platform {
                            platform: PLATFORM.into(),
                            operation: format!("waiting for Deployment {name} to roll out"),
                            message: "the Deployment was deleted while waiting: recreate it (`rollout manifests rolling | kubectl apply -f -`)".into(),
                        });
                    }
                    Ok(WatchEvent::Bookmark(_)) => {}
                    Ok(WatchEvent::Error(status)) if status.code == 410 => break,
                    Ok(WatchEvent::Error(status)) => {
                        return Err(api_error(
                            self,
                            "watching",
                            "Deployment",
                            name,
                            ::kube::Error::Api(status),
                        ));
                    }
                    Err(error) => {
                        tracing::warn!(deployment = %name, %error, "watch interrupted; reading again");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
            }
        }
    }
}

/// An API error as [`Error::Platform`], naming the verb and the object; a missing object
/// says how to create the rolling layout's objects.
pub(super) fn api_error(
    platform: &KubePlatform,
    verb: &str,
    kind: &str,
    name: &str,
    error: ::kube::Error,
) -> Error {
    let create = format!(
        "rollout manifests rolling --app {} --image <image>",
        platform.app()
    );
    platform.layout_api_error("rolling", &create, verb, kind, name, error)
}

fn annotation(deployment: &Deployment, key: &str) -> Option<String> {
    deployment.metadata.annotations.as_ref()?.get(key).cloned()
}

/// Now, to the second, as RFC 3339 in UTC (`2026-05-01T12:00:00Z`).
fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_that_cannot_work_are_refused_up_front() {
        let ok = RollingUpdate::new("shop:2");
        assert!(ok.validate().is_ok());
        assert!(
            RollingUpdate::new(" ")
                .validate()
                .unwrap_err()
                .is_bad_input()
        );
        assert!(ok.clone().timeout(Duration::ZERO).validate().is_err());
        let stuck = ok
            .clone()
            .max_surge(IntOrPercent::Percent(0))
            .max_unavailable(IntOrPercent::Int(0))
            .validate()
            .unwrap_err();
        assert!(stuck.to_string().contains("both 0"), "{stuck}");
        assert!(
            ok.clone()
                .max_surge(IntOrPercent::Int(0))
                .max_unavailable(IntOrPercent::Percent(25))
                .validate()
                .is_ok()
        );
        assert!(
            ok.max_unavailable(IntOrPercent::Percent(150))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn repeated_statuses_are_reported_once() {
        let mut seen = Vec::new();
        let mut recorder = Recorder {
            progress: |event: &RollingEvent| seen.push(event.to_string()),
            events: Vec::new(),
            last_status: None,
        };
        let waiting = RolloutStatus::WaitingForAvailable {
            name: "shop".into(),
            available: 1,
            updated: 3,
        };
        recorder.status(&waiting);
        recorder.status(&waiting);
        recorder.status(&RolloutStatus::Complete {
            name: "shop".into(),
        });
        assert_eq!(recorder.events.len(), 2);
        drop(recorder);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1], r#"deployment "shop" successfully rolled out"#);
    }

    #[test]
    fn the_report_says_what_happened() {
        let report = RollingReport {
            deployment: "shop".into(),
            from_image: Some("shop:1".into()),
            to_image: "shop:2".into(),
            outcome: Outcome::RolledBack {
                reason: "too slow".into(),
            },
            duration: Duration::from_millis(1500),
            undo: None,
            warning: Some("look".into()),
            events: vec![RollingEvent::Undoing {
                reason: "too slow".into(),
                to_image: "shop:1".into(),
            }],
        };
        assert!(!report.completed());
        let text = report.to_string();
        assert!(
            text.starts_with(
                r#"rolling update of deployment "shop" from shop:1 to shop:2: undone: too slow"#
            ),
            "{text}"
        );
        assert!(text.contains("warning: look"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["outcome"]["result"], "rolled_back");
        assert_eq!(json["events"][0]["kind"], "undoing");
        assert_eq!(json["duration"], 1.5);
    }
}
