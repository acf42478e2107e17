//! The `rollout` binary end to end (`CARGO_BIN_EXE_rollout`, built by the crate's `cli`
//! feature), against the stand-in API server (`support/kube_apiserver.rs`, not a cluster)
//! named by a kubeconfig file through `KUBECONFIG`: `status` with every pod problem kind,
//! blue-green releases with smoke checks served over loopback, the refusal of a second
//! release, the recovery of a crashed one with `rollback`, rolling updates and their undo,
//! `manifests` against the copies in `infra/k8s/`, bad input, and `--format json`.

#![cfg(feature = "cli")]
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "support/kube_apiserver.rs"]
mod kube_apiserver;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use engine_ops_rollout::platform::kube::manifests::{ManifestSpec, blue_green, rolling};
use engine_ops_rollout::platform::kube::{
    PREVIOUS_IMAGE_ANNOTATION, PREVIOUS_SLOT_ANNOTATION, ROLLOUT_ANNOTATION,
};
use engine_ops_rollout::{KubePlatform, Platform, Routing, Slot};
use kube_apiserver::{ApiServer, Kind, Rollout};
use serde_json::{Value, json};
use tempfile::TempDir;

const NS: &str = "shop-ns";
const V1: &str = "ghcr.io/engine-ops/shop:1.0.0";
const V2: &str = "ghcr.io/engine-ops/shop:2.0.0";
const V3: &str = "ghcr.io/engine-ops/shop:3.0.0";

/// A stand-in API server, a kubeconfig naming it, and a way to run the binary against it.
struct Cluster {
    server: ApiServer,
    dir: TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    /// The blue-green objects of `shop`: blue live with 3 replicas of V1.
    async fn blue_green() -> Self {
        let cluster = Self::empty().await;
        cluster
            .server
            .create_all(&blue_green(&ManifestSpec::new("shop", V1).replicas(3)).unwrap());
        cluster
    }

    /// The rolling objects of `shop`: Deployment `shop` with 3 replicas of V1.
    async fn rolling() -> Self {
        let cluster = Self::empty().await;
        cluster
            .server
            .create_all(&rolling(&ManifestSpec::new("shop", V1).replicas(3)).unwrap());
        cluster
    }

    async fn empty() -> Self {
        let server = ApiServer::start(NS).await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(dir.path());
        Self {
            server,
            dir,
            kubeconfig,
        }
    }

    /// Runs `rollout args…` with stdin not a terminal, the namespace from the kubeconfig.
    async fn run(&self, args: &[&str]) -> Output {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollout"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .env_remove("ROLLOUT_APP")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        eprintln!(
            "$ rollout {}\n--- exit {:?}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn platform(&self) -> KubePlatform {
        KubePlatform::new(self.server.client(), NS, "shop")
    }

    fn selector(&self, service: &str) -> Value {
        self.server.object(Kind::Service, service).unwrap()["spec"]["selector"].clone()
    }

    fn replicas(&self, deployment: &str) -> Value {
        self.server.object(Kind::Deployment, deployment).unwrap()["spec"]["replicas"].clone()
    }

    fn image(&self, deployment: &str) -> Value {
        self.server.object(Kind::Deployment, deployment).unwrap()["spec"]["template"]["spec"]
            ["containers"][0]["image"]
            .clone()
    }

    fn annotations(&self, service: &str) -> Value {
        self.server.object(Kind::Service, service).unwrap()["metadata"]["annotations"].clone()
    }

    fn live(&self) -> Value {
        self.selector("shop-active")["version"].clone()
    }

    /// The bodies of the PATCH requests received since the last call, with their paths.
    fn take_patches(&self) -> Vec<(String, Value)> {
        self.server
            .take_requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| (r.path, r.body))
            .collect()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Stdout as exactly one JSON document.
fn json_doc(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(output)))
}

/// A loopback HTTP server for smoke checks: `/smoke` answers 200, `/broken` 500; counts hits.
async fn smoke_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new()
        .route(
            "/smoke",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        )
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

