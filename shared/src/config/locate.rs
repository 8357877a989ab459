//! Finding where a key sits in the TOML text, so that errors found after
//! deserialisation (a value that parses but is not allowed) can name the
//! line and column the way parse errors do.
//!
//! The typed config stays free of spans (callers get plain `Vec<RungConfig>`,
//! not `Vec<Spanned<..>>`); the text is parsed a second time into toml's
//! spanned document model only when an error needs a position.

use std::fmt;
use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(&'static str),
    Index(usize),
}

/// A dotted key path such as `ladder.rungs[2].height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Seg>);

impl KeyPath {
    /// A path of table keys, e.g. `KeyPath::keys(&["ladder", "preset"])`.
    pub(crate) fn keys(keys: &[&'static str]) -> Self {
        Self(keys.iter().map(|k| Seg::Key(k)).collect())
    }

    /// This path extended by `seg`.
    pub(crate) fn with(&self, seg: Seg) -> Self {
        let mut v = self.0.clone();
        v.push(seg);
        Self(v)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Byte offset of `path` in `text`: the value of the deepest key on the path
/// that the text contains. A path the text lacks entirely (a default that a
/// flag changed) gives `None`.
pub(crate) fn locate(text: &str, path: &KeyPath) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let root: &DeTable<'_> = doc.get_ref();
    let mut current: Option<&toml::Spanned<DeValue<'_>>> = None;
    let mut found = None;
    for seg in &path.0 {
        let next = match (seg, current) {
            (Seg::Key(k), None) => root.get(*k),
            (Seg::Key(k), Some(v)) => v.get_ref().get(*k),
            (Seg::Index(i), Some(v)) => v.get_ref().get(*i),
            (Seg::Index(_), None) => None,
        };
        let Some(next) = next else { break };
        found = Some(next.span().start);
        current = Some(next);
    }
    found
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, path: &KeyPath) -> Option<(usize, usize)> {
        locate(text, path).map(|o| line_column(text, o))
    }

    const TEXT: &str = "\
[ladder]
preset = \"fast\"

[[ladder.rungs]]
name = \"source\"

[[ladder.rungs]]
name = \"720p\"
height = 721
";

    #[test]
    fn finds_values_in_arrays_of_tables() {
        let rungs = KeyPath::keys(&["ladder", "rungs"]);
        let height = rungs.with(Seg::Index(1)).with(Seg::Key("height"));
        assert_eq!(height.to_string(), "ladder.rungs[1].height");
        assert_eq!(at(TEXT, &height), Some((9, 10)));
        let preset = KeyPath::keys(&["ladder", "preset"]);
        assert_eq!(at(TEXT, &preset), Some((2, 10)));
    }

    #[test]
    fn missing_keys_fall_back_to_their_parent() {
        let rungs = KeyPath::keys(&["ladder", "rungs"]);
        let missing = rungs.with(Seg::Index(0)).with(Seg::Key("height"));
        let rung = at(TEXT, &rungs.with(Seg::Index(0)));
        assert_eq!(at(TEXT, &missing), rung);
        assert!(
            rung.is_some_and(|(line, _)| (4..=5).contains(&line)),
            "{rung:?}"
        );
        assert_eq!(at("", &rungs), None);
    }

    #[test]
    fn inline_arrays_locate_each_element() {
        let text = "[ladder]\nrungs = [{ name = \"source\" }, { name = \"x\", height = 0 }]\n";
        let path = KeyPath::keys(&["ladder", "rungs"])
            .with(Seg::Index(1))
            .with(Seg::Key("height"));
        assert_eq!(at(text, &path), Some((2, 54)));
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("a\nbé c", 6), (2, 4));
        assert_eq!(line_column("abc", 99), (1, 4));
    }
}
