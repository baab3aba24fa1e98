//! `kubectl otpilot profile check` and `profile try`.

mod locate;
mod outcome;
mod report;
mod source;
mod state;
mod try_flow;

use std::path::PathBuf;

pub use try_flow::run as try_flow;

/// Checks each file; prints `file: ok` or one line per problem. `Ok(false)`
/// when any file has a problem.
pub fn check(files: &[PathBuf]) -> bool {
    let mut all_good = true;
    for file in files {
        match source::load_file(file) {
            Ok(profile) => {
                let flows: Vec<&str> = otpilot_profile::FlowKind::ALL
                    .into_iter()
                    .filter(|f| profile.has_flow(*f))
                    .map(|f| f.as_str())
                    .collect();
                println!("{}: ok (flows: {})", file.display(), flows.join(", "));
            }
            Err(problems) => {
                all_good = false;
                for line in problems.0 {
                    println!("{line}");
                }
            }
        }
    }
    all_good
}
