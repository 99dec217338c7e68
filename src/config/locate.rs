//! Finding the line of a key in the YAML text, so that errors found after parsing (a value out
//! of range, a wrong type) can still name the line. Handles the block style MMRelay's configs
//! use (nested mappings and `- ` list items); returns `None` when it cannot tell.

/// One step of a key path: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Parses `a.b[2].c` into segments.
pub fn path(s: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in s.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// The key a line defines, if any (`key:` or `- key:`), with the column where it starts.
fn line_key(line: &str) -> Option<(usize, &str)> {
    let mut col = indent(line);
    let mut t = line.trim_start();
    if let Some(rest) = t.strip_prefix("- ") {
        col += 2 + (rest.len() - rest.trim_start().len());
        t = rest.trim_start();
    }
    let (k, _) = t.split_once(':')?;
    let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
    if k.is_empty() || k.contains(' ') && !k.starts_with('"') && k.contains(": ") {
        return None;
    }
    Some((col, k))
}

/// The 1-based line where the value at `path` is defined.
pub fn line_of(text: &str, path: &[Seg]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut start, mut end, mut min_col) = (0usize, lines.len(), 0usize);
    let mut found = None;
    for seg in path {
        match seg {
            Seg::Key(k) => {
                // The first line in range, at the shallowest column, that defines `k`.
                let mut shallowest = usize::MAX;
                for l in &lines[start..end] {
                    if is_content(l) {
                        if let Some((c, _)) = line_key(l) {
                            if c >= min_col {
                                shallowest = shallowest.min(c);
                            }
                        }
                    }
                }
                let i = (start..end).find(|&i| {
                    is_content(lines[i])
                        && matches!(line_key(lines[i]), Some((c, key)) if c == shallowest && key == k)
                })?;
                let col = line_key(lines[i]).map(|(c, _)| c)?;
                found = Some(i);
                // The block under it: following lines indented deeper than its key.
                let block_end = (i + 1..end)
                    .find(|&j| {
                        is_content(lines[j])
                            && indent(lines[j]) <= col
                            && !lines[j].trim_start().starts_with("- ")
                            || (is_content(lines[j]) && indent(lines[j]) < col)
                    })
                    .unwrap_or(end);
                start = i + 1;
                end = block_end;
                min_col = col + 1;
            }
            Seg::Index(n) => {
                let items: Vec<usize> = (start..end)
                    .filter(|&i| lines[i].trim_start().starts_with("- ") || lines[i].trim() == "-")
                    .collect();
                let first_col = items.first().map(|&i| indent(lines[i]))?;
                let items: Vec<usize> = items
                    .into_iter()
                    .filter(|&i| indent(lines[i]) == first_col)
                    .collect();
                let i = *items.get(*n)?;
                found = Some(i);
                let next = items.get(n + 1).copied().unwrap_or(end);
                // The item's own keys start on its `- ` line.
                start = i;
                end = next;
                min_col = first_col;
            }
        }
    }
    found.map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
matrix:
  homeserver: https://m.org
  # a comment
  e2ee:
    enabled: true
matrix_rooms:
  - id: \"!a:m.org\"
    meshtastic_channel: 0
  - id: \"#b:m.org\"
    meshtastic_channel: 9
meshtastic:
  connection_type: tcp
  message_delay: fast
logging:
  level: info
";

    #[test]
    fn finds_nested_keys_and_list_items() {
        let l = |p: &str| line_of(YAML, &path(p));
        assert_eq!(l("matrix.homeserver"), Some(2));
        assert_eq!(l("matrix.e2ee.enabled"), Some(5));
        assert_eq!(l("matrix_rooms[0].id"), Some(7));
        assert_eq!(l("matrix_rooms[1].meshtastic_channel"), Some(10));
        assert_eq!(l("matrix_rooms[1]"), Some(9));
        assert_eq!(l("meshtastic.message_delay"), Some(13));
        assert_eq!(l("logging.level"), Some(15));
        assert_eq!(l("meshtastic.nothing"), None);
        assert_eq!(l("matrix_rooms[5].id"), None);
    }
}