fn container_status(reason: &str, restarts: i32, message: &str) -> Value {
    json!({ "containerStatuses": [{
        "name": "shop", "image": V2, "imageID": "", "ready": false, "restartCount": restarts,
        "state": { "waiting": { "reason": reason, "message": message } }
    }] })
}

/// Green pods with each problem kubectl warns of.
fn create_problem_pods(server: &ApiServer) {
    let green = [("app", "shop"), ("version", "green")];
    server.create_pod(
        "shop-green-a",
        &green,
        "shop",
        V2,
        json!({ "phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu."
        }] }),
    );
    server.create_pod(
        "shop-green-b",
        &green,
        "shop",
        V2,
        container_status("ImagePullBackOff", 0, "Back-off pulling image"),
    );
    server.create_pod(
        "shop-green-c",
        &green,
        "shop",
        V2,
        container_status("ErrImagePull", 0, "manifest unknown"),
    );
    server.create_pod(
        "shop-green-d",
        &green,
        "shop",
        V2,
        container_status(
            "CrashLoopBackOff",
            7,
            "back-off 5m0s restarting failed container",
        ),
    );
}

#[tokio::test]
async fn status_shows_the_live_slot_images_replicas_and_every_pod_problem() {
    let cluster = Cluster::blue_green().await;
    cluster.server.create_pod(
        "shop-blue-a",
        &[("app", "shop"), ("version", "blue")],
        "shop",
        V1,
        json!({ "phase": "Running" }),
    );
    let healthy = cluster.run(&["status", "--app", "shop"]).await;
    assert_eq!(healthy.status.code(), Some(0));
    let text = stdout(&healthy);
    assert!(
        text.starts_with("shop in namespace shop-ns: blue-green layout, all traffic to blue\n"),
        "{text}"
    );
    assert!(text.contains("no rollout in progress"), "{text}");
    assert!(text.contains("no pod problems"), "{text}");
    let blue_row = text.lines().find(|l| l.starts_with("shop-blue")).unwrap();
    for column in ["blue", "live", V1, "3/3", "successfully rolled out"] {
        assert!(blue_row.contains(column), "{column}: {blue_row}");
    }
    let green_row = text.lines().find(|l| l.starts_with("shop-green")).unwrap();
    assert!(
        green_row.contains("idle") && green_row.contains("0/0"),
        "{green_row}"
    );

    create_problem_pods(&cluster.server);
    let problems = cluster.run(&["status", "--app", "shop"]).await;
    assert_eq!(problems.status.code(), Some(1), "problems found: exit 1");
    let text = stdout(&problems);
    assert!(text.contains("4 pod problem(s):"), "{text}");
    for line in [
        "warning: pod shop-green-a (green): Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.",
        "warning: pod shop-green-b (green): container shop: ImagePullBackOff, 0 restarts: Back-off pulling image",
        "warning: pod shop-green-c (green): container shop: ErrImagePull, 0 restarts: manifest unknown",
        "warning: pod shop-green-d (green): container shop: CrashLoopBackOff, 7 restarts: back-off 5m0s restarting failed container",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }

    let json = cluster
        .run(&["status", "--app", "shop", "--format", "json"])
        .await;
    assert_eq!(json.status.code(), Some(1));
    let doc = json_doc(&json);
    assert_eq!(doc["command"], "status");
    assert_eq!(doc["ok"], false);
    let report = &doc["report"];
    assert_eq!(report["layout"], "blue-green");
    assert_eq!(report["live"], "blue");
    assert_eq!(report["routing"], json!({ "kind": "all", "slot": "blue" }));
    assert_eq!(report["deployments"][0]["image"], V1);
    assert_eq!(report["deployments"][0]["ready"], 3);
    let kinds: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["kind"])
        .collect();
    assert_eq!(
        kinds,
        [
            "Unschedulable",
            "ImagePullBackOff",
            "ErrImagePull",
            "CrashLoopBackOff"
        ]
    );
    assert_eq!(report["problems"][3]["restarts"], 7);
    assert!(json.stderr.is_empty(), "json mode prints no progress");
}

