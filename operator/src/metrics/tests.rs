//! The metrics' names and labels, and that the chart's alerts and their
//! promtool tests read them as exported.

use super::*;

#[test]
fn a_credential_has_its_own_series_until_it_is_gone() {
    let metrics = Metrics::default();
    let figures = CredentialFigures {
        ready: true,
        certificate_not_after: Some(1_900_000_000),
        recovery_codes: Some(2),
        clock_offset_seconds: Some(-4),
    };
    metrics.credential("payments/bot", Some(figures));
    metrics.credential("ci/builder", Some(CredentialFigures::default()));
    let text = metrics.render();
    for want in [
        r#"otpilot_operator_credential_ready{namespace="payments",name="bot"} 1"#,
        r#"otpilot_operator_certificate_expiry_timestamp_seconds{namespace="payments",name="bot"} 1900000000"#,
        r#"otpilot_operator_recovery_codes_remaining{namespace="payments",name="bot"} 2"#,
        r#"otpilot_operator_vendor_clock_offset_seconds{namespace="payments",name="bot"} -4"#,
        r#"otpilot_operator_credential_ready{namespace="ci",name="builder"} 0"#,
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    // No certificate, no codes, no offset measured: no series, not a 0.
    assert!(!text.contains(r#"certificate_expiry_timestamp_seconds{namespace="ci""#));
    assert!(!text.contains(r#"recovery_codes_remaining{namespace="ci""#));

    metrics.credential("payments/bot", None);
    let text = metrics.render();
    assert!(!text.contains(r#"name="bot""#), "{text}");
    assert!(text.contains(r#"name="builder""#));
}

/// Every metric the chart's PrometheusRule reads is one the operator
/// exports: an alert on a misspelt metric never fires.
#[test]
fn every_metric_the_shipped_alerts_read_is_exported() {
    let rules = include_str!("../../../charts/otpilot/templates/prometheusrule.yaml");
    let metrics = Metrics::new(true);
    metrics.webhook_certificate(&WebhookCertificate::Current {
        not_after: jiff::Timestamp::UNIX_EPOCH,
    });
    metrics.credential(
        "ns/name",
        Some(CredentialFigures {
            ready: true,
            certificate_not_after: Some(1),
            recovery_codes: Some(1),
            clock_offset_seconds: Some(1),
        }),
    );
    metrics.webhook_denied("team-a", "CredentialNotFound");
    let text = metrics.render();
    let mut read = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("otpilot_operator_") {
            read += 1;
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{word}{{"))
                        || l.starts_with(&format!("{word} "))),
                "the PrometheusRule reads {word}, which the operator does not export:\n{text}"
            );
        }
    }
    assert!(read >= 8, "found {read} metric names in the PrometheusRule");
}

/// The label names of a series line (`name{a="1",b="2"} 3`), and its name.
fn name_and_label_names(series: &str) -> (String, std::collections::BTreeSet<String>) {
    let (name, rest) = series.split_once('{').unwrap_or((series, ""));
    let name = name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let labels = rest
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, _)| k.trim().to_owned())
        .collect();
    (name, labels)
}

/// The promtool tests' input series (charts/otpilot/tests) are shaped as
/// the operator exports them: the same names, and the same labels plus
/// only what the scrape adds (target labels; `namespace` from the
/// target only for series that carry none of their own).
#[test]
fn the_rule_tests_feed_series_shaped_as_exported() {
    let tests = include_str!("../../../charts/otpilot/tests/rules.test.yaml");
    let metrics = Metrics::new(true);
    metrics.credential(
        "payments/bot",
        Some(CredentialFigures {
            ready: true,
            certificate_not_after: Some(1),
            recovery_codes: Some(1),
            clock_offset_seconds: Some(1),
        }),
    );
    metrics.webhook_denied("payments", "CredentialNotFound");
    metrics.webhook_certificate(&WebhookCertificate::Current {
        not_after: jiff::Timestamp::UNIX_EPOCH,
    });
    let exported: std::collections::BTreeMap<_, _> = metrics
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(name_and_label_names)
        .collect();
    let target = ["job", "instance", "pod", "service", "container", "endpoint"];
    let mut checked = 0;
    for line in tests.lines() {
        let Some(series) = line.trim().strip_prefix("- series: '") else {
            continue;
        };
        let (name, mut labels) = name_and_label_names(series.trim_end_matches('\''));
        if !name.starts_with("otpilot_operator_") {
            continue;
        }
        let own = exported
            .get(&name)
            .unwrap_or_else(|| panic!("the rule tests feed {name}, which is not exported"));
        labels.retain(|l| !target.contains(&l.as_str()));
        if !own.contains("namespace") {
            assert!(
                labels.remove("namespace"),
                "{name}: no target namespace in {line}"
            );
        }
        assert_eq!(&labels, own, "{name}'s labels in {line}");
        checked += 1;
    }
    assert!(checked >= 10, "checked {checked} series");
}

#[test]
fn rendered_metrics_carry_the_prefix_and_bounded_labels() {
    let metrics = Metrics::default();
    metrics.reconciled("apicredential");
    metrics.reconcile_failed("apicredential", "SecretNotFound");
    metrics.enrollment_finished("Enrolled");
    metrics.set_leader(true);
    metrics.webhook_denied("team-a", "CredentialNotFound");
    let text = metrics.render();
    for want in [
        "otpilot_operator_reconciles_total{controller=\"apicredential\"} 1",
        "otpilot_operator_reconcile_errors_total{controller=\"apicredential\",category=\"SecretNotFound\"} 1",
        "otpilot_operator_enrollments_total{outcome=\"Enrolled\"} 1",
        "otpilot_operator_leader 1",
        "otpilot_operator_webhook_denials_total{namespace=\"team-a\",reason=\"CredentialNotFound\"} 1",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    // No webhook served: no webhook certificate series at all.
    assert!(!text.contains("webhook_certificate"), "{text}");
}

#[test]
fn the_webhook_certificate_series_follow_what_readyz_found() {
    let metrics = Metrics::new(true);
    let not_after = jiff::Timestamp::from_second(1_900_000_000).expect("timestamp");
    metrics.webhook_certificate(&WebhookCertificate::Current { not_after });
    let text = metrics.render();
    assert!(
        text.contains("otpilot_operator_webhook_certificate_valid 1"),
        "{text}"
    );
    assert!(
        text.contains("otpilot_operator_webhook_certificate_expiry_timestamp_seconds 1900000000")
            || text.contains(
                "otpilot_operator_webhook_certificate_expiry_timestamp_seconds{} 1900000000"
            ),
        "{text}"
    );
    metrics.webhook_certificate(&WebhookCertificate::Expired { not_after });
    assert!(
        metrics
            .render()
            .contains("otpilot_operator_webhook_certificate_valid 0")
    );
    metrics.webhook_certificate(&WebhookCertificate::Unusable("no file".into()));
    let text = metrics.render();
    assert!(
        text.contains("otpilot_operator_webhook_certificate_valid 0"),
        "{text}"
    );
    assert!(
        !text.contains("expiry_timestamp_seconds{} ")
            && !text.contains("expiry_timestamp_seconds 1"),
        "{text}"
    );
}

#[test]
fn refusals_are_labelled_by_a_bounded_set_of_valid_namespaces() {
    let mut seen = std::collections::HashSet::new();
    for (namespace, want) in [
        ("payments", "payments"),
        ("team-a1", "team-a1"),
        ("", ""),
        ("Payments", ""),
        ("-a", ""),
        ("a-", ""),
        ("a.b", ""),
        ("a{b=\"c\"}", ""),
        (&"x".repeat(64), ""),
    ] {
        assert_eq!(denial_namespace(&mut seen, namespace), want, "{namespace}");
    }
    for i in 0..MAX_DENIAL_NAMESPACES {
        denial_namespace(&mut seen, &format!("ns-{i}"));
    }
    // Full: a new name is not a new series; the ones seen keep theirs.
    assert_eq!(seen.len(), MAX_DENIAL_NAMESPACES);
    assert_eq!(denial_namespace(&mut seen, "one-too-many"), "");
    assert_eq!(denial_namespace(&mut seen, "payments"), "payments");
}
