//! The command line, as clap types, and the parsers of its values (durations, smoke checks).
//! Nothing here talks to a cluster: `main.rs` resolves these into plain values and calls the
//! operations.

use std::fmt;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use engine_ops_rollout::IntOrPercent;

/// Blue-green and rolling releases on Kubernetes, with automatic rollback.
///
/// Reads the kubeconfig as kubectl does (KUBECONFIG, ~/.kube/config, or the in-cluster
/// service account). Progress goes to stderr; the result to stdout.
///
/// Exit codes: 0 success; 1 the release failed or was rolled back, problems were found, or
/// another rollout is recorded as in progress; 2 bad usage or bad input.
#[derive(Debug, Parser)]
#[command(name = "rollout", version)]
pub(crate) struct Cli {
    /// Namespace of the app's objects [default: the kubeconfig context's namespace].
    #[arg(long, short = 'n', global = true)]
    pub(crate) namespace: Option<String>,

    /// The app: Deployments <app>-blue and <app>-green, Services <app>-active and
    /// <app>-preview (blue-green), or Deployment <app> (rolling).
    #[arg(long, env = "ROLLOUT_APP", global = true)]
    pub(crate) app: Option<String>,

    /// Output format: human text, or one JSON document on stdout for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub(crate) format: Format,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Human-readable text; progress lines on stderr as they happen.
    Text,
    /// One JSON document on stdout (errors included); no progress lines.
    Json,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Release an image blue-green: deploy it to the idle slot, wait until ready, run the
    /// smoke checks, confirm, switch all traffic, watch, and roll back on failure.
    BlueGreen(BlueGreenArgs),
    /// Switch back to the previous release (or finish a crashed rollout by restoring it).
    Rollback(RollbackArgs),
    /// Show the live slot, images, replicas, the rollout record and pod problems (exit 1
    /// when pods have problems).
    Status,
    /// Update the rolling layout's Deployment in place, watch it, and undo it on failure.
    Rolling(RollingArgs),
    /// Print the Kubernetes objects of a layout as YAML (a JSON List with --format json).
    Manifests(ManifestsArgs),
}

/// Arguments of `blue-green`.
#[derive(Debug, Args)]
pub(crate) struct BlueGreenArgs {
    /// The image to release (ghcr.io/acme/shop:2.0.0).
    pub(crate) image: String,
    /// Replicas of the new release [default: those of the live slot].
    #[arg(long)]
    pub(crate) replicas: Option<u32>,
    /// Switch without asking for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// A smoke check before the switch: an absolute http:// URL, or a path starting with
    /// `/` sent to the preview Service (reachable when run inside the cluster). Repeatable.
    #[arg(long = "smoke", value_name = "URL|PATH", value_parser = parse_smoke)]
    pub(crate) smoke: Vec<Smoke>,
    /// How long the new slot may take to become ready.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub(crate) ready_timeout: Duration,
    /// How long to watch the new live slot after the switch (every pod ready, no pod
    /// problems); a failure rolls back. 0s skips the watch.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(crate) watch: Duration,
    /// How long the previous release keeps running after the release, for an instant
    /// `rollout rollback`; the command waits that long, then scales it to zero. 0s scales it
    /// down at once.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub(crate) standby: Duration,
}

/// Arguments of `rollback`.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// Switch back without asking for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// Replicas to restore the previous release with, when it was scaled down [default:
    /// those of the live slot].
    #[arg(long)]
    pub(crate) replicas: Option<u32>,
    /// How long the previous release may take to become ready again.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub(crate) ready_timeout: Duration,
}

/// Arguments of `rolling`.
#[derive(Debug, Args)]
pub(crate) struct RollingArgs {
    /// The image to roll out.
    pub(crate) image: String,
    /// maxSurge to set on the Deployment (`1`, `25%`) [default: the Deployment's].
    #[arg(long)]
    pub(crate) max_surge: Option<IntOrPercent>,
    /// maxUnavailable to set on the Deployment (`0`, `25%`) [default: the Deployment's].
    #[arg(long)]
    pub(crate) max_unavailable: Option<IntOrPercent>,
    /// How long the update may take before it is undone.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
}

/// Arguments of `manifests`.
#[derive(Debug, Args)]
pub(crate) struct ManifestsArgs {
    /// The layout.
    #[arg(value_enum)]
    pub(crate) layout: Layout,
    /// The container image [default: <app>:latest, a placeholder].
    #[arg(long)]
    pub(crate) image: Option<String>,
    /// Replicas of the serving Deployment.
    #[arg(long, default_value_t = 3)]
    pub(crate) replicas: u32,
    /// The port the app listens on and the Services expose.
    #[arg(long, default_value_t = 8080)]
    pub(crate) port: u16,
}

