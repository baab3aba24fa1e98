//! Where the credential's own Secrets are watched. The chart's
//! `rbac.secretNamespaces` grants Secrets in listed namespaces only; a
//! cluster-wide watch would then be refused (403) forever, and changes to a
//! credential's Secrets would reach it only at its resync.

/// The namespaces of the owned-Secret watch (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One cluster-wide watch.
    All,
    /// One watch per namespace.
    Namespaces(Vec<String>),
}

pub fn owned_secrets(watch_namespace: Option<&str>, secret_namespaces: &[String]) -> Scope {
    match watch_namespace {
        Some(ns) => Scope::Namespaces(vec![ns.to_owned()]),
        None if secret_namespaces.is_empty() => Scope::All,
        None => {
            let mut namespaces = secret_namespaces.to_vec();
            namespaces.sort();
            namespaces.dedup();
            Scope::Namespaces(namespaces)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_follows_what_rbac_grants() {
        let list = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let cases = [
            ("cluster-wide install", None, list(&[]), Scope::All),
            (
                "one watched namespace",
                Some("team-a"),
                list(&[]),
                Scope::Namespaces(list(&["team-a"])),
            ),
            (
                "secretNamespaces (and the release's)",
                None,
                list(&["team-b", "otpilot", "team-a", "team-b"]),
                Scope::Namespaces(list(&["otpilot", "team-a", "team-b"])),
            ),
            (
                "a watched namespace wins",
                Some("team-a"),
                list(&["team-b"]),
                Scope::Namespaces(list(&["team-a"])),
            ),
        ];
        for (case, watch, secrets, expected) in cases {
            assert_eq!(owned_secrets(watch, &secrets), expected, "{case}");
        }
    }
}
