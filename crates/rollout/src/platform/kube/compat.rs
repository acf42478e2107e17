//! The fields whose shape differs across the Kubernetes versions k8s-openapi supports:
//! `Deployment.spec` and `DeploymentCondition.type` are required up to 1.36 (the condition
//! type) or optional (the spec), and the other way round from 1.37 on.
//!
//! The application picks the version (see the module docs), so the code here compiles for
//! each with k8s-openapi's `k8s_if_*` macros, and the rest of the module reads and builds
//! those fields only through these functions.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

k8s_openapi::k8s_if_le_1_36! {
    /// The Deployment's spec, if it has one.
    pub(crate) fn spec(deployment: &Deployment) -> Option<&DeploymentSpec> {
        deployment.spec.as_ref()
    }

    /// A Deployment from its parts.
    pub(crate) fn deployment(
        metadata: ObjectMeta,
        spec: DeploymentSpec,
        status: Option<DeploymentStatus>,
    ) -> Deployment {
        Deployment { metadata, spec: Some(spec), status }
    }

    /// The condition's type (`Progressing`, `Available`).
    pub(crate) fn condition_type(condition: &DeploymentCondition) -> Option<&str> {
        Some(&condition.type_)
    }
}

k8s_openapi::k8s_if_ge_1_37! {
    /// The Deployment's spec, if it has one.
    pub(crate) fn spec(deployment: &Deployment) -> Option<&DeploymentSpec> {
        Some(&deployment.spec)
    }

    /// A Deployment from its parts.
    pub(crate) fn deployment(
        metadata: ObjectMeta,
        spec: DeploymentSpec,
        status: Option<DeploymentStatus>,
    ) -> Deployment {
        Deployment { metadata, spec, status }
    }

    /// The condition's type (`Progressing`, `Available`).
    pub(crate) fn condition_type(condition: &DeploymentCondition) -> Option<&str> {
        condition.type_.as_deref()
    }
}