#[tokio::test]
async fn status_of_the_rolling_layout_and_of_an_unknown_app() {
    let cluster = Cluster::rolling().await;
    let output = cluster
        .run(&["--format", "json", "status", "--app", "shop"])
        .await;
    assert_eq!(output.status.code(), Some(0));
    let report = &json_doc(&output)["report"];
    assert_eq!(report["layout"], "rolling");
    assert_eq!(report["deployments"][0]["name"], "shop");
    assert_eq!(report["deployments"][0]["role"], "serving");
    assert_eq!(report["record"]["on"], "Deployment shop");

    let missing = cluster.run(&["status", "--app", "cart"]).await;
    assert_eq!(missing.status.code(), Some(1));
    let message = stderr(&missing);
    assert!(
        message.starts_with("error: no objects of app cart in namespace shop-ns"),
        "{message}"
    );
    assert!(
        message.contains("rollout manifests blue-green --app cart"),
        "{message}"
    );
}

#[tokio::test]
async fn a_blue_green_release_smoke_checks_switches_watches_and_scales_the_old_slot_down() {
    let cluster = Cluster::blue_green().await;
    let (smoke, hits) = smoke_server().await;
    let smoke_url = format!("{smoke}/smoke");
    let output = cluster
        .run(&[
            "blue-green",
            V2,
            "--app",
            "shop",
            "--yes",
            "--smoke",
            &smoke_url,
            "--watch",
            "300ms",
            "--ready-timeout",
            "30s",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!(
            "blue-green rollout from {V1} (blue) to {V2} (green): promoted"
        )),
        "{text}"
    );
    let progress = stderr(&output);
    for line in [
        format!("step 1/5: deploy {V2} to green (3 instances)"),
        "step 2/5: wait until green is ready".to_owned(),
        format!("step 3/5: gate smoke {smoke_url} on green"),
        format!("gate smoke {smoke_url} passed"),
        "step 4/5: switch all traffic to green".to_owned(),
        "traffic: 100% green".to_owned(),
        "step 5/5: keep blue on standby for 300ms".to_owned(),
        "promoted: watching green for 300ms".to_owned(),
        "gate watch green passed".to_owned(),
        "promoted: scaling blue (the previous release) to zero".to_owned(),
        "completed".to_owned(),
    ] {
        assert!(progress.contains(&line), "{line}\n{progress}");
    }
    assert!(hits.load(Ordering::SeqCst) >= 1, "the smoke URL was called");

    assert_eq!(cluster.live(), "green");
    assert_eq!(cluster.selector("shop-preview")["version"], "blue");
    assert_eq!(cluster.image("shop-green"), V2);
    assert_eq!(cluster.replicas("shop-green"), 3);
    assert_eq!(cluster.replicas("shop-blue"), 0, "no orphaned slot");
    let annotations = cluster.annotations("shop-active");
    assert!(
        annotations.get(ROLLOUT_ANNOTATION).is_none(),
        "record cleared"
    );
    assert_eq!(annotations[PREVIOUS_SLOT_ANNOTATION], "blue");
    assert_eq!(annotations[PREVIOUS_IMAGE_ANNOTATION], V1);

    // The next release, for scripts: one JSON document, no progress.
    let json = cluster
        .run(&[
            "blue-green",
            V3,
            "--app",
            "shop",
            "--yes",
            "--watch",
            "0s",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(json.status.code(), Some(0));
    assert!(json.stderr.is_empty(), "{}", stderr(&json));
    let doc = json_doc(&json);
    assert_eq!(doc["command"], "blue-green");
    assert_eq!(doc["ok"], true);
    let report = &doc["report"];
    assert_eq!(report["outcome"]["result"], "promoted");
    assert_eq!(report["from_slot"], "green");
    assert_eq!(report["to_slot"], "blue");
    assert_eq!(report["to_version"], V3);
    assert_eq!(report["standby"], Value::Null);
    assert!(report["switch"]["took"].as_f64().is_some());
    assert!(report["events"].as_array().unwrap().len() > 5);
    assert_eq!(cluster.live(), "blue");
    assert_eq!(cluster.replicas("shop-green"), 0);
}

#[tokio::test]
async fn a_failing_smoke_check_rolls_back_and_exits_1() {
    let cluster = Cluster::blue_green().await;
    let (smoke, _) = smoke_server().await;
    let broken = format!("{smoke}/broken");
    let output = cluster
        .run(&[
            "blue-green",
            V2,
            "--app",
            "shop",
            "--yes",
            "--smoke",
            &broken,
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "rolled back: gate smoke {broken} failed: GET /broken: status 500"
        )),
        "{text}"
    );
    assert!(stderr(&output).contains("rolled back"));
    assert_eq!(cluster.live(), "blue", "traffic never left blue");
    assert_eq!(cluster.replicas("shop-blue"), 3);
    assert_eq!(
        cluster.replicas("shop-green"),
        0,
        "the failed release is scaled down"
    );
    assert!(
        cluster
            .annotations("shop-active")
            .get(ROLLOUT_ANNOTATION)
            .is_none()
    );

    let json = cluster
        .run(&[
            "--format",
            "json",
            "blue-green",
            V2,
            "--app",
            "shop",
            "--yes",
            "--smoke",
            &broken,
        ])
        .await;
    assert_eq!(json.status.code(), Some(1));
    let doc = json_doc(&json);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["report"]["outcome"]["result"], "rolled_back");
}

