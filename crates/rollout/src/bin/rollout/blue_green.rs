//! `rollout blue-green`: what a blue-green deploy script does, as one [`BlueGreen`] rollout
//! driven by [`Rollouts`] over [`KubePlatform`], under the rollout record that makes a second
//! command wait its turn and lets the next one detect a crashed driver.
//!
//! The library's `BlueGreen` deploys, waits, runs the gates, asks for confirmation and
//! switches. What a Kubernetes release adds is done here, inside the same rollout (so that a
//! failure rolls back through the driver, with events):
//!
//! - the **watch**: the driver's own watch analyses traffic counters, which Kubernetes does
//!   not give it; here the new live slot is watched through the cluster instead (every pod
//!   ready, no pod problem), and a failure rolls back while the previous release still runs;
//! - the **standby**: a process cannot stop a slot in the background after it exits, so the
//!   previous release is scaled down by this command, at once (`--standby 0s`) or after
//!   waiting out the standby, and only when traffic is still on the new release and no other
//!   rollout began meanwhile.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use engine_ops_rollout::{
    BlueGreen, Error, EventKind, Gate, GateContext, KubePlatform, Phase, Platform, RolloutContext,
    RolloutRecord, RolloutReport, RolloutStrategy, Rollouts, Routing, Slot, Standby,
};
use tokio::time::Instant;

use crate::cli::{Smoke, format_duration};
use crate::output::{self, Progress};
use crate::{Failure, Outcome};

/// What `blue-green` was asked to do, resolved from the command line.
#[derive(Debug, Clone)]
pub(crate) struct BlueGreenOptions {
    pub(crate) image: String,
    pub(crate) replicas: Option<u32>,
    pub(crate) yes: bool,
    pub(crate) smoke: Vec<Smoke>,
    pub(crate) ready_timeout: Duration,
    pub(crate) watch: Duration,
    pub(crate) standby: Duration,
}

/// Refuses, before anything runs, to wait for an answer nobody can give.
pub(crate) fn require_confirmation_possible(yes: bool, what: &str) -> Result<(), Failure> {
    if yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "stdin is not a terminal, so {what} cannot be confirmed: pass --yes to go ahead without asking"
    )))
}

/// Asks `question` on the terminal; `true` for `y` or `yes`.
pub(crate) async fn ask(question: String) -> bool {
    tokio::task::spawn_blocking(move || {
        eprint!("{question} [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).is_ok()
            && matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
    })
    .await
    .unwrap_or(false)
}

/// The message for a rollout recorded as in progress: what it is and how to recover.
pub(crate) fn in_progress(platform: &KubePlatform, record: &RolloutRecord) -> Failure {
    let mut message = format!(
        "a rollout of {} is recorded as in progress on Service {}-active: {} (phase {}",
        platform.app(),
        platform.app(),
        record.description,
        record.phase
    );
    if let Some(at) = &record.started_at {
        message.push_str(&format!(", started {at}"));
    }
    message.push(')');
    let previous = match (record.previous_slot, &record.previous_image) {
        (Some(slot), Some(image)) => format!("slot {slot} ({image})"),
        (Some(slot), None) => format!("slot {slot}"),
        (None, _) => "the previous release".to_owned(),
    };
    message.push_str(&format!(
        "; wait for it if another `rollout` command runs; if its driver crashed, run `rollout rollback --app {}` to restore {previous}",
        platform.app()
    ));
    Failure::busy(message)
}

/// A smoke check as a gate: a path goes to the preview URL, an absolute URL as it is.
fn smoke_gate(smoke: &Smoke) -> Gate {
    match smoke {
        Smoke::Path(path) => Gate::http(format!("smoke {path}"), path.clone()),
        Smoke::Url { url, origin, path } => {
            let (origin, path) = (origin.clone(), path.clone());
            Gate::from_fn(format!("smoke {url}"), move |ctx: GateContext| {
                let check = Gate::http("smoke", path.clone());
                let at = GateContext::new(ctx.slot, ctx.version, Some(origin.clone()));
                async move { check.run(at).await.map(drop) }
            })
            // The inner HTTP gate times out first, with its own message.
            .timeout(engine_ops_rollout::DEFAULT_GATE_TIMEOUT + Duration::from_secs(1))
        }
    }
}

/// [`BlueGreen`], then the Kubernetes watch and the stop of the previous release (see the
/// module docs).
#[derive(Debug)]
struct Release {
    inner: BlueGreen,
    platform: Arc<KubePlatform>,
    watch: Duration,
    stop_previous: bool,
}

#[async_trait]
impl RolloutStrategy for Release {
    fn name(&self) -> &str {
        "blue-green"
    }

    fn ready_deadline(&self) -> Duration {
        RolloutStrategy::ready_deadline(&self.inner)
    }

    async fn run(&self, ctx: &mut RolloutContext) -> Result<(), Error> {
        self.inner.run(ctx).await?;
        let target = BlueGreen::target_slot(ctx.live_slot());
        if !self.watch.is_zero() {
            watch(ctx, &self.platform, target, self.watch).await?;
        }
        if self.stop_previous
            && let Some(previous) = ctx.live_slot()
        {
            ctx.phase(
                Phase::Promoted,
                Some(format!("scaling {previous} (the previous release) to zero")),
            );
            // The release stands: a failed clean-up is a warning, not a reason to roll back.
            if let Err(error) = ctx.stop(previous).await {
                ctx.emit(EventKind::Warning(format!(
                    "could not scale {previous} down: {error}; scale it with `kubectl scale deployment {}-{previous} --replicas=0`",
                    self.platform.app()
                )));
            }
        }
        Ok(())
    }
}

/// Watches `slot` for `duration`: every pod ready, no pod problem. A failure aborts (the
/// driver rolls back); a failed read is a warning.
async fn watch(
    ctx: &RolloutContext,
    platform: &KubePlatform,
    slot: Slot,
    duration: Duration,
) -> Result<(), Error> {
    let shown = format_duration(duration);
    ctx.phase(
        Phase::Promoted,
        Some(format!("watching {slot} for {shown}")),
    );
    let interval = (duration / 6).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let end = Instant::now() + duration;
    let mut checks = 0;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        ctx.interruptible(tokio::time::sleep(interval.min(end - now)))
            .await?;
        checks += 1;
        match unhealthy(platform, slot).await {
            Ok(None) => {}
            Ok(Some(problem)) => {
                ctx.emit(EventKind::Gate {
                    name: format!("watch {slot}"),
                    passed: false,
                    detail: problem.clone(),
                });
                return Err(Error::Aborted {
                    reason: format!("watch of {slot} failed: {problem}"),
                });
            }
            Err(error) => ctx.emit(EventKind::Warning(format!(
                "could not check {slot} during the watch: {error}"
            ))),
        }
    }
    ctx.emit(EventKind::Gate {
        name: format!("watch {slot}"),
        passed: true,
        detail: format!("{checks} checks over {shown}: every pod ready, no pod problems"),
    });
    Ok(())
}

