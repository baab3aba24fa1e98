//! The annotations' parsing, case by case.

use super::*;
use pretty_assertions::assert_eq;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn config() -> InjectConfig {
    InjectConfig::new("sidecar:1")
}

fn overrides_allowed() -> InjectConfig {
    InjectConfig {
        allow_image_override: true,
        ..config()
    }
}

#[test]
fn a_pod_without_the_inject_annotation_asks_for_nothing() {
    let other = annotations(&[(API_PORT, "9000"), ("unrelated", "x")]);
    assert_eq!(parse(&other, &config()), Ok(None));
}

#[test]
fn defaults_come_from_the_shared_constants() {
    let request = parse(&annotations(&[(INJECT, "vendor")]), &config())
        .expect("valid")
        .expect("asks for injection");
    assert_eq!(
        request,
        InjectRequest {
            credential: "vendor".into(),
            api_port: DEFAULT_API_PORT,
            proxy_port: DEFAULT_PROXY_PORT,
            admin_port: DEFAULT_ADMIN_PORT,
            readiness: Readiness::None,
            token_file: None,
            image: None,
            proxy_require_header: false,
        }
    );
}

#[test]
fn every_accepted_annotation_is_read() {
    let request = parse(
        &annotations(&[
            (INJECT, " payments.audd "),
            (API_PORT, "9001"),
            (PROXY_PORT, "9002"),
            (ADMIN_PORT, "9003"),
            (READINESS, "token"),
            (TOKEN_FILE, "/var/run/otpilot/token/token"),
            (SIDECAR_IMAGE, "registry.local/sidecar@sha256:abc"),
            (PROXY_REQUIRE_HEADER, "true"),
        ]),
        &overrides_allowed(),
    )
    .expect("valid")
    .expect("asks for injection");
    assert_eq!(
        request,
        InjectRequest {
            credential: "payments.audd".into(),
            api_port: 9001,
            proxy_port: 9002,
            admin_port: 9003,
            readiness: Readiness::Token,
            token_file: Some(TokenFile {
                path: "/var/run/otpilot/token/token".into(),
                dir: "/var/run/otpilot/token".into(),
            }),
            image: Some("registry.local/sidecar@sha256:abc".into()),
            proxy_require_header: true,
        }
    );
}

#[test]
fn invalid_values_are_refused_with_a_message_naming_the_annotation() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[(INJECT, "")], INJECT),
        (&[(INJECT, "Vendor")], INJECT),
        (&[(INJECT, "-vendor")], INJECT),
        (&[(INJECT, "vendor_1")], INJECT),
        (&[(INJECT, "other-ns/vendor")], INJECT),
        (&[(INJECT, "/vendor")], INJECT),
        (&[(INJECT, "v"), (API_PORT, "http")], API_PORT),
        (
            &[(INJECT, "v"), (PROXY_REQUIRE_HEADER, "yes")],
            PROXY_REQUIRE_HEADER,
        ),
        (&[(INJECT, "v"), (API_PORT, "0")], API_PORT),
        (&[(INJECT, "v"), (API_PORT, "80")], API_PORT),
        (&[(INJECT, "v"), (API_PORT, "65536")], API_PORT),
        (&[(INJECT, "v"), (PROXY_PORT, "-1")], PROXY_PORT),
        (
            &[(INJECT, "v"), (API_PORT, "9000"), (PROXY_PORT, "9000")],
            PROXY_PORT,
        ),
        (&[(INJECT, "v"), (PROXY_PORT, "8181")], PROXY_PORT),
        (&[(INJECT, "v"), (ADMIN_PORT, "8181")], ADMIN_PORT),
        (&[(INJECT, "v"), (ADMIN_PORT, "8182")], ADMIN_PORT),
        (&[(INJECT, "v"), (ADMIN_PORT, "80")], ADMIN_PORT),
        (
            &[(INJECT, "v"), (PROXY_PORT, "9000"), (ADMIN_PORT, "9000")],
            ADMIN_PORT,
        ),
        (&[(INJECT, "v"), (READINESS, "always")], READINESS),
        (&[(INJECT, "v"), (READINESS, "Token")], READINESS),
        (&[(INJECT, "v"), (TOKEN_FILE, "token")], TOKEN_FILE),
        (&[(INJECT, "v"), (TOKEN_FILE, "/token")], TOKEN_FILE),
        (&[(INJECT, "v"), (TOKEN_FILE, "/tmp/token")], TOKEN_FILE),
        (
            &[(INJECT, "v"), (TOKEN_FILE, "/var/run/../token")],
            TOKEN_FILE,
        ),
        (&[(INJECT, "v"), (TOKEN_FILE, "/var/run/t/")], TOKEN_FILE),
        (&[(INJECT, "v"), (TOKEN_FILE, "/var//run/t")], TOKEN_FILE),
        (
            &[(INJECT, "v"), (TOKEN_FILE, "/var/run/otpilot/runtime/t")],
            TOKEN_FILE,
        ),
        (
            &[(INJECT, "v"), (TOKEN_FILE, "/var/run/otpilot/t")],
            TOKEN_FILE,
        ),
        (
            &[(INJECT, "v"), (TOKEN_FILE, "/var/run/otpilot/password/x/t")],
            TOKEN_FILE,
        ),
        (&[(INJECT, "v"), (SIDECAR_IMAGE, "evil:1")], SIDECAR_IMAGE),
    ];
    for (pairs, annotation) in cases {
        let error =
            parse(&annotations(pairs), &config()).expect_err(&format!("{pairs:?} must be refused"));
        assert!(
            error.to_string().contains(annotation),
            "{pairs:?}: message {error:?} does not name {annotation}"
        );
    }
}

#[test]
fn a_namespaced_credential_reference_is_a_cross_namespace_error() {
    assert!(matches!(
        parse(&annotations(&[(INJECT, "team-b/vendor")]), &config()),
        Err(AnnotationError::CrossNamespace { .. })
    ));
}

#[test]
fn an_image_override_needs_the_installation_to_allow_it_and_a_real_reference() {
    let pairs = annotations(&[(INJECT, "v"), (SIDECAR_IMAGE, "mine:2")]);
    assert_eq!(
        parse(&pairs, &config()),
        Err(AnnotationError::ImageOverrideNotAllowed)
    );
    for bad in ["", "  ", "a b", "x\ny"] {
        let pairs = annotations(&[(INJECT, "v"), (SIDECAR_IMAGE, bad)]);
        assert!(
            matches!(
                parse(&pairs, &overrides_allowed()),
                Err(AnnotationError::InvalidImage { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn overlapping_paths_are_detected_both_ways() {
    let table = [
        ("/a/b", "/a/b", true),
        ("/a/b/c", "/a/b", true),
        ("/a", "/a/b", true),
        ("/a/bc", "/a/b", false),
        ("/a/b", "/a/bc", false),
        ("/x/y", "/a/b", false),
    ];
    for (a, b, overlap) in table {
        assert_eq!(paths_overlap(a, b), overlap, "{a} vs {b}");
    }
}
