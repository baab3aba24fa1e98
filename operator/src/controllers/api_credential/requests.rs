//! Requests a person makes with annotations (pure decisions):
//! `otpilot.dev/renew-certificate` (issue a new client certificate now) and
//! `otpilot.dev/reenroll` (turn MFA over to a new TOTP secret). Each value
//! is honoured once; the value acted on is recorded in
//! `status.handledRenewRequest` / `status.handledReenrollRequest`.

use super::secrets::{ReenrollMark, ReenrollPhase};

/// The annotation's value when it asks for something not done yet.
pub fn pending<'a>(annotation: Option<&'a str>, handled: &[Option<&str>]) -> Option<&'a str> {
    let value = annotation.map(str::trim).filter(|v| !v.is_empty())?;
    (!handled.contains(&Some(value))).then_some(value)
}

/// How this vendor's MFA can be turned over to a new secret (pure, from
/// the profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReenrollPlan {
    /// The enroll flow replaces the active secret once the new one is
    /// confirmed (the profile says `replacesActiveSecret`): enroll again;
    /// the old secret keeps working until then.
    EnrollAgain,
    /// The profile's `disable` flow turns MFA off (with the old secret),
    /// then the enroll flow runs as the first time.
    DisableThenEnroll,
    /// Neither: the vendor refuses a second enrollment and the profile
    /// cannot turn MFA off.
    Unsupported,
}

pub fn reenroll_plan(replaces_active_secret: bool, has_disable_flow: bool) -> ReenrollPlan {
    match (replaces_active_secret, has_disable_flow) {
        (true, _) => ReenrollPlan::EnrollAgain,
        (false, true) => ReenrollPlan::DisableThenEnroll,
        (false, false) => ReenrollPlan::Unsupported,
    }
}

impl ReenrollPlan {
    /// The phase a new re-enrollment starts in.
    pub fn first_phase(self) -> ReenrollPhase {
        match self {
            ReenrollPlan::DisableThenEnroll => ReenrollPhase::Disable,
            _ => ReenrollPhase::Enroll,
        }
    }
}

/// What to do about re-enrollment in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReenrollAction {
    /// Nothing asked: enroll (or not) as usual.
    None,
    /// A re-enrollment is under way (stored mark): finish it, whatever the
    /// annotation says now; the vendor may be half-way.
    Continue(ReenrollMark),
    /// Start re-enrolling for this request.
    Begin(String),
    /// Not enrolled yet: the enrollment under way makes a new secret
    /// anyway, so the request is recorded once it is done.
    RecordAfterEnrollment(String),
    /// The vendor cannot be re-enrolled through its profile: record the
    /// request with a Warning saying so.
    Refuse(String),
}

pub fn reenroll_action(
    requested: Option<&str>,
    under_way: Option<&ReenrollMark>,
    enrolled: bool,
    plan: ReenrollPlan,
) -> ReenrollAction {
    if let Some(mark) = under_way {
        return ReenrollAction::Continue(mark.clone());
    }
    let Some(value) = requested else {
        return ReenrollAction::None;
    };
    match (enrolled, plan) {
        (false, _) => ReenrollAction::RecordAfterEnrollment(value.to_owned()),
        (true, ReenrollPlan::Unsupported) => ReenrollAction::Refuse(value.to_owned()),
        (true, _) => ReenrollAction::Begin(value.to_owned()),
    }
}

/// Whether a re-enrollment's enroll flow already finished (pure): the
/// runtime Secret holds the seed its checkpoint carries (a crash came
/// between writing the runtime Secret and removing the checkpoint).
pub fn enroll_flow_finished(checkpoint_seed: Option<&str>, runtime_seed: Option<&str>) -> bool {
    matches!((checkpoint_seed, runtime_seed), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_value_is_pending_until_handled_once() {
        let cases = [
            (None, [None, None], None),
            (Some(""), [None, None], None),
            (Some("  "), [None, None], None),
            (Some("r1"), [None, None], Some("r1")),
            (Some("r1"), [Some("r1"), None], None),
            (Some("r1"), [None, Some("r1")], None),
            (Some("r2"), [Some("r1"), Some("r1")], Some("r2")),
            (Some(" r2 "), [Some("r1"), None], Some("r2")),
        ];
        for (annotation, handled, want) in cases {
            assert_eq!(
                pending(annotation, &handled),
                want,
                "{annotation:?} {handled:?}"
            );
        }
    }

    #[test]
    fn the_plan_prefers_replacing_in_place_over_turning_mfa_off() {
        use ReenrollPlan::*;
        let cases = [
            (true, true, EnrollAgain),
            (true, false, EnrollAgain),
            (false, true, DisableThenEnroll),
            (false, false, Unsupported),
        ];
        for (replaces, disable, want) in cases {
            assert_eq!(reenroll_plan(replaces, disable), want);
        }
        assert_eq!(DisableThenEnroll.first_phase(), ReenrollPhase::Disable);
        assert_eq!(EnrollAgain.first_phase(), ReenrollPhase::Enroll);
    }

    #[test]
    fn a_reenrollment_under_way_is_finished_before_anything_else() {
        use ReenrollAction as A;
        use ReenrollPlan::*;
        let mark = ReenrollMark {
            request: "r1".into(),
            phase: ReenrollPhase::Disable,
        };
        let cases = [
            (None, None, true, EnrollAgain, A::None),
            (None, None, false, Unsupported, A::None),
            (
                Some("r2"),
                Some(&mark),
                true,
                EnrollAgain,
                A::Continue(mark.clone()),
            ),
            (
                None,
                Some(&mark),
                false,
                Unsupported,
                A::Continue(mark.clone()),
            ),
            (Some("r2"), None, true, EnrollAgain, A::Begin("r2".into())),
            (
                Some("r2"),
                None,
                true,
                DisableThenEnroll,
                A::Begin("r2".into()),
            ),
            (Some("r2"), None, true, Unsupported, A::Refuse("r2".into())),
            (
                Some("r2"),
                None,
                false,
                EnrollAgain,
                A::RecordAfterEnrollment("r2".into()),
            ),
        ];
        for (requested, under_way, enrolled, plan, want) in cases {
            assert_eq!(
                reenroll_action(requested, under_way, enrolled, plan),
                want,
                "{requested:?} {under_way:?} enrolled={enrolled} {plan:?}"
            );
        }
    }

    #[test]
    fn the_enroll_flow_counts_as_finished_only_when_the_runtime_holds_its_seed() {
        let cases = [
            (None, None, false),
            (Some("NEW"), None, false),
            (None, Some("OLD"), false),
            (Some("NEW"), Some("OLD"), false),
            (Some("NEW"), Some("NEW"), true),
        ];
        for (checkpoint, runtime, want) in cases {
            assert_eq!(enroll_flow_finished(checkpoint, runtime), want);
        }
    }
}
