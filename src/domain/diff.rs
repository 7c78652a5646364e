//! Draft-versus-release comparison, in draft order with deleted keys last.

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

/// Compares draft pairs with live pairs.
pub fn diff(draft: &[(String, String)], live: &[(String, String)]) -> Vec<Line> {
    let mut out: Vec<Line> = draft
        .iter()
        .map(|(k, v)| {
            let old = live.iter().find(|(lk, _)| lk == k).map(|(_, lv)| lv.clone());
            let state = match &old {
                None => State::Added,
                Some(o) if o == v => State::Unchanged,
                Some(_) => State::Changed,
            };
            Line { key: k.clone(), state, draft: Some(v.clone()), live: old }
        })
        .collect();
    for (k, v) in live {
        if !draft.iter().any(|(dk, _)| dk == k) {
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
