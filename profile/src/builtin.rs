//! The built-in profiles, compiled in from `profiles/*.yaml`.

use std::sync::Arc;

use crate::error::LoadError;
use crate::load::Profile;

/// Names and YAML sources of the built-in profiles.
pub const SOURCES: &[(&str, &str)] = &[
    ("audd", include_str!("../profiles/audd.yaml")),
    ("goaxr", include_str!("../profiles/goaxr.yaml")),
    ("conduit", include_str!("../profiles/conduit.yaml")),
    ("acreto", include_str!("../profiles/acreto.yaml")),
    ("cryptr", include_str!("../profiles/cryptr.yaml")),
];

/// The names of the built-in profiles.
pub fn names() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(|(name, _)| *name)
}

/// Loads a built-in profile by name.
pub fn load(name: &str) -> Option<Result<Profile, LoadError>> {
    SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, yaml)| Profile::from_yaml(&format!("profiles/{n}.yaml"), yaml))
}

/// A built-in profile by name; `None` for an unknown name. The built-ins
/// are validated by tests, so a load error here is a build defect.
pub fn get(name: &str) -> Option<Arc<Profile>> {
    load(name).and_then(Result::ok).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FlowKind;

    #[test]
    fn every_builtin_profile_loads_and_validates() {
        for name in names() {
            let profile = load(name)
                .expect("listed")
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(profile.has_flow(FlowKind::Enroll), "{name}");
            assert!(profile.has_flow(FlowKind::Login), "{name}");
            // Acreto's API has no recovery codes.
            assert_eq!(
                profile.has_flow(FlowKind::RecoveryLogin),
                name != "acreto",
                "{name}: recovery login"
            );
        }
        assert!(get("nope").is_none());
    }
}