#[tokio::test]
async fn a_pod_problem_during_the_watch_rolls_back() {
    let cluster = Cluster::blue_green().await;
    // The new release's pods crash once they serve.
    cluster.server.create_pod(
        "shop-green-x",
        &[("app", "shop"), ("version", "green")],
        "shop",
        V2,
        container_status("CrashLoopBackOff", 3, "back-off 40s"),
    );
    let output = cluster
        .run(&["blue-green", V2, "--app", "shop", "--yes", "--watch", "1s"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("rolled back: watch of green failed: pod shop-green-x (green): container shop: CrashLoopBackOff, 3 restarts"),
        "{text}"
    );
    assert!(
        stderr(&output).contains("traffic: 100% blue"),
        "switched back"
    );
    assert_eq!(cluster.live(), "blue");
    assert_eq!(cluster.replicas("shop-blue"), 3);
    assert_eq!(cluster.replicas("shop-green"), 0);
}

#[tokio::test]
async fn without_yes_a_non_terminal_stdin_is_refused_before_anything_runs() {
    let cluster = Cluster::blue_green().await;
    let output = cluster.run(&["blue-green", V2, "--app", "shop"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: stdin is not a terminal, so the switch cannot be confirmed: pass --yes to go ahead without asking\n"
    );
    let rollback = cluster
        .run(&["rollback", "--app", "shop", "--format", "json"])
        .await;
    assert_eq!(rollback.status.code(), Some(2));
    let doc = json_doc(&rollback);
    assert_eq!(doc["exit_code"], 2);
    assert!(doc["error"].as_str().unwrap().contains("pass --yes"));
    assert!(
        cluster.server.requests().is_empty(),
        "the cluster was not contacted"
    );
}

#[tokio::test]
async fn a_crashed_release_blocks_the_next_one_until_rollback_restores_the_previous_slot() {
    let cluster = Cluster::blue_green().await;
    // A driver began a release, deployed green, switched, and crashed before cleaning up.
    let crashed = cluster.platform();
    crashed
        .begin_rollout(&format!("blue-green to {V2}"))
        .await
        .unwrap();
    crashed.deploy(Slot::Green, V2, 3).await.unwrap();
    crashed
        .wait_ready(Slot::Green, Duration::from_secs(10))
        .await
        .unwrap();
    crashed
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    drop(crashed);
    cluster.take_patches();

    let refused = cluster
        .run(&["blue-green", V3, "--app", "shop", "--yes"])
        .await;
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.starts_with(&format!(
            "error: a rollout of shop is recorded as in progress on Service shop-active: blue-green to {V2} (phase started, started "
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "if its driver crashed, run `rollout rollback --app shop` to restore slot blue ({V1})"
        )),
        "{message}"
    );
    let refused_json = cluster
        .run(&[
            "blue-green",
            V3,
            "--app",
            "shop",
            "--yes",
            "--format",
            "json",
        ])
        .await;
    let doc = json_doc(&refused_json);
    assert_eq!(
        (doc["ok"].clone(), doc["exit_code"].clone()),
        (json!(false), json!(1))
    );
    assert!(cluster.take_patches().is_empty(), "nothing was changed");
    assert_eq!(cluster.live(), "green");

    let rollback = cluster.run(&["rollback", "--app", "shop", "--yes"]).await;
    assert_eq!(rollback.status.code(), Some(0));
    let text = stdout(&rollback);
    assert!(
        text.starts_with(&format!(
            "finished the interrupted rollout of shop (blue-green to {V2})\nshop rolled back: blue serves {V1} again"
        )),
        "{text}"
    );
    assert_eq!(cluster.live(), "blue");
    assert_eq!(cluster.replicas("shop-blue"), 3);
    assert_eq!(cluster.replicas("shop-green"), 0, "no orphaned slot");
    assert!(
        cluster
            .annotations("shop-active")
            .get(ROLLOUT_ANNOTATION)
            .is_none()
    );

    // The way is clear again.
    let next = cluster
        .run(&["blue-green", V3, "--app", "shop", "--yes", "--watch", "0s"])
        .await;
    assert_eq!(next.status.code(), Some(0));
    assert_eq!(cluster.live(), "green");
}

#[tokio::test]
async fn a_crash_before_the_switch_is_finished_without_switching_again() {
    let cluster = Cluster::blue_green().await;
    let crashed = cluster.platform();
    crashed
        .begin_rollout(&format!("blue-green to {V2}"))
        .await
        .unwrap();
    crashed.deploy(Slot::Green, V2, 3).await.unwrap();
    drop(crashed);
    cluster.take_patches();

    let output = cluster
        .run(&["rollback", "--app", "shop", "--yes", "--format", "json"])
        .await;
    assert_eq!(output.status.code(), Some(0));
    let report = &json_doc(&output)["report"];
    assert_eq!(
        report["plan"],
        json!({ "action": "clean_up", "to": "blue", "stop": "green" })
    );
    assert_eq!(report["recovered"], format!("blue-green to {V2}"));
    let patches = cluster.take_patches();
    assert!(
        patches
            .iter()
            .all(|(path, body)| !path.ends_with("/services/shop-active")
                || body.get("spec").is_none()),
        "the selector was not patched: {patches:#?}"
    );
    assert_eq!(cluster.live(), "blue");
    assert_eq!(cluster.replicas("shop-green"), 0);
    assert!(
        cluster
            .annotations("shop-active")
            .get(ROLLOUT_ANNOTATION)
            .is_none()
    );
}

#[tokio::test]
async fn rollback_brings_a_scaled_down_previous_release_back_then_switches() {
    let cluster = Cluster::blue_green().await;
    let release = cluster
        .run(&["blue-green", V2, "--app", "shop", "--yes", "--watch", "0s"])
        .await;
    assert_eq!(release.status.code(), Some(0));
    assert_eq!(cluster.replicas("shop-blue"), 0);

    let output = cluster.run(&["rollback", "--app", "shop", "--yes"]).await;
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("shop rolled back: blue serves {V1} again")),
        "{text}"
    );
    for action in [
        format!("scaled blue ({V1}) to 3 replicas"),
        "blue is ready".to_owned(),
        "switched all traffic to blue".to_owned(),
        "scaled green to zero".to_owned(),
    ] {
        assert!(text.contains(&action), "{action}\n{text}");
    }
    assert_eq!(cluster.live(), "blue");
    assert_eq!(cluster.replicas("shop-blue"), 3);
    assert_eq!(cluster.replicas("shop-green"), 0);

    // Like `kubectl rollout undo`, a second rollback undoes the first.
    let again = cluster
        .run(&["rollback", "--app", "shop", "--yes", "--format", "json"])
        .await;
    assert_eq!(again.status.code(), Some(0));
    let plan = &json_doc(&again)["report"]["plan"];
    assert_eq!(plan["action"], "restore");
    assert_eq!(plan["image"], V2);
    assert_eq!(cluster.live(), "green");
}

