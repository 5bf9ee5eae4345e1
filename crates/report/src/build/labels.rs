//! Labels: what result codes mean, browser families, and label counts bounded to a number
//! of distinct labels (browsers, operating systems, client-event codes and descriptions).

use crate::model::{LabelCount, LabelCounts};
use std::collections::HashMap;

/// What the protocol's result codes mean (`docs/protocol.md`), in English: the `meaning` of
/// the JSON export. The rendered report takes the meanings of its language.
pub fn result_meaning(code: i64) -> &'static str {
    crate::fmt::result_meaning(code, crate::lang::Language::En.texts())
}

/// The family of a browser string: what comes before the version (`chrome58.0` → `chrome`,
/// `Firefox/120.0` → `Firefox`), so that versions do not split the counts.
pub(super) fn browser_family(b: &str) -> &str {
    let b = b.trim();
    let cut = b.find(|c: char| c.is_ascii_digit()).unwrap_or(b.len());
    label(b[..cut].trim_end_matches(|c: char| c.is_whitespace() || "/-_.".contains(c)))
}

/// The label of a browser or OS the client did not name (the renderers translate it).
pub(crate) const UNKNOWN_LABEL: &str = "(unknown)";

pub(super) fn label(s: &str) -> &str {
    let s = s.trim();
    if s.is_empty() {
        UNKNOWN_LABEL
    } else {
        truncate(s, 64)
    }
}

pub(super) fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Counts by label, keeping at most `cap` distinct labels.
#[derive(Debug)]
pub(super) struct Labels<L> {
    cap: usize,
    map: HashMap<L, u64>,
    other: u64,
}

impl<L: Eq + std::hash::Hash + Ord + Clone> Labels<L> {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            map: HashMap::new(),
            other: 0,
        }
    }

    pub(super) fn add(&mut self, l: L) {
        if let Some(c) = self.map.get_mut(&l) {
            *c += 1;
        } else if self.map.len() < self.cap {
            self.map.insert(l, 1);
        } else {
            self.other += 1;
        }
    }

    /// Most frequent first, ties by label.
    pub(super) fn into_sorted(self) -> (Vec<(L, u64)>, u64) {
        let mut v: Vec<_> = self.map.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (v, self.other)
    }
}

impl Labels<String> {
    pub(super) fn add_str(&mut self, l: &str) {
        // Look up by &str first, so a label already counted costs no allocation.
        if let Some(c) = self.map.get_mut(l) {
            *c += 1;
        } else {
            self.add(l.to_owned());
        }
    }

    pub(super) fn into_counts(self) -> LabelCounts {
        let (items, other) = self.into_sorted();
        LabelCounts {
            items: items
                .into_iter()
                .map(|(label, count)| LabelCount { label, count })
                .collect(),
            other,
        }
    }
}