/// Why `slot` is not healthy, if it is not.
async fn unhealthy(platform: &KubePlatform, slot: Slot) -> Result<Option<String>, Error> {
    let problems: Vec<String> = platform
        .pod_problems()
        .await?
        .into_iter()
        .filter(|problem| problem.slot == Some(slot))
        .map(|problem| problem.to_string())
        .collect();
    if !problems.is_empty() {
        return Ok(Some(problems.join("; ")));
    }
    let status = platform.status().await?;
    let state = status.slot(slot);
    if state.ready < state.desired {
        return Ok(Some(format!(
            "{} of {} pods of {slot} ready",
            state.ready, state.desired
        )));
    }
    Ok(None)
}

/// Runs `blue-green`.
pub(crate) async fn run(
    platform: Arc<KubePlatform>,
    options: BlueGreenOptions,
    progress: &Progress,
) -> Result<Outcome, Failure> {
    if let Some(record) = platform.rollout_in_progress().await? {
        return Err(in_progress(&platform, &record));
    }
    let status = platform.status().await?;
    if let Routing::Split { .. } | Routing::Pooled = status.routing {
        return Err(Failure::failed(format!(
            "traffic of {} is {} (as a canary or an interrupted rollout leaves it): route all traffic to one slot before a blue-green release",
            platform.app(),
            status.routing
        )));
    }
    let live = status.live_slot();
    let replicas = options
        .replicas
        .unwrap_or_else(|| live.map_or(1, |slot| status.slot(slot).desired).max(1));
    let watching = !options.watch.is_zero();
    // The previous release runs on during the watch, then for the standby. The driver's own
    // scale-down after the standby dies with this process: this command does it (a second,
    // identical scale-down from the driver is harmless).
    let standby = if options.standby.is_zero() {
        options.watch
    } else {
        options.standby
    };
    let mut builder = BlueGreen::builder()
        .replicas(replicas)
        .ready_deadline(options.ready_timeout)
        .standby(standby);
    for smoke in &options.smoke {
        builder = builder.smoke(smoke_gate(smoke));
    }
    if !options.yes {
        let app = platform.app().to_owned();
        builder = builder.confirm(move |ctx: GateContext| {
            let question = format!(
                "switch all traffic of {app} to {} ({})?",
                ctx.slot, ctx.version
            );
            ask(question)
        });
    }
    let strategy = Release {
        inner: builder.build()?,
        platform: Arc::clone(&platform),
        watch: options.watch,
        stop_previous: watching && options.standby.is_zero(),
    };

    platform
        .begin_rollout(&format!("blue-green to {}", options.image))
        .await
        .map_err(|error| match error {
            Error::Busy { running } => Failure::busy(format!(
                "another rollout of {} began just now: {running}",
                platform.app()
            )),
            other => other.into(),
        })?;
    let platform_dyn: Arc<dyn Platform> = platform.clone();
    let rollouts = Rollouts::new(platform_dyn);
    let handle = match rollouts.start(strategy, options.image.clone()) {
        Ok(handle) => handle,
        Err(error) => {
            let _ = platform.finish_rollout().await;
            return Err(error.into());
        }
    };

    // Progress lines, and the phase on the record, as events happen.
    let mut events = handle.events();
    let printer = tokio::spawn({
        let platform = Arc::clone(&platform);
        let progress = progress.clone();
        async move {
            while let Some(event) = events.next().await {
                progress.event(&event);
                if let EventKind::Step { .. } | EventKind::Phase { .. } = event.kind {
                    let phase: String = event.kind.to_string().chars().take(200).collect();
                    if let Err(error) = platform.set_rollout_phase(&phase).await {
                        progress.line(format!("warning: could not record the phase: {error}"));
                    }
                }
            }
        }
    });
    let controller = handle.controller();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            controller.abort("interrupted (Ctrl-C)");
        }
    });
    let result = handle.await;
    let _ = printer.await;
    interrupt.abort();

    let mut report = match result {
        Ok(report) => report,
        Err(error) => {
            let previous = live.map_or_else(
                || "the previous release".to_owned(),
                |slot| format!("slot {slot}"),
            );
            return Err(Failure::failed(format!(
                "{error}; the rollout record stays on Service {}-active: check `rollout status`, then run `rollout rollback` to restore {previous}",
                platform.app()
            )));
        }
    };
    let mut notes = Vec::new();
    if let Err(error) = platform.finish_rollout().await {
        notes.push(format!(
            "warning: the rollout record could not be cleared ({error}): clear it with `kubectl annotate service {}-active engine-ops.dev/rollout-`",
            platform.app()
        ));
    }
    fix_standby(&mut report, &options, live);
    if report.promoted()
        && !options.standby.is_zero()
        && let (Some(previous), Some(target)) = (live, report.to_slot)
    {
        notes.push(end_standby(&platform, previous, target, options.standby, progress).await);
    }
    let ok = report.promoted();
    let text = output::blue_green(&report, &notes);
    let mut json = serde_json::to_value(&report).unwrap_or_default();
    json["notes"] = serde_json::json!(notes);
    Ok(Outcome { json, text, ok })
}

