//! Java `.properties` text: writing it for `/configfiles` and parsing it for text-mode edits.

/// Writes key/value pairs as Java `Properties.store` would, minus the date comment line.
pub fn write(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        escape_into(&mut out, k, true);
        out.push('=');
        escape_into(&mut out, v, false);
        out.push('\n');
    }
    out
}

fn escape_into(out: &mut String, s: &str, is_key: bool) {
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            c => out.push(c),
        }
    }
}

/// Parses `.properties` text into ordered pairs (later duplicates replace earlier values).
/// Supports `=`, `:` and whitespace separators, `#`/`!` comments, continuation lines and
/// the usual escapes including `\uXXXX`.
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut logical = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if logical.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!')) {
            continue;
        }
        logical.push_str(trimmed);
        if ends_with_odd_backslashes(&logical) {
            logical.pop();
            if lines.clone().next().is_some() {
                continue;
            }
        }
        let (k, v) = split_pair(&logical);
        let (k, v) = (unescape(&k), unescape(&v));
        match pairs.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => pairs.push((k, v)),
        }
        logical.clear();
    }
    pairs
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split_pair(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                key.push('\\');
                if let Some(n) = chars.next() {
                    key.push(n);
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|c| *c == '=' || *c == ':') {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    let rest: String = chars.collect();
    (key, rest.trim_start().to_string())
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn written_text_parses_back_to_the_same_pairs() {
        let pairs = vec![
            p("timeout", "100"),
            p("a key", " lead"),
            p("url", "http://x:1/#a=b"),
            p("multi", "l1\nl2"),
            p("ünï", "cödé"),
        ];
        let text = write(&pairs);
        assert!(text.starts_with("timeout=100\n"));
        assert_eq!(parse(&text), pairs);
    }

    #[test]
    fn parses_common_java_syntax() {
        let text = "# comment\n! other\na = 1\nb:2\nc 3\nd=long \\\n    value\ne=\\u0041\n\n";
        assert_eq!(parse(text), vec![p("a", "1"), p("b", "2"), p("c", "3"), p("d", "long value"), p("e", "A")]);
    }
}