/// A manifests layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Layout {
    /// Deployments <app>-blue and <app>-green, Services <app>-active and <app>-preview.
    BlueGreen,
    /// Deployment <app> updated in place, Service <app>.
    Rolling,
    /// Deployments <app>-stable and <app>-canary behind Service <app>.
    Canary,
}

/// A smoke check: where its `GET` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Smoke {
    /// A path sent to the new slot's preview URL.
    Path(String),
    /// An absolute URL, split into its origin and its path (with query).
    Url {
        /// The URL as given.
        url: String,
        /// `http://host:port`.
        origin: String,
        /// `/path?query` (`/` when empty).
        path: String,
    },
}

impl fmt::Display for Smoke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Smoke::Path(path) => f.write_str(path),
            Smoke::Url { url, .. } => f.write_str(url),
        }
    }
}

/// `--smoke`: an absolute `http://` URL or a path starting with `/`.
pub(crate) fn parse_smoke(text: &str) -> Result<Smoke, String> {
    if text.starts_with('/') {
        return Ok(Smoke::Path(text.to_owned()));
    }
    if text.starts_with("https://") {
        return Err(format!(
            "`{text}`: smoke checks speak plain HTTP: use an http:// URL (the preview Service inside the cluster, a `kubectl port-forward`)"
        ));
    }
    let Some(rest) = text.strip_prefix("http://") else {
        return Err(format!(
            "`{text}` is neither an absolute http:// URL nor a path starting with `/`: give http://host:port/path, or /path for the preview Service"
        ));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("`{text}` has no host: give http://host:port/path"));
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok(Smoke::Url {
        url: text.to_owned(),
        origin: format!("http://{authority}"),
        path,
    })
}

/// A duration as operators write it: `90s`, `5m`, `1h`, `500ms`, `1m30s`, or `0`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "`{text}` is not a duration: write a number with a unit, such as 90s, 5m, 1h, 500ms or 1m30s"
        )
    };
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(unit);
    }
    Ok(total)
}

/// A duration the way [`parse_duration`] reads it: `1m30s`, `500ms`, `0s`.
pub(crate) fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let secs = duration.as_secs();
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    for (value, unit) in [(hours, "h"), (minutes, "m"), (seconds, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    let millis = duration.subsec_millis();
    if millis > 0 {
        out.push_str(&format!("{millis}ms"));
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// The app name: given, and a DNS label short enough for `<app>-preview`.
pub(crate) fn check_app(app: Option<&str>) -> Result<String, String> {
    let Some(app) = app.filter(|app| !app.is_empty()) else {
        return Err("no app given: pass --app NAME or set ROLLOUT_APP".to_owned());
    };
    let valid = app.len() <= 55
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && app.as_bytes()[0].is_ascii_lowercase()
        && !app.ends_with('-');
    if valid {
        Ok(app.to_owned())
    } else {
        Err(format!(
            "`{app}` is not a valid app name: use up to 55 lowercase letters, digits and `-`, starting with a letter and not ending with `-` (it prefixes Kubernetes object names)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_write_them() {
        let ok = [
            ("90s", Duration::from_secs(90)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("500ms", Duration::from_millis(500)),
            ("1m30s", Duration::from_secs(90)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in ok {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
            assert_eq!(parse_duration(&format_duration(expected)), Ok(expected));
        }
        for bad in ["", "5", "5x", "m", "-1s", "1.5s", "5 m", "s5"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("is not a duration"), "{bad}: {error}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    }

    #[test]
    fn smoke_checks_are_urls_or_paths() {
        assert_eq!(parse_smoke("/health"), Ok(Smoke::Path("/health".into())));
        assert_eq!(
            parse_smoke("http://127.0.0.1:8080/smoke?deep=1"),
            Ok(Smoke::Url {
                url: "http://127.0.0.1:8080/smoke?deep=1".into(),
                origin: "http://127.0.0.1:8080".into(),
                path: "/smoke?deep=1".into(),
            })
        );
        let bare = parse_smoke("http://shop:8080").unwrap();
        assert!(matches!(bare, Smoke::Url { ref path, .. } if path == "/"));
        let query = parse_smoke("http://shop?x=1").unwrap();
        assert!(matches!(query, Smoke::Url { ref path, .. } if path == "/?x=1"));
        assert!(
            parse_smoke("https://shop/")
                .unwrap_err()
                .contains("plain HTTP")
        );
        assert!(parse_smoke("health").unwrap_err().contains("neither"));
        assert!(parse_smoke("http:///x").unwrap_err().contains("no host"));
    }

    #[test]
    fn app_names_are_checked() {
        assert_eq!(check_app(Some("shop-api")), Ok("shop-api".into()));
        assert!(check_app(None).unwrap_err().contains("--app"));
        assert!(check_app(Some("")).unwrap_err().contains("ROLLOUT_APP"));
        for bad in ["Shop", "shop_api", "-shop", "shop-", "1shop"] {
            assert!(check_app(Some(bad)).is_err(), "{bad}");
        }
    }
}
