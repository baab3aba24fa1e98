//! A kube client from a kubeconfig, chosen as kubectl chooses it
//! (`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`; `--context`;
//! `-n/--namespace` else the context's namespace).

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::args::KubeArgs;

/// A client and the namespace to work in.
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
}

pub async fn connect(args: &KubeArgs) -> anyhow::Result<Cluster> {
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?,
        None => Kubeconfig::read().context(
            "cannot read a kubeconfig ($KUBECONFIG or ~/.kube/config); pass --kubeconfig",
        )?,
    };
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .context("the kubeconfig cannot be used")?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
    Ok(Cluster { client, namespace })
}
