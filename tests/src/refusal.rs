//! An API server's refusal messages, as releases word them. Kubernetes before 1.36 (the
//! compatibility phase runs 1.29, `scripts/compat.sh`) names a failed CEL rule's value by its
//! type (`Invalid value: "object": <message>`, `"string"`) where 1.36 prints the value itself or
//! nothing, and reports a status subresource's fields without their `status.` prefix. The
//! refusal and its words are the same; only these parts differ.

/// The first minor release whose messages have the current form (the main run's 1.36).
pub const CURRENT_FORM_SINCE_MINOR: u32 = 36;

/// The types an older server names in place of a failed CEL rule's value.
const VALUE_TYPES: [&str; 6] = ["object", "string", "array", "integer", "number", "boolean"];

/// Whether `message`, from a server of minor release `server_minor`, says what `expected` (in
/// the current form) says: always in the current form; on an older server, also in its form.
pub fn says(message: &str, expected: &str, server_minor: u32) -> bool {
    if message.contains(expected) {
        return true;
    }
    server_minor < CURRENT_FORM_SINCE_MINOR
        && older_forms(expected)
            .iter()
            .any(|form| message.contains(form.as_str()))
}

/// What a server before 1.36 says for `expected`.
fn older_forms(expected: &str) -> Vec<String> {
    let mut forms = Vec::new();
    if let Some(rest) = expected.strip_prefix("status.") {
        forms.push(rest.to_string());
    }
    if let Some((path, rest)) = expected.split_once(": Invalid value: ") {
        // The current form may start with the quoted value: drop it.
        let rule = match rest.strip_prefix('"').and_then(|r| r.split_once("\": ")) {
            Some((_, rule)) => rule,
            None => rest,
        };
        forms.extend(
            VALUE_TYPES
                .iter()
                .map(|t| format!("{path}: Invalid value: \"{t}\": {rule}")),
        );
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_servers_are_read_in_their_form_and_the_current_one_only_in_its_own() {
        let scalar = "spec.baseUrl: Invalid value: \"http://x\": baseUrl must be an https:// URL";
        let object = "spec: Invalid value: set exactly one of generate or importFrom";
        let status = "status.enrollment: Unsupported value: \"Broken\"";
        let cases = [
            // (server message, expected, server minor, says)
            (scalar, scalar, 36, true),
            (scalar, scalar, 29, true),
            (
                "spec.baseUrl: Invalid value: \"string\": baseUrl must be an https:// URL",
                scalar,
                29,
                true,
            ),
            (
                "spec.baseUrl: Invalid value: \"string\": baseUrl must be an https:// URL",
                scalar,
                36,
                false,
            ),
            (
                "spec: Invalid value: \"object\": set exactly one of generate or importFrom",
                object,
                29,
                true,
            ),
            (
                "spec: Invalid value: \"object\": set exactly one of generate or importFrom",
                object,
                36,
                false,
            ),
            // Another rule's message is never read as this one.
            (
                "spec: Invalid value: \"object\": duration must be longer than 0s",
                object,
                29,
                false,
            ),
            (
                "[enrollment: Unsupported value: \"Broken\": supported values: …]",
                status,
                29,
                true,
            ),
            (
                "[enrollment: Unsupported value: \"Broken\": supported values: …]",
                status,
                36,
                false,
            ),
        ];
        for (message, expected, minor, want) in cases {
            assert_eq!(
                says(message, expected, minor),
                want,
                "{message:?} says {expected:?} on 1.{minor}"
            );
        }
    }
}
