//! The shared-session fixture: a namespace on the real control plane with
//! a credential's Lease, session Secret, Role and RoleBinding laid out as
//! the operator lays them out, a ServiceAccount with a real token
//! (TokenRequest), and a kubeconfig carrying only that token.

#![allow(dead_code)] // each test binary uses part of the fixture

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use otpilot_api::labels;
use otpilot_api::session::{
    empty_data, service_account_subject, session_lease_name, session_role_name, session_role_ref,
    session_role_rules, session_secret_name,
};
use otpilot_tests::cluster::{KUBECONFIG_ENV, TestCluster, TestNamespace};

pub const CREDENTIAL: &str = "billing";
pub const SHARED_SA: &str = "billing-app";

pub struct SessionNamespace {
    pub cluster: TestCluster,
    pub ns: TestNamespace,
    pub dir: tempfile::TempDir,
}

fn labelled(name: &str, kind: Option<&str>) -> ObjectMeta {
    let mut labels = BTreeMap::from([
        (
            labels::MANAGED_BY.to_owned(),
            labels::MANAGED_BY_VALUE.to_owned(),
        ),
        (labels::CREDENTIAL.to_owned(), CREDENTIAL.to_owned()),
    ]);
    if let Some(kind) = kind {
        labels.insert(labels::SECRET_KIND.to_owned(), kind.to_owned());
    }
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

impl SessionNamespace {
    /// A namespace with the credential's session objects, the binding for
    /// [`SHARED_SA`], and an unrelated Secret nobody else may read.
    pub async fn new(test: &str) -> Self {
        let cluster = TestCluster::connect()
            .await
            .expect("the test control plane");
        let ns = cluster.namespace(test).await.expect("namespace");
        let pp = PostParams::default();
        ns.api::<Lease>()
            .create(
                &pp,
                &Lease {
                    metadata: labelled(&session_lease_name(CREDENTIAL), None),
                    spec: Some(LeaseSpec::default()),
                },
            )
            .await
            .expect("Lease");
        let data = |d: BTreeMap<String, Vec<u8>>| {
            Some(d.into_iter().map(|(k, v)| (k, ByteString(v))).collect())
        };
        ns.api::<Secret>()
            .create(
                &pp,
                &Secret {
                    metadata: labelled(
                        &session_secret_name(CREDENTIAL),
                        Some(labels::kinds::SESSION),
                    ),
                    data: data(empty_data()),
                    ..Secret::default()
                },
            )
            .await
            .expect("session Secret");
        ns.api::<Secret>()
            .create(
                &pp,
                &Secret {
                    metadata: labelled(&format!("{CREDENTIAL}-runtime"), Some("runtime")),
                    data: data(BTreeMap::from([("totp-secret".into(), b"x".to_vec())])),
                    ..Secret::default()
                },
            )
            .await
            .expect("another Secret");
        ns.api::<Role>()
            .create(
                &pp,
                &Role {
                    metadata: labelled(&session_role_name(CREDENTIAL), None),
                    rules: Some(session_role_rules(CREDENTIAL)),
                },
            )
            .await
            .expect("Role");
        for sa in [SHARED_SA, "stranger"] {
            ns.api::<ServiceAccount>()
                .create(
                    &pp,
                    &ServiceAccount {
                        metadata: ObjectMeta {
                            name: Some(sa.to_owned()),
                            ..ObjectMeta::default()
                        },
                        ..ServiceAccount::default()
                    },
                )
                .await
                .expect("ServiceAccount");
        }
        ns.api::<RoleBinding>()
            .create(
                &pp,
                &RoleBinding {
                    metadata: labelled(&session_role_name(CREDENTIAL), None),
                    role_ref: session_role_ref(CREDENTIAL),
                    subjects: Some(vec![service_account_subject(ns.name(), SHARED_SA)]),
                },
            )
            .await
            .expect("RoleBinding");
        let env = Self {
            cluster,
            ns,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        // The authorizer learns of new Roles and bindings through its own
        // watch: wait until it has, as a Pod created later would find it.
        let secret = session_secret_name(CREDENTIAL);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !env
            .may(SHARED_SA, "get", "", "secrets", Some(secret.as_str()))
            .await
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the RoleBinding never took effect"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        env
    }

    /// A kubeconfig holding only a fresh token of ServiceAccount `sa` (what
    /// a Pod of that ServiceAccount has), and the token (to scan for).
    pub async fn kubeconfig_for(&self, sa: &str) -> (PathBuf, String) {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let issued: TokenRequest = self
            .ns
            .api::<ServiceAccount>()
            .create_subresource("token", sa, &PostParams::default(), &request)
            .await
            .expect("TokenRequest");
        let token = issued.status.and_then(|s| s.token).expect("token issued");
        let admin_path = std::env::var(KUBECONFIG_ENV).expect("OTPILOT_TEST_KUBECONFIG");
        let admin = kube::config::Kubeconfig::read_from(&admin_path).expect("admin kubeconfig");
        let cluster = admin.clusters.first().expect("a cluster").clone();
        let cluster_name = cluster.name.clone();
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [serde_json::to_value(&cluster).expect("cluster")],
            "users": [{"name": sa, "user": {"token": token}}],
            "contexts": [{"name": "pod", "context": {
                "cluster": cluster_name, "user": sa, "namespace": self.ns.name()}}],
            "current-context": "pod",
        });
        let path = self.dir.path().join(format!("{sa}.kubeconfig"));
        std::fs::write(&path, config.to_string()).expect("write kubeconfig");
        (path, token)
    }

    /// Whether ServiceAccount `sa` may `verb` the `resource` named `name`
    /// (all names when `None`), asked of the API server.
    pub async fn may(
        &self,
        sa: &str,
        verb: &str,
        group: &str,
        resource: &str,
        name: Option<&str>,
    ) -> bool {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(format!("system:serviceaccount:{}:{sa}", self.ns.name())),
                groups: Some(vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{}", self.ns.name()),
                    "system:authenticated".into(),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(self.ns.name().to_owned()),
                    verb: Some(verb.to_owned()),
                    group: Some(group.to_owned()),
                    resource: Some(resource.to_owned()),
                    name: name.map(str::to_owned),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.cluster.client())
            .create(&PostParams::default(), &review)
            .await
            .expect("SubjectAccessReview");
        answer.status.is_some_and(|s| s.allowed)
    }
}

/// The sidecar flags of a replica that shares the session.
pub fn session_args(identity: &str, namespace: &str) -> Vec<String> {
    session_args_with_lease(identity, namespace, 2)
}

/// [`session_args`] with a Lease of `lease_secs`.
pub fn session_args_with_lease(identity: &str, namespace: &str, lease_secs: u64) -> Vec<String> {
    vec![
        "--session-credential".into(),
        CREDENTIAL.into(),
        "--session-namespace".into(),
        namespace.into(),
        "--session-identity".into(),
        identity.into(),
        "--session-lease-duration".into(),
        lease_secs.to_string(),
    ]
}
