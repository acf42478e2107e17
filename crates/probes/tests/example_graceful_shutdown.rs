//! The `graceful_shutdown` example as a real process, stopped with real signals (`kill`).
//!
//! The example is built with `cargo build -p examples --example graceful_shutdown` into the
//! same target directory (a no-op when `cargo test --workspace` has built it already).
#![allow(clippy::print_stderr)]

mod common;

use common::{Conn, get, ms};
use http::StatusCode;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Builds the example once per test run and returns its path.
fn example() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        // <target>/<profile>/deps/<this test> -> <target>/<profile>/examples/graceful_shutdown
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo
            .current_dir(&workspace)
            .args([
                "build",
                "--quiet",
                "-p",
                "examples",
                "--example",
                "graceful_shutdown",
            ])
            .arg("--target-dir")
            .arg(target_dir);
        match profile {
            "debug" => {}
            "release" => {
                cargo.arg("--release");
            }
            other => {
                cargo.args(["--profile", other]);
            }
        }
        let out = cargo.output().expect("run cargo");
        assert!(
            out.status.success(),
            "building the graceful_shutdown example failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile_dir.join("examples").join("graceful_shutdown")
    })
    .clone()
}

struct Example {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    output: Vec<String>,
    addr: SocketAddr,
}

impl Example {
    /// Starts the example on a free port and waits until it is ready.
    async fn start(args: &[&str]) -> Self {
        let path = tokio::task::spawn_blocking(example).await.unwrap();
        let mut child = Command::new(path)
            .args(args)
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the example");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut example = Self {
            child,
            lines,
            output: Vec::new(),
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let listening = example.line_starting("listening on http://").await;
        example.addr = listening["listening on http://".len()..].parse().unwrap();
        example.line_starting("ready:").await;
        example
    }

    /// Reads stdout (bounded) until a line starts with `prefix`.
    async fn line_starting(&mut self, prefix: &str) -> String {
        let wait = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                eprintln!("example: {line}");
                self.output.push(line.clone());
                if line.starts_with(prefix) {
                    return line;
                }
            }
            panic!(
                "the example exited without printing `{prefix}…`: {:?}",
                self.output
            );
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("no `{prefix}…` line within 60 s: {:?}", self.output))
    }

    async fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = Command::new("kill")
            .args([name, &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill {name} {pid}");
    }

    /// Waits (bounded) for the process to exit successfully; returns the rest of its output.
    async fn exits(mut self, within: Duration) -> Vec<String> {
        let rest = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                eprintln!("example: {line}");
                self.output.push(line);
            }
            self.child.wait().await.unwrap()
        };
        let status = tokio::time::timeout(within, rest)
            .await
            .unwrap_or_else(|_| panic!("the example did not exit within {within:?}"));
        assert!(status.success(), "exit status {status}");
        self.output
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_finishes_in_flight_requests() {
    let example = Example::start(&["--drain-delay", "1", "--deadline", "8"]).await;
    let addr = example.addr;
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);
    let verbose = get(addr, "/health/ready?verbose").await;
    assert_eq!(verbose.json()["checks"]["sqlite"][0]["status"], "pass");
    let slow =
        tokio::spawn(async move { Conn::open(addr).await.unwrap().get("/slow?ms=2000").await });
    tokio::time::sleep(ms(100)).await;

    example.signal("-TERM").await;
    common::eventually(ms(1000), "readiness to fail", || async move {
        get(addr, "/health/ready").await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    // Still serving during the drain delay, telling clients to reconnect elsewhere.
    let r = get(addr, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.closes(), "{:?}", r.headers);
    assert_eq!(get(addr, "/health/live").await.status, StatusCode::OK);

    let r = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(&r.body[..], b"slept 2000 ms\n");
    let output = example.exits(Duration::from_secs(10)).await.join("\n");
    assert!(output.contains("draining: readiness now fails"), "{output}");
    assert!(output.contains("closing: listener closed"), "{output}");
    assert!(
        output.contains("0 request(s) cut by the deadline"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_skips_the_drain() {
    let mut example = Example::start(&["--drain-delay", "30", "--deadline", "40"]).await;
    example.signal("-TERM").await;
    example.line_starting("draining:").await;
    example.signal("-TERM").await;
    let output = example.exits(Duration::from_secs(5)).await.join("\n");
    assert!(output.contains("(skipped)"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_then_the_deadline_cuts_a_hanging_request() {
    let example = Example::start(&["--drain-delay", "0", "--deadline", "1"]).await;
    let addr = example.addr;
    let hanging =
        tokio::spawn(async move { Conn::open(addr).await.unwrap().get("/slow?ms=60000").await });
    tokio::time::sleep(ms(100)).await;
    example.signal("-INT").await;
    let output = example.exits(Duration::from_secs(5)).await.join("\n");
    assert!(
        output.contains("1 request(s) cut by the deadline"),
        "{output}"
    );
    assert!(hanging.await.unwrap().is_err());
}
