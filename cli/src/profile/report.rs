//! The lines `profile try` prints: one per step, then what the flow left.
//! Values are named, never shown, unless the user asked for them.

use otpilot_api::profile::Step;
use otpilot_profile::StepReport;

/// A value a step extracted, as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub name: String,
    /// Shown only with `--show-secrets`.
    pub value: Option<String>,
}

/// `[2/3] confirm: POST /mfa/confirm -> 200 ok; extracted: recovery_codes`
pub fn step_line(
    total: usize,
    step: &Step,
    report: &StepReport,
    extracted: &[Extracted],
) -> String {
    let name = report
        .name
        .as_deref()
        .map(|n| format!("{n}: "))
        .unwrap_or_default();
    let method = format!("{:?}", step.method).to_uppercase();
    let outcome = if report.already_done {
        "already done"
    } else {
        "ok"
    };
    let mut line = format!(
        "[{}/{total}] {name}{method} {} -> {} {outcome}",
        report.index + 1,
        step.path,
        report.status
    );
    if !extracted.is_empty() {
        let names: Vec<String> = extracted
            .iter()
            .map(|e| match &e.value {
                Some(v) => format!("{}={v}", e.name),
                None => e.name.clone(),
            })
            .collect();
        line.push_str("; extracted: ");
        line.push_str(&names.join(", "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn step_lines_name_values_and_show_them_only_when_given() {
        let step: Step = serde_json::from_value(serde_json::json!({
            "name": "confirm", "method": "POST", "path": "/users/{{ user_id }}/mfa"
        }))
        .expect("step");
        let report = |already_done| StepReport {
            index: 1,
            name: Some("confirm".into()),
            extracted: vec!["recovery_codes".into()],
            already_done,
            status: 200,
        };
        let hidden = [Extracted {
            name: "recovery_codes".into(),
            value: None,
        }];
        let shown = [Extracted {
            name: "token".into(),
            value: Some("abc".into()),
        }];
        let cases = [
            (
                report(false),
                &hidden[..],
                "[2/3] confirm: POST /users/{{ user_id }}/mfa -> 200 ok; extracted: recovery_codes",
            ),
            (
                report(true),
                &[][..],
                "[2/3] confirm: POST /users/{{ user_id }}/mfa -> 200 already done",
            ),
            (
                report(false),
                &shown[..],
                "[2/3] confirm: POST /users/{{ user_id }}/mfa -> 200 ok; extracted: token=abc",
            ),
        ];
        for (report, extracted, want) in cases {
            assert_eq!(step_line(3, &step, &report, extracted), want);
        }
    }
}
