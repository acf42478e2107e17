//! The few options the rollout examples share, parsed by hand: `--yes`,
//! `--requests-per-second N`, `--port P`, `--help`, and for `blue_green` the cluster mode:
//! `--kube --image I [--app A] [--namespace N] [--replicas R]`.

// Shared by several examples through `#[path]`; each uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, IsTerminal, Write};

/// The parsed options.
pub(crate) struct Options {
    /// Skip the confirmation prompt.
    pub(crate) yes: bool,
    /// The load generator's rate.
    pub(crate) requests_per_second: u32,
    /// The front port of the traffic switch (0: any free port).
    pub(crate) port: u16,
    /// `--kube`: release on the current kubeconfig context instead of this machine.
    pub(crate) kube: Option<KubeOptions>,
}

/// What `--kube` needs.
pub(crate) struct KubeOptions {
    /// The image to release.
    pub(crate) image: String,
    /// The app (Deployments `<app>-blue`/`-green`, Services `<app>-active`/`-preview`).
    pub(crate) app: String,
    /// The namespace; `None`: the context's.
    pub(crate) namespace: Option<String>,
    /// Instances of the new release.
    pub(crate) replicas: u32,
}

/// Parses `std::env::args`; prints usage and exits 2 on a bad option, 0 on `--help`.
pub(crate) fn parse(example: &str, about: &str) -> Options {
    let kube_usage = if example == "blue_green" {
        "\n  --kube --image I          release image I on the current kubeconfig context instead\n                            \
         (Deployments <app>-blue/-green, Services <app>-active/-preview:\n                            \
         `cargo rollout manifests blue-green` prints them)\n  \
         --app A                   with --kube: the app (default: demo)\n  \
         --namespace N             with --kube: the namespace (default: the context's)\n  \
         --replicas R              with --kube: instances of the new release (default 2)"
    } else {
        ""
    };
    let usage = format!(
        "usage: cargo run --example {example} -- [--yes] [--requests-per-second N] [--port P]\n\n{about}\n\n  \
         --yes                     switch without asking for confirmation\n  \
         --requests-per-second N   the steady load sent through the switch (default 200)\n  \
         --port P                  the switch's front port on 127.0.0.1 (default: any free port){kube_usage}"
    );
    let mut options = Options {
        yes: false,
        requests_per_second: 200,
        port: 0,
        kube: None,
    };
    let (mut kube, mut image, mut app, mut namespace, mut replicas) = (false, None, None, None, 2);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| -> String {
            inline.clone().or_else(|| args.next()).unwrap_or_else(|| {
                eprintln!("error: {name} needs {what}\n\n{usage}");
                std::process::exit(2)
            })
        };
        match name.as_str() {
            "--yes" | "-y" => options.yes = true,
            "--requests-per-second" => {
                let text = value("a number of requests per second");
                options.requests_per_second = match text.parse() {
                    Ok(rate) if rate > 0 && rate <= 100_000 => rate,
                    _ => {
                        eprintln!(
                            "error: --requests-per-second {text:?}: give a whole number from 1 to 100000"
                        );
                        std::process::exit(2)
                    }
                };
            }
            "--port" => {
                let text = value("a port number");
                options.port = text.parse().unwrap_or_else(|_| {
                    eprintln!("error: --port {text:?}: give a port number from 0 to 65535");
                    std::process::exit(2)
                });
            }
            "--kube" if !kube_usage.is_empty() => kube = true,
            "--image" if !kube_usage.is_empty() => image = Some(value("an image reference")),
            "--app" if !kube_usage.is_empty() => app = Some(value("an app name")),
            "--namespace" if !kube_usage.is_empty() => namespace = Some(value("a namespace")),
            "--replicas" if !kube_usage.is_empty() => {
                let text = value("a number of instances");
                replicas = match text.parse() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        eprintln!("error: --replicas {text:?}: give a whole number above 0");
                        std::process::exit(2)
                    }
                };
            }
            "--help" | "-h" => {
                println!("{usage}");
                std::process::exit(0)
            }
            other => {
                eprintln!("error: unknown option {other:?}\n\n{usage}");
                std::process::exit(2)
            }
        }
    }
    if kube {
        let Some(image) = image else {
            eprintln!(
                "error: --kube needs --image: the image to release (e.g. --image ghcr.io/acme/shop:2.0.0)"
            );
            std::process::exit(2)
        };
        options.kube = Some(KubeOptions {
            image,
            app: app.unwrap_or_else(|| "demo".into()),
            namespace,
            replicas,
        });
    } else if image.is_some() || app.is_some() || namespace.is_some() {
        eprintln!("error: --image, --app and --namespace go with --kube\n\n{usage}");
        std::process::exit(2)
    }
    options
}

/// Asks `question` on the terminal and returns the answer; `true` without asking when
/// `--yes` was given or stdin is not a terminal (CI, a pipe), saying so.
pub(crate) async fn confirm(yes: bool, question: String) -> bool {
    if yes {
        return true;
    }
    // Let the progress lines printed so far reach the terminal before the question.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    if !std::io::stdin().is_terminal() {
        println!("    {question} yes (stdin is not a terminal; --yes assumed)");
        return true;
    }
    tokio::task::spawn_blocking(move || {
        print!("    {question} [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
    })
    .await
    .unwrap_or(false)
}