/// The report as the command carried the standby out: none when the previous release was
/// scaled down before the command ended, the standby otherwise.
fn fix_standby(report: &mut RolloutReport, options: &BlueGreenOptions, live: Option<Slot>) {
    report.standby = match (report.promoted(), live) {
        (true, Some(slot)) if !options.standby.is_zero() => Some(Standby {
            slot,
            version: report.from_version.clone(),
            stops_after: options.standby,
        }),
        _ => None,
    };
}

/// Waits out the standby (Ctrl-C ends it early), then scales the previous release to zero
/// unless traffic moved or another rollout began meanwhile. Returns what happened.
async fn end_standby(
    platform: &KubePlatform,
    previous: Slot,
    target: Slot,
    delay: Duration,
    progress: &Progress,
) -> String {
    progress.line(format!(
        "{previous} stays on standby for {}: `rollout rollback --app {}` switches back to it at once (Ctrl-C ends the standby now)",
        format_duration(delay),
        platform.app()
    ));
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = tokio::signal::ctrl_c() => progress.line("standby ended early (Ctrl-C)"),
    }
    match platform.rollout_in_progress().await {
        Ok(Some(record)) => {
            return format!(
                "{previous} left running after its standby: another rollout began ({})",
                record.description
            );
        }
        Ok(None) => {}
        Err(error) => return format!("warning: {previous} left running: {error}"),
    }
    match platform.status().await {
        Ok(status) if status.routing == (Routing::All { slot: target }) => {
            match platform.stop(previous).await {
                Ok(()) => {
                    progress.line(format!("standby over: {previous} scaled to zero"));
                    format!("{previous} scaled to zero after its standby")
                }
                Err(error) => format!("warning: could not scale {previous} down: {error}"),
            }
        }
        Ok(status) => format!(
            "{previous} left running: traffic moved during the standby ({})",
            status.routing
        ),
        Err(error) => format!("warning: {previous} left running: {error}"),
    }
}
