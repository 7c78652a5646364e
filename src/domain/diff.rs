//! Draft-versus-release comparison, in draft order with deleted keys last.

use std::collections::{HashMap, HashSet};

/// How a key differs between the draft and the live release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Unchanged,
    Added,
    Changed,
    Deleted,
}

impl State {
    /// Lower-case name used in pages and CSS classes.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unchanged => "unchanged",
            State::Added => "added",
            State::Changed => "changed",
            State::Deleted => "deleted",
        }
    }
}

/// One compared key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub key: String,
    pub state: State,
    pub draft: Option<String>,
    pub live: Option<String>,
}

/// Compares draft pairs with live pairs (linear: namespaces hold thousands of keys and pages
/// diff several releases).
pub fn diff(draft: &[(String, String)], live: &[(String, String)]) -> Vec<Line> {
    let mut live_by_key: HashMap<&str, &str> = HashMap::with_capacity(live.len());
    for (k, v) in live {
        // The first occurrence wins, as a search from the front would find.
        live_by_key.entry(k.as_str()).or_insert(v.as_str());
    }
    let draft_keys: HashSet<&str> = draft.iter().map(|(k, _)| k.as_str()).collect();
    let mut out: Vec<Line> = draft
        .iter()
        .map(|(k, v)| {
            let old = live_by_key.get(k.as_str()).map(|lv| lv.to_string());
            let state = match &old {
                None => State::Added,
                Some(o) if o == v => State::Unchanged,
                Some(_) => State::Changed,
            };
            Line { key: k.clone(), state, draft: Some(v.clone()), live: old }
        })
        .collect();
    for (k, v) in live {
        if !draft_keys.contains(k.as_str()) {
            out.push(Line { key: k.clone(), state: State::Deleted, draft: None, live: Some(v.clone()) });
        }
    }
    out
}

/// Number of keys that differ.
pub fn changes(lines: &[Line]) -> usize {
    lines.iter().filter(|l| l.state != State::Unchanged).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn marks_added_changed_deleted_and_unchanged_keys() {
        let lines = diff(&[p("a", "1"), p("b", "2"), p("c", "3")], &[p("a", "1"), p("b", "9"), p("d", "4")]);
        let states: Vec<_> = lines.iter().map(|l| (l.key.as_str(), l.state)).collect();
        assert_eq!(
            states,
            vec![("a", State::Unchanged), ("b", State::Changed), ("c", State::Added), ("d", State::Deleted)]
        );
        assert_eq!(changes(&lines), 3);
    }
}
