//! The flows a profile may define.

use std::fmt;

/// One of a profile's flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowKind {
    /// `enroll`
    Enroll,
    /// `login`
    Login,
    /// `refresh`
    Refresh,
    /// `recoveryLogin`
    RecoveryLogin,
    /// `disable`
    Disable,
}

impl FlowKind {
    /// Every flow, in the order a profile lists them.
    pub const ALL: [FlowKind; 5] = [
        FlowKind::Enroll,
        FlowKind::Login,
        FlowKind::Refresh,
        FlowKind::RecoveryLogin,
        FlowKind::Disable,
    ];

    /// The flow's key in the profile.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Enroll => "enroll",
            FlowKind::Login => "login",
            FlowKind::Refresh => "refresh",
            FlowKind::RecoveryLogin => "recoveryLogin",
            FlowKind::Disable => "disable",
        }
    }
}

impl fmt::Display for FlowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
