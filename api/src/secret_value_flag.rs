//! The `--secret-value NAME=FILE` command-line form shared by the sidecar
//! and `kubectl otpilot profile try`: one vendor secret value (a profile's
//! `secretValues` entry) read from a file.

use std::path::PathBuf;

/// `NAME=FILE`, NAME a template value name (snake_case, as the
/// ApiCredential's `spec.secretValues` names are). The error names the
/// flag's text, which holds a name and a path, never a secret.
pub fn parse_secret_value_flag(text: &str) -> Result<(String, PathBuf), String> {
    let (name, file) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=FILE"))?;
    let mut chars = name.chars();
    let identifier = matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !identifier {
        return Err(format!(
            "{name:?} is not a secret value name (lowercase letters, digits and '_', starting \
             with a letter)"
        ));
    }
    if file.is_empty() {
        return Err(format!("{name}= names no file"));
    }
    Ok((name.to_owned(), PathBuf::from(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_is_a_snake_case_name_equals_a_file() {
        assert_eq!(
            parse_secret_value_flag("client_secret=/var/run/otpilot/secret-values/client_secret"),
            Ok((
                "client_secret".to_owned(),
                PathBuf::from("/var/run/otpilot/secret-values/client_secret")
            ))
        );
        assert_eq!(
            parse_secret_value_flag("k2=a=b"),
            Ok(("k2".to_owned(), PathBuf::from("a=b")))
        );
        for bad in ["client_secret", "=/f", "Client=/f", "1x=/f", "a-b=/f", "x="] {
            assert!(parse_secret_value_flag(bad).is_err(), "{bad}");
        }
    }
}
