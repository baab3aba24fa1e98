//! The command line: every command, its flags and an example in `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kubectl otpilot: see why an ApiCredential is not Ready, export a
/// ClientCA for a vendor, ask the operator for a new certificate or a new
/// TOTP enrollment, and try a vendor profile before writing any YAML.
#[derive(Debug, Parser)]
#[command(name = "kubectl-otpilot", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show an ApiCredential: why it is not Ready first, then its
    /// conditions, certificate, enrollment, Secrets and recent Events.
    #[command(
        after_help = "Example:\n  kubectl otpilot status -n payments acme-api\n  \
                            kubectl otpilot status acme-api -o yaml"
    )]
    Status(StatusArgs),
    /// ClientCA commands.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Ask the operator to issue a new client certificate now, wait until it
    /// has, and print the new certificate's serial and expiry.
    #[command(after_help = "Example:\n  kubectl otpilot renew -n payments acme-api")]
    Renew(RequestArgs),
    /// Ask the operator to turn MFA over to a new TOTP secret (re-enroll),
    /// wait until it has, and print what it did. Asks for confirmation.
    #[command(after_help = "Example:\n  kubectl otpilot reenroll -n payments acme-api --yes")]
    Reenroll(ReenrollArgs),
    /// Vendor profile commands: validate, and try a flow against a vendor.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  kubectl otpilot completion bash > /etc/bash_completion.d/kubectl-otpilot"
    )]
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Where the cluster is, as kubectl's flags say it.
#[derive(Debug, Clone, Args, Default)]
pub struct KubeArgs {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// A summary for people.
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The ApiCredential's name.
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: OutputFormat,
    #[command(flatten)]
    pub kube: KubeArgs,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Print the CA certificate (PEM) to hand to a vendor; its SHA-256
    /// fingerprint goes to stderr.
    #[command(after_help = "Example:\n  kubectl otpilot ca export vendors-ca > vendors-ca.pem")]
    Export {
        /// The ClientCA's name (cluster-scoped).
        name: String,
        #[command(flatten)]
        kube: KubeArgs,
    },
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The ApiCredential's name.
    pub name: String,
    /// How long to wait for the operator, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    #[command(flatten)]
    pub kube: KubeArgs,
}

#[derive(Debug, Args)]
pub struct ReenrollArgs {
    #[command(flatten)]
    pub request: RequestArgs,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Validate profiles (or ClusterMfaProfile manifests) as the operator
    /// does when it loads them; exits 1 when any has a problem.
    #[command(
        after_help = "Example:\n  kubectl otpilot profile check profiles/acme.yaml deploy/acme-profile.yaml"
    )]
    Check {
        /// Profile files: a bare profile, or a ClusterMfaProfile manifest.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run one flow of a profile against a vendor (or the simulator),
    /// printing each step, and keep what later flows need in a state file.
    #[command(after_help = "Example:\n  \
        kubectl otpilot profile try acme.yaml --base-url https://sandbox.acme.example/v1 \\\n    \
        --username bot@example.com --password-file pw.txt --flow enroll --state acme.state\n  \
        kubectl otpilot profile try acme.yaml --base-url https://sandbox.acme.example/v1 \\\n    \
        --username bot@example.com --password-file pw.txt --flow login --state acme.state")]
    Try(Box<TryArgs>),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FlowArg {
    Enroll,
    Login,
    Refresh,
    RecoveryLogin,
    Disable,
}

#[derive(Debug, Args)]
pub struct TryArgs {
    /// The profile: a file, a ClusterMfaProfile manifest, or a built-in
    /// profile's name (audd, goaxr, conduit, acreto, cryptr).
    pub profile: String,
    /// The vendor's API base URL.
    #[arg(long)]
    pub base_url: String,
    /// The account's user name.
    #[arg(long)]
    pub username: Option<String>,
    /// File holding the account's password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// File holding the account's API key.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// A vendor secret value the profile declares in `secretValues` (e.g.
    /// Conduit's `client_secret`), `NAME=FILE` (repeatable): the file's
    /// text, as an ApiCredential's `spec.secretValues` gives it.
    #[arg(long = "secret-value", value_name = "NAME=FILE",
          value_parser = otpilot_api::secret_value_flag::parse_secret_value_flag)]
    pub secret_values: Vec<(String, PathBuf)>,
    /// PEM file of the CA that signs the vendor's server certificate.
    #[arg(long)]
    pub server_ca: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS.
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// A profile variable, `name=value` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// TOTP period in seconds, overriding the profile's and the vendor's
    /// (as an ApiCredential's spec.totp.period does).
    #[arg(long, value_name = "SECONDS")]
    pub totp_period: Option<u32>,
    /// The flow to run.
    #[arg(long, value_enum)]
    pub flow: FlowArg,
    /// State file (created with mode 0600): the enrolled secret, recovery
    /// codes, the session, and an interrupted flow's checkpoint.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Stop after this many steps. An enrollment's progress stays in the
    /// state file: `--flow enroll` again continues from there.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Print extracted values (tokens, the TOTP secret, recovery codes).
    #[arg(long)]
    pub show_secrets: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    /// Every leaf command's help shows an example.
    #[test]
    fn every_command_has_help_with_an_example() {
        let mut root = Cli::command();
        root.build();
        let mut pending = vec![(String::new(), root)];
        let mut leaves = 0;
        while let Some((path, mut command)) = pending.pop() {
            let path = format!("{path} {}", command.get_name());
            if command.get_name() == "help" {
                continue; // clap's own, mirroring the others
            }
            let subcommands: Vec<_> = command.get_subcommands().cloned().collect();
            if subcommands.is_empty() {
                leaves += 1;
                let help = command.render_long_help().to_string();
                assert!(help.contains("Example:"), "{path} has no example:\n{help}");
            }
            pending.extend(subcommands.into_iter().map(|c| (path.clone(), c)));
        }
        assert_eq!(
            leaves, 7,
            "status, ca export, renew, reenroll, profile check/try, completion"
        );
    }

    #[test]
    fn kubectl_flags_parse_anywhere() {
        let cli = Cli::try_parse_from([
            "kubectl-otpilot",
            "status",
            "-n",
            "payments",
            "acme",
            "--context",
            "prod",
            "-o",
            "yaml",
        ])
        .expect("parses");
        let Command::Status(args) = cli.command else {
            panic!("status")
        };
        assert_eq!(args.kube.namespace.as_deref(), Some("payments"));
        assert_eq!(args.kube.context.as_deref(), Some("prod"));
        assert_eq!(args.output, OutputFormat::Yaml);
    }
}
