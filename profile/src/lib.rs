//! otpilot profile engine.