#[tokio::test]
async fn a_standby_keeps_the_previous_release_until_it_ends_or_traffic_moves() {
    let cluster = Cluster::blue_green().await;
    let output = cluster
        .run(&[
            "blue-green",
            V2,
            "--app",
            "shop",
            "--yes",
            "--watch",
            "0s",
            "--standby",
            "300ms",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("blue stays on standby for 300ms"));
    assert!(stdout(&output).contains("blue scaled to zero after its standby"));
    assert_eq!(cluster.replicas("shop-blue"), 0);

    // A rollback during the standby switches back at once; the release then leaves the
    // slot that serves again alone.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollout"));
    command
        .args([
            "blue-green",
            V3,
            "--app",
            "shop",
            "--yes",
            "--watch",
            "0s",
            "--standby",
            "8s",
            "--format",
            "json",
        ])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("HOME", cluster.dir.path())
        .stdin(Stdio::null());
    let release = tokio::spawn(async move { command.output().await.unwrap() });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while cluster.live() != "blue"
        || cluster
            .annotations("shop-active")
            .get(ROLLOUT_ANNOTATION)
            .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the release never switched"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rollback = cluster.run(&["rollback", "--app", "shop", "--yes"]).await;
    assert_eq!(rollback.status.code(), Some(0));
    assert!(stdout(&rollback).contains("switched all traffic to green"));
    let release = release.await.unwrap();
    assert_eq!(release.status.code(), Some(0));
    let doc = json_doc(&release);
    assert_eq!(
        doc["report"]["notes"][0],
        "green left running: traffic moved during the standby (100% green)"
    );
    assert_eq!(cluster.live(), "green");
    assert_eq!(
        cluster.replicas("shop-green"),
        3,
        "the live slot was not stopped"
    );
    assert_eq!(cluster.replicas("shop-blue"), 0);
}

#[tokio::test]
async fn rolling_rolls_out_and_undoes_a_progress_deadline() {
    let cluster = Cluster::rolling().await;
    let output = cluster
        .run(&[
            "rolling",
            V2,
            "--app",
            "shop",
            "--max-surge",
            "1",
            "--max-unavailable",
            "0",
            "--timeout",
            "30s",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout(&output).starts_with(&format!(
            "rolling update of deployment \"shop\" from {V1} to {V2}: rolled out"
        )),
        "{}",
        stdout(&output)
    );
    let progress = stderr(&output);
    assert!(progress.contains(&format!("deployment \"shop\" image updated: {V1} -> {V2}")));
    assert!(progress.contains("deployment \"shop\" successfully rolled out"));
    assert_eq!(cluster.image("shop"), V2);
    cluster.take_patches();

    cluster
        .server
        .set_rollout_for_image(V3, Rollout::ProgressDeadlineExceeded);
    let failed = cluster
        .run(&["rolling", V3, "--app", "shop", "--format", "json"])
        .await;
    assert_eq!(failed.status.code(), Some(1));
    let doc = json_doc(&failed);
    assert_eq!(doc["ok"], false);
    let report = &doc["report"];
    assert_eq!(report["outcome"]["result"], "rolled_back");
    assert!(
        report["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("ProgressDeadlineExceeded")
    );
    assert_eq!(report["undo"]["to_image"], V2);
    // The image was patched to V3, then back to V2.
    let images: Vec<Value> = cluster
        .take_patches()
        .iter()
        .filter_map(|(_, body)| {
            let image = &body["spec"]["template"]["spec"]["containers"][0]["image"];
            (!image.is_null()).then(|| image.clone())
        })
        .collect();
    assert_eq!(images, [json!(V3), json!(V2)]);
    assert_eq!(cluster.image("shop"), V2);
}

/// What `rollout manifests <layout>` must print: the generated copies under `infra/k8s/`,
/// without their header comments, Deployments then Services.
fn infra_copy(files: [&str; 2]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/k8s");
    let strip = |file: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        text.lines()
            .skip_while(|line| line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    };
    format!("{}---\n{}", strip(files[0]), strip(files[1]))
}

#[tokio::test]
async fn manifests_print_what_infra_k8s_holds() {
    let cluster = Cluster::empty().await;
    for (layout, files) in [
        (
            "blue-green",
            ["blue-green/deployments.yaml", "blue-green/services.yaml"],
        ),
        (
            "rolling",
            ["rolling/deployment.yaml", "rolling/service.yaml"],
        ),
        ("canary", ["canary/deployments.yaml", "canary/service.yaml"]),
    ] {
        let args = [
            "manifests",
            layout,
            "--app",
            "shop",
            "--image",
            V1,
            "--replicas",
            "3",
            "--port",
            "8080",
        ];
        let output = cluster.run(&args).await;
        assert_eq!(output.status.code(), Some(0), "{layout}");
        assert_eq!(stdout(&output), infra_copy(files), "{layout}");

        let json = cluster
            .run(&[&args[..], &["--format", "json"]].concat())
            .await;
        let doc = json_doc(&json);
        assert_eq!(doc["command"], "manifests");
        assert_eq!(doc["report"]["kind"], "List", "{layout}");
    }
    let namespaced = cluster
        .run(&["manifests", "rolling", "--app", "cart", "-n", "prod"])
        .await;
    let text = stdout(&namespaced);
    assert!(
        text.contains("namespace: prod") && text.contains("image: cart:latest"),
        "{text}"
    );
    assert!(
        cluster.server.requests().is_empty(),
        "manifests need no cluster"
    );
}

#[tokio::test]
async fn bad_input_exits_2_with_a_clear_message() {
    let cluster = Cluster::blue_green().await;
    let cases: [(&[&str], &str); 7] = [
        (
            &["manifests", "purple", "--app", "shop"],
            "invalid value 'purple' for '<LAYOUT>'",
        ),
        (
            &[
                "blue-green",
                V2,
                "--app",
                "shop",
                "--yes",
                "--ready-timeout",
                "5x",
            ],
            "`5x` is not a duration: write a number with a unit, such as 90s, 5m, 1h, 500ms or 1m30s",
        ),
        (
            &["status"],
            "error: no app given: pass --app NAME or set ROLLOUT_APP",
        ),
        (
            &["status", "--app", "Shop_1"],
            "`Shop_1` is not a valid app name",
        ),
        (
            &[
                "blue-green",
                V2,
                "--app",
                "shop",
                "--yes",
                "--smoke",
                "health",
            ],
            "is neither an absolute http:// URL nor a path starting with `/`",
        ),
        (
            &["rolling", V2, "--app", "shop", "--max-surge", "110%"],
            "is above 100%",
        ),
        (
            &[
                "blue-green",
                V2,
                "--app",
                "shop",
                "--yes",
                "--replicas",
                "0",
            ],
            "invalid blue-green replicas: 0 instances would serve nothing after the switch",
        ),
    ];
    for (args, message) in cases {
        let output = cluster.run(args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let error = stderr(&output);
        assert!(error.contains(message), "{args:?}: {error}");
        assert!(error.starts_with("error: "), "{error}");

        let json = cluster.run(&[args, &["--format", "json"]].concat()).await;
        assert_eq!(json.status.code(), Some(2), "{args:?}");
        let doc = json_doc(&json);
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["exit_code"], 2);
        assert!(
            doc["error"]
                .as_str()
                .unwrap()
                .contains(message.trim_start_matches("error: "))
        );
    }
    assert_eq!(cluster.live(), "blue", "nothing changed");
    assert_eq!(cluster.replicas("shop-green"), 0);
}

#[tokio::test]
async fn the_namespace_comes_from_the_kubeconfig_context_or_the_flag() {
    let cluster = Cluster::blue_green().await;
    let output = cluster
        .run(&["status", "--app", "shop", "--namespace", "elsewhere"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no objects of app shop in namespace elsewhere"),
        "{}",
        stderr(&output)
    );
    let requests = cluster.server.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.path.starts_with("/api/v1/namespaces/elsewhere/")
                || r.path.starts_with("/apis/apps/v1/namespaces/elsewhere/")),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer stand-in-token")),
        "the kubeconfig's credentials are used"
    );
}
