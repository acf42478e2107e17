//! The Kubernetes platform (crate feature `kube`): [`KubePlatform`] drives a blue-green pair of
//! Deployments and the Services in front of them through kube-rs.
//!
//! - [`KubePlatform`]: the [`Platform`](crate::Platform) operations as API calls (selector
//!   patches, image and replica patches, a watch for rollout status), plus the rollout's state
//!   kept in `engine-ops.dev/` annotations so that the next command detects a crashed driver
//!   ([`KubePlatform::begin_rollout`], [`KubePlatform::rollout_in_progress`]).
//! - [`rollout_status`], [`RolloutStatus`]: whether a Deployment is rolled out, decided as
//!   `kubectl rollout status` decides it; a pure function over a k8s-openapi `Deployment`.
//! - [`KubePlatform::rolling_update`], [`KubePlatform::undo_rolling`]: the rolling layout's
//!   Deployment updated in place by its own `RollingUpdate` strategy, watched as `kubectl
//!   rollout status` does and undone as `kubectl rollout undo` does when it fails.
//! - [`problems_of_pod`], [`KubePlatform::pod_problems`]: what keeps pods from serving
//!   (`Unschedulable`, `ImagePullBackOff`, `ErrImagePull`, `CrashLoopBackOff`), as kubectl
//!   warns of it.
//! - [`manifests`]: the objects of a blue-green pair, a rolling Deployment and a canary pair,
//!   with probes, preStop hook, anti-affinity and surge settings, rendered as YAML. Generated
//!   copies for a sample app live in the repository's `infra/k8s/`.
//!
//! # The objects
//!
//! ```text
//!                   ┌── Service shop-active  selector {app: shop, version: blue}  ── live
//! Deployment shop-blue   (labels app: shop, version: blue)
//! Deployment shop-green  (labels app: shop, version: green)
//!                   └── Service shop-preview selector {app: shop, version: green} ── smoke tests
//! ```
//!
//! A switch is one merge patch of `shop-active`'s selector: kube-proxy moves new connections to
//! the other slot's ready pods; connections already open finish where they are.
//!
//! # Kubernetes versions and TLS
//!
//! As k8s-openapi asks of libraries, this crate enables no Kubernetes version feature: the
//! application enables one on its own `k8s-openapi` dependency (`features = ["v1_35"]`, or
//! `"latest"`), or sets `K8S_OPENAPI_ENABLED_VERSION=1.35` when building. The feature `kube`
//! speaks plain HTTP (a `kubectl proxy`, a loopback server); add `kube-tls` (rustls) for a
//! cluster's `https://` API server.
//!
//! # Testing
//!
//! The tests of this module (`tests/kube_*.rs`) run against a **stand-in API server** on
//! loopback (`tests/support/kube_apiserver.rs`), not a cluster: it serves GET, LIST, WATCH
//! and PATCH for Deployments and Services (and Pods, as the test creates them) with
//! resourceVersion semantics, answers `404` and `409` with Kubernetes `Status` bodies,
//! moves Deployment status forward as a controller would (or holds it back, or reports
//! `ProgressDeadlineExceeded`), and records every request so that the tests assert the
//! exact calls. The real client stack (kube-rs over hyper) is
//! used unchanged, including a kubeconfig loaded through `KUBECONFIG`.

mod compat;
pub mod manifests;
mod platform;
mod pods;
mod rolling;
mod status;

pub use self::manifests::{ManifestSpec, Manifests};
pub use self::platform::{
    ANNOTATION_PREFIX, CANARY_WEIGHT_ANNOTATION, FIELD_MANAGER, KubePlatform, PHASE_ANNOTATION,
    PREVIOUS_IMAGE_ANNOTATION, PREVIOUS_SLOT_ANNOTATION, ROLLOUT_ANNOTATION, RolloutRecord,
    STARTED_ANNOTATION,
};
pub use self::pods::{PodProblem, PodProblemKind, problems_of_pod};
pub use self::rolling::{
    DEFAULT_ROLLING_TIMEOUT, RollingEvent, RollingReport, RollingUndo, RollingUpdate,
};
pub use self::status::{PROGRESS_DEADLINE_EXCEEDED, RolloutStatus, rollout_status};
