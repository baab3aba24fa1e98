//! The seed check's decisions (pure, table-tested): when refusals say the
//! stored TOTP secret is wrong, and what to do about it.

use otpilot_profile::{FlowError, FlowErrorKind};

use super::requests::ReenrollPlan;

/// Refused codes from this many different time steps make a secret refused.
pub const FRESH_STEPS: u32 = 3;

/// What to do once the stored secret is refused (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryAction {
    /// Log in with one recovery code, then re-enroll.
    UseCodeThenReenroll,
    /// Log in with one recovery code; the profile cannot re-enroll, so a
    /// person must reset MFA at the vendor.
    UseCodeOnly,
    /// No recovery code is stored.
    NoCodes,
    /// The profile has no recoveryLogin flow.
    NoRecoveryFlow,
}

pub fn recovery_action(
    codes_left: usize,
    has_recovery_flow: bool,
    plan: ReenrollPlan,
) -> RecoveryAction {
    match (has_recovery_flow, codes_left, plan) {
        (false, _, _) => RecoveryAction::NoRecoveryFlow,
        (true, 0, _) => RecoveryAction::NoCodes,
        // Only an enroll flow that replaces the active secret can run
        // without a working code; a disable flow needs one (Conduit's sudo).
        (true, _, ReenrollPlan::EnrollAgain) => RecoveryAction::UseCodeThenReenroll,
        (true, _, _) => RecoveryAction::UseCodeOnly,
    }
}

/// Whether refusals say the secret is wrong (pure): enough fresh steps,
/// and codes computed on a known vendor clock (so not a clock problem).
pub fn secret_refused(rejections: u32, vendor_clock_known: bool) -> bool {
    rejections >= FRESH_STEPS && vendor_clock_known
}

/// A login refusal that speaks about the code.
pub fn code_refused(error: &FlowError) -> bool {
    matches!(
        error.kind,
        FlowErrorKind::CodeRejected { .. }
            | FlowErrorKind::CodeAlreadyUsed { .. }
            | FlowErrorKind::TotpHeaderRefused { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_refused_only_on_enough_fresh_steps_with_a_known_clock() {
        let cases = [
            (0, true, false),
            (FRESH_STEPS - 1, true, false),
            (FRESH_STEPS, false, false),
            (FRESH_STEPS, true, true),
        ];
        for (rejections, clock, want) in cases {
            assert_eq!(
                secret_refused(rejections, clock),
                want,
                "{rejections} {clock}"
            );
        }
    }

    #[test]
    fn one_recovery_code_then_re_enrollment_where_the_profile_can() {
        use RecoveryAction::*;
        use ReenrollPlan::*;
        let cases = [
            (5, true, EnrollAgain, UseCodeThenReenroll),
            (1, true, DisableThenEnroll, UseCodeOnly),
            (9, true, Unsupported, UseCodeOnly),
            (0, true, EnrollAgain, NoCodes),
            (0, false, Unsupported, NoRecoveryFlow),
            (3, false, EnrollAgain, NoRecoveryFlow),
        ];
        for (codes, flow, plan, want) in cases {
            assert_eq!(
                recovery_action(codes, flow, plan),
                want,
                "{codes} {flow} {plan:?}"
            );
        }
    }
}
