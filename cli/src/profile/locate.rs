//! The line of a field path (`login.steps[1].body.code`) in a YAML file,
//! so that a validation problem found after parsing can be reported as
//! `file:line`. Block-style YAML only (what profiles are written in); for
//! anything else the line of the deepest field found is given.

/// One segment of a field path.
#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(n) = rest[1..close].parse() {
                out.push(Segment::Index(n));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// A content line: its number (1-based), the indent of its content (after
/// any `- ` markers) and whether it starts a list item.
struct Line<'a> {
    number: usize,
    indent: usize,
    dash_indent: Option<usize>,
    text: &'a str,
}

fn lines(yaml: &str) -> Vec<Line<'_>> {
    yaml.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
                return None;
            }
            let indent = raw.len() - trimmed.len();
            let (dash_indent, text, indent) = match trimmed.strip_prefix("- ") {
                Some(rest) => {
                    let inner = rest.trim_start();
                    (Some(indent), inner, indent + 2 + (rest.len() - inner.len()))
                }
                None => (None, trimmed, indent),
            };
            Some(Line {
                number: i + 1,
                indent,
                dash_indent,
                text,
            })
        })
        .collect()
}

fn is_key(text: &str, key: &str) -> bool {
    [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .any(|k| {
            text.strip_prefix(k.as_str())
                .is_some_and(|r| r.starts_with(':'))
        })
}

/// Where the block under the last segment found ends: the first line at
/// or left of its parent. Under a key, a list may sit at the key's own
/// indent (`steps:` then `- name:`); under a list item, the next item ends it.
fn ends_block(line: &Line<'_>, parent: Parent) -> bool {
    match (parent, line.dash_indent) {
        (Parent::Top, _) => false,
        (Parent::Key(p), Some(dash)) => dash < p,
        (Parent::Key(p), None) => line.indent <= p,
        (Parent::Item(p), Some(dash)) => dash <= p,
        (Parent::Item(p), None) => line.indent <= p,
    }
}

#[derive(Clone, Copy)]
enum Parent {
    Top,
    Key(usize),
    Item(usize),
}

/// The 1-based line where `path` is, or of its deepest part found.
pub fn line_of(yaml: &str, path: &str) -> Option<usize> {
    let lines = lines(yaml);
    let mut from = 0;
    let mut parent = Parent::Top;
    let mut found = None;
    for segment in segments(path) {
        // A list item's first key shares the item's line.
        let scan = if matches!(parent, Parent::Item(_)) {
            from + 1
        } else {
            from
        };
        let end = lines
            .get(scan..)
            .and_then(|rest| rest.iter().position(|l| ends_block(l, parent)))
            .map_or(lines.len(), |i| scan + i);
        let block = lines.get(from..end).unwrap_or(&[]);
        let hit = match segment {
            Segment::Key(key) => {
                let level = block.iter().map(|l| l.indent).min();
                block
                    .iter()
                    .position(|l| Some(l.indent) == level && is_key(l.text, key))
                    .map(|i| (from + i, Parent::Key(block[i].indent)))
            }
            Segment::Index(n) => {
                let level = block.iter().filter_map(|l| l.dash_indent).min();
                block
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.dash_indent.is_some() && l.dash_indent == level)
                    .nth(n)
                    .map(|(i, l)| (from + i, Parent::Item(l.dash_indent.unwrap_or_default())))
            }
        };
        let Some((index, next_parent)) = hit else {
            break;
        };
        found = Some(lines[index].number);
        parent = next_parent;
        from = match next_parent {
            Parent::Item(_) => index,
            _ => index + 1,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# a profile
enroll:
  steps:
    - name: start
      method: POST
      path: /mfa
    - name: confirm
      method: POST
      body:
        code: \"{{ totp }}\"
login:
  steps:
  - method: POST
    path: /login
    responses:
      - status: 401
        fail: bad password
";

    #[test]
    fn paths_are_found_on_their_lines() {
        let cases = [
            ("enroll", Some(2)),
            ("enroll.steps", Some(3)),
            ("enroll.steps[0]", Some(4)),
            ("enroll.steps[1].method", Some(8)),
            ("enroll.steps[1].body.code", Some(10)),
            ("login.steps[0].method", Some(13)),
            ("login.steps[0].path", Some(14)),
            ("login.steps[0].responses[0].fail", Some(17)),
            // Not there: the deepest part found.
            ("login.steps[0].headers", Some(13)),
            ("enroll.steps[5]", Some(3)),
            ("refresh", None),
        ];
        for (path, want) in cases {
            assert_eq!(line_of(YAML, path), want, "{path}");
        }
    }

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            segments("a.b[2][0].c"),
            vec![
                Segment::Key("a"),
                Segment::Key("b"),
                Segment::Index(2),
                Segment::Index(0),
                Segment::Key("c")
            ]
        );
    }
}
