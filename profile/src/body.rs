//! Reading a vendor's answer with a cap: the body is streamed, and reading
//! stops at the cap, so a hostile or broken vendor cannot make the engine
//! (and the operator that shares its memory with every credential) hold an
//! unbounded body or its parsed JSON.

use reqwest::header::HeaderMap;
use serde_json::Value;

/// A response read whole, within the cap.
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: Option<Value>,
}

/// Why an answer could not be read.
pub(crate) enum ReadError {
    /// The transport failed while reading.
    Transport(reqwest::Error),
    /// The body is larger than the cap; the rest was not read.
    TooLarge {
        /// HTTP status of the answer.
        status: u16,
    },
}

/// The most values (array items, object members) a body may hold to be
/// parsed as JSON.
pub(crate) const MAX_JSON_VALUES: usize = 65_536;

/// An upper bound of the number of values in a JSON text (pure): its
/// separators and openings outside strings.
pub(crate) fn json_values(body: &[u8]) -> usize {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' | b',' | b':' => count += 1,
                _ => {}
            }
        }
    }
    count
}

/// Whether a body announced as `content_length` bytes, or holding `read`
/// bytes so far, is over `limit`.
pub(crate) fn over_limit(content_length: Option<u64>, read: u64, limit: u64) -> bool {
    content_length.is_some_and(|n| n > limit) || read > limit
}

/// Reads `r`'s body, at most `limit` bytes. An announced `Content-Length`
/// over the cap fails before any of the body is read; otherwise chunks are
/// read until the cap is passed. Dropping the response then closes the
/// connection, so the rest is never received.
pub(crate) async fn read_capped(
    mut r: reqwest::Response,
    limit: u64,
) -> Result<Response, ReadError> {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    if over_limit(r.content_length(), 0, limit) {
        return Err(ReadError::TooLarge { status });
    }
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(ReadError::Transport)? {
        if over_limit(None, (body.len() + chunk.len()) as u64, limit) {
            return Err(ReadError::TooLarge { status });
        }
        body.extend_from_slice(&chunk);
    }
    // serde_json refuses nesting deeper than 128 levels; a body of many
    // tiny values (`[0,0,0,…]` takes ~16 times its size parsed) is left
    // unparsed, so a parsed answer costs a few MiB at most.
    let json = (json_values(&body) <= MAX_JSON_VALUES)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten();
    Ok(Response {
        status,
        headers,
        body,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_announced_and_read_bytes() {
        let cases = [
            (None, 0, 10, false),
            (None, 10, 10, false),
            (None, 11, 10, true),
            (Some(10), 0, 10, false),
            (Some(11), 0, 10, true),
            (Some(5), 11, 10, true),
        ];
        for (announced, read, limit, want) in cases {
            assert_eq!(
                over_limit(announced, read, limit),
                want,
                "{announced:?} {read} {limit}"
            );
        }
    }

    #[test]
    fn json_values_are_counted_outside_strings() {
        let cases: &[(&str, usize)] = &[
            ("{}", 1),
            ("[0,0,0]", 3),
            (r#"{"a":"x,y:[{","b":[1,2]}"#, 6),
            (r#"["a\"[,"]"#, 1),
            ("not json", 0),
        ];
        for (body, want) in cases {
            assert_eq!(json_values(body.as_bytes()), *want, "{body}");
        }
    }

    #[test]
    fn deep_json_is_refused_by_the_parser() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(serde_json::from_str::<Value>(&deep).is_err());
    }
}
