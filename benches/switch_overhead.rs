//! `cargo bench -p benches --bench switch_overhead`: requests per second and p50/p99 latency
//! through the local platform's traffic switch against the same handler called directly, in
//! the same run.
//!
//! Both targets serve the same axum router; the switch sits in front of one in-process
//! instance of it. A closed-loop load (`CONNECTIONS` keep-alive connections, each sending
//! the next request when the last one is answered) runs `SECONDS` against each, alternating
//! `ROUNDS` times so that drift of the machine hits both alike; the medians are reported.
//! Targets (issue 5): at least 70% of direct throughput, under 100 µs added at p50.
//!
//! When `nginx` is installed (`apt-get install nginx-light`; or give its path in `NGINX`), the
//! same run also measures nginx as a reverse proxy to the same backend (a config written to a
//! temporary directory: loopback, upstream keep-alive, no access log, `worker_processes
//! auto`), as a peer for the switch's numbers.
//!
//! Environment: `ROUNDS` (default 5), `SECONDS` (default 3), `CONNECTIONS` (default 8),
//! `NGINX` (default: `nginx` on `PATH`).
#![allow(missing_docs, clippy::print_stdout)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use engine_ops_rollout::load::{LoadGenerator, LoadReport};
use engine_ops_rollout::{LocalPlatform, Platform, Routing, Slot};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello from the backend" }))
        .route("/health/ready", get(|| async { "ready" }))
}

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn run(url: &str, seconds: u64, connections: usize) -> Run {
    let load = LoadGenerator::new(url)
        .rate(0)
        .connections(connections)
        .start();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let report: LoadReport = load.stop().await;
    assert_eq!(report.failed(), 0, "{:?}", report.failures().next());
    Run {
        rps: report.throughput(),
        p50: report.latency_quantile(0.5).unwrap_or_default(),
        p99: report.latency_quantile(0.99).unwrap_or_default(),
    }
}

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

fn summarize(runs: &[Run]) -> (f64, Duration, Duration) {
    (
        median(runs.iter().map(|r| r.rps).collect()),
        median(runs.iter().map(|r| r.p50).collect()),
        median(runs.iter().map(|r| r.p99).collect()),
    )
}

/// nginx proxying to `backend` on a free loopback port; `None` when nginx is not installed.
fn start_nginx(
    backend: std::net::SocketAddr,
    dir: &std::path::Path,
) -> Result<Option<(std::process::Child, String)>, Box<dyn std::error::Error>> {
    let program = std::env::var("NGINX").unwrap_or_else(|_| "nginx".into());
    if std::process::Command::new(&program)
        .arg("-v")
        .stderr(std::process::Stdio::null())
        .status()
        .is_err()
    {
        println!("nginx not found ({program}): install nginx-light to compare with it");
        return Ok(None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir_text = dir.display();
    let config = format!(
        "daemon off;\nuser root;\nworker_processes auto;\npid {dir_text}/nginx.pid;\n\
         error_log {dir_text}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir_text}/body;\n  \
         proxy_temp_path {dir_text}/proxy;\n  fastcgi_temp_path {dir_text}/fastcgi;\n  \
         uwsgi_temp_path {dir_text}/uwsgi;\n  scgi_temp_path {dir_text}/scgi;\n  \
         upstream backend {{ server {backend}; keepalive 64; }}\n  \
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      \
         proxy_pass http://backend;\n      proxy_http_version 1.1;\n      \
         proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config)?;
    let child = std::process::Command::new(&program)
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .spawn()?;
    // Wait until it listens.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Some((child, format!("http://127.0.0.1:{port}/"))));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("nginx did not listen on port {port}; see {dir_text}/error.log").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and should not
    // spend a minute here.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let rounds = env("ROUNDS", 5);
    let seconds = env("SECONDS", 3);
    let connections = env("CONNECTIONS", 8) as usize;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let backend = listener.local_addr()?;
    let direct = format!("http://{backend}/");
    tokio::spawn(async move { axum::serve(listener, app()).await });
    let nginx_dir = tempfile::tempdir()?;
    let mut nginx = start_nginx(backend, nginx_dir.path())?;

    let platform = LocalPlatform::builder()
        .app(|_version: &str| Ok(app()))
        .build()
        .await?;
    platform.deploy(Slot::Blue, "v1", 1).await?;
    platform
        .wait_ready(Slot::Blue, Duration::from_secs(5))
        .await?;
    platform.route(Routing::All { slot: Slot::Blue }).await?;
    let switched = format!("http://{}/", platform.front_addr());

    let mut targets: Vec<(&str, String, Vec<Run>)> = vec![
        ("direct", direct, Vec::new()),
        ("through switch", switched, Vec::new()),
    ];
    if let Some((_, url)) = &nginx {
        targets.push(("through nginx", url.clone(), Vec::new()));
    }
    // Warm every path (connection pools, allocator).
    for (_, url, _) in &targets {
        run(url, 1, connections).await;
    }
    for round in 0..rounds as usize {
        // Rotate which goes first, so that drift hits each alike.
        for i in 0..targets.len() {
            let index = (round + i) % targets.len();
            let result = run(&targets[index].1, seconds, connections).await;
            targets[index].2.push(result);
        }
    }
    let (d_rps, d_p50, _) = summarize(&targets[0].2);
    println!(
        "{rounds} rounds × {seconds} s, {connections} keep-alive connections, closed loop, medians:\n\
         | target          | req/s   | ratio | p50       | p99       | p50 added |\n\
         |-----------------|---------|-------|-----------|-----------|-----------|"
    );
    for (name, _, runs) in &targets {
        let (rps, p50, p99) = summarize(runs);
        println!(
            "| {name:<15} | {rps:>7.0} | {:>5.2} | {p50:>9.1?} | {p99:>9.1?} | {:>9.1?} |",
            rps / d_rps,
            p50.saturating_sub(d_p50)
        );
    }
    println!("targets for the switch: ratio ≥ 0.70, p50 added < 100 µs");
    if let Some((child, _)) = nginx.as_mut() {
        // SIGTERM: the master stops its workers (a SIGKILL would orphan them).
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    platform.shutdown().await;
    Ok(())
}
