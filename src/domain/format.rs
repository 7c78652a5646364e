//! Namespace formats and the validation of json / yaml / xml content on save.

use serde::{Deserialize, Serialize};

use super::DomainError;

/// The format of a namespace. Non-properties namespaces carry it as a name suffix
/// (`app.yaml`) and hold exactly one item, key `content`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Properties,
    Json,
    Yaml,
    Yml,
    Xml,
    Txt,
}

/// The single item key of a non-properties namespace.
pub const CONTENT_KEY: &str = "content";

impl Format {
    /// Every format, in the order the portal offers them.
    pub const ALL: [Format; 6] =
        [Format::Properties, Format::Json, Format::Yaml, Format::Yml, Format::Xml, Format::Txt];

    /// The lower-case name used on the wire (`properties`, `json`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Properties => "properties",
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Yml => "yml",
            Format::Xml => "xml",
            Format::Txt => "txt",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn parse(s: &str) -> Result<Format, DomainError> {
        Format::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            DomainError::field("format", format!("'{s}' is not one of properties, json, yaml, yml, xml, txt"))
        })
    }

    /// The format implied by a namespace name's suffix; no known suffix means properties.
    pub fn of_namespace(name: &str) -> Format {
        match name.rsplit_once('.') {
            Some((base, ext)) if !base.is_empty() => Format::ALL
                .into_iter()
                .find(|f| *f != Format::Properties && f.as_str().eq_ignore_ascii_case(ext))
                .unwrap_or(Format::Properties),
            _ => Format::Properties,
        }
    }

    /// True for every format except properties.
    pub fn is_file(self) -> bool {
        self != Format::Properties
    }

    /// The content type `/configfiles/raw` answers with for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json;charset=UTF-8",
            Format::Yaml | Format::Yml => "application/yaml;charset=UTF-8",
            Format::Xml => "application/xml;charset=UTF-8",
            Format::Properties | Format::Txt => "text/plain;charset=UTF-8",
        }
    }

    /// Checks that `content` parses in this format, within [`BUDGET`]; errors name the line
    /// and column (and the budget, when one was exceeded).
    pub fn validate(self, content: &str) -> Result<(), DomainError> {
        if !self.is_file() || self == Format::Txt {
            return Ok(());
        }
        if content.len() > BUDGET.max_bytes {
            return Err(DomainError::field(
                "content",
                format!(
                    "is {} bytes; a {} namespace may hold at most {} bytes; split it into several namespaces",
                    content.len(),
                    self.as_str(),
                    BUDGET.max_bytes
                ),
            ));
        }
        match self {
            Format::Json => validate_json(content),
            Format::Yaml | Format::Yml => validate_yaml(content),
            Format::Xml => validate_xml(content),
            Format::Properties | Format::Txt => Ok(()),
        }
    }
}

/// Limits every content validation runs under, so that no document, however hostile, can
/// exhaust the stack, memory or time of the process: depth is checked before anything deep is
/// built, and YAML aliases are counted, never expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Deepest nesting of arrays/objects, sequences/mappings or elements.
    pub max_depth: usize,
    /// Largest document, in bytes (the configured value limit usually refuses far less).
    pub max_bytes: usize,
    /// Most nodes (YAML nodes with aliases expanded, XML nodes) in one document.
    pub max_nodes: usize,
    /// Most nodes YAML aliases may add when a client expands them.
    pub max_alias_nodes: usize,
}

/// The budget of [`Format::validate`]. 64 levels is more than any configuration needs (Spring's
/// SnakeYAML itself stops at 50); 100,000 alias nodes lets anchors and merge keys (`<<: *base`)
/// be used freely while refusing a "billion laughs" document, which would also exhaust every
/// client that loads it.
pub const BUDGET: Budget =
    Budget { max_depth: 64, max_bytes: 16 * 1024 * 1024, max_nodes: 1_000_000, max_alias_nodes: 100_000 };

fn invalid(format: &'static str, line: usize, column: usize, message: String) -> DomainError {
    DomainError::InvalidContent { format, line, column, message }
}

fn too_deep(format: &'static str, line: usize, column: usize) -> DomainError {
    invalid(format, line, column, format!("nesting deeper than {} levels; flatten the document", BUDGET.max_depth))
}

/// serde_json stops at 128 levels on its own; this scan enforces the (lower) budget first so the
/// error names it and the place, then serde_json checks the syntax without building values.
fn validate_json(content: &str) -> Result<(), DomainError> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for c in content.chars() {
        column += 1;
        if c == '\n' {
            line += 1;
            column = 0;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth > BUDGET.max_depth {
                    return Err(too_deep("json", line, column));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    serde_json::from_str::<serde::de::IgnoredAny>(content)
        .map(|_| ())
        .map_err(|e| invalid("json", e.line(), e.column(), e.to_string()))
}

/// A YAML collection still open while its events stream past.
struct OpenNode {
    anchor: usize,
    /// Expanded node count when it opened.
    nodes_before: usize,
    depth: usize,
    /// Deepest level reached inside it so far (aliases expanded).
    deepest: usize,
}

/// Validates YAML from the parser's events, never building the document: the loader recurses
/// once per level (a deep document overflows the stack) and expands aliases (a small document
/// grows without bound). Each anchored node's expanded size and height are recorded when it
/// closes, so an alias costs what a client expanding it would pay, without expanding it here.
fn validate_yaml(content: &str) -> Result<(), DomainError> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(content);
    let mut open: Vec<OpenNode> = Vec::new();
    // anchor id -> (expanded nodes, height in levels)
    let mut anchored: std::collections::HashMap<usize, (usize, usize)> = std::collections::HashMap::new();
    let (mut nodes, mut alias_nodes) = (0usize, 0usize);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            let m = e.marker();
            invalid("yaml", m.line(), m.col() + 1, e.info().to_string())
        })?;
        let (line, column) = (mark.line(), mark.col() + 1);
        let level = open.len();
        match event {
            Event::StreamEnd => return Ok(()),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                nodes += 1;
                if level + 1 > BUDGET.max_depth {
                    return Err(too_deep("yaml", line, column));
                }
                open.push(OpenNode { anchor, nodes_before: nodes - 1, depth: level + 1, deepest: level + 1 });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(done) = open.pop() {
                    if done.anchor != 0 {
                        anchored.insert(done.anchor, (nodes - done.nodes_before, done.deepest + 1 - done.depth));
                    }
                    if let Some(parent) = open.last_mut() {
                        parent.deepest = parent.deepest.max(done.deepest);
                    }
                }
            }
            Event::Scalar(_, _, anchor, _) => {
                nodes += 1;
                if anchor != 0 {
                    anchored.insert(anchor, (1, 0));
                }
            }
            Event::Alias(anchor) => {
                let Some(&(size, height)) = anchored.get(&anchor) else {
                    return Err(invalid(
                        "yaml",
                        line,
                        column,
                        "an alias refers to a node that contains it; a client would expand it for ever".into(),
                    ));
                };
                nodes += size;
                alias_nodes += size;
                if alias_nodes > BUDGET.max_alias_nodes {
                    return Err(invalid(
                        "yaml",
                        line,
                        column,
                        format!(
                            "aliases expand to more than {} nodes; use fewer aliases of large anchors",
                            BUDGET.max_alias_nodes
                        ),
                    ));
                }
                if level + height > BUDGET.max_depth {
                    return Err(too_deep("yaml", line, column));
                }
                if let Some(parent) = open.last_mut() {
                    parent.deepest = parent.deepest.max(level + height);
                }
            }
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {}
        }
        if nodes > BUDGET.max_nodes {
            return Err(invalid(
                "yaml",
                line,
                column,
                format!("more than {} nodes; split the document", BUDGET.max_nodes),
            ));
        }
    }
}

/// roxmltree recurses once per open element (and a 2 MiB stack overflows a few thousand deep),
/// so the depth is measured first by [`xml_depth`]; roxmltree then checks the syntax with its
/// node count capped. DTDs (entity expansion) stay refused.
fn validate_xml(content: &str) -> Result<(), DomainError> {
    xml_depth(content)?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: u32::try_from(BUDGET.max_nodes).unwrap_or(u32::MAX),
    };
    roxmltree::Document::parse_with_options(content, options).map(|_| ()).map_err(|e| {
        let p = e.pos();
        let message = match e {
            roxmltree::Error::NodesLimitReached => format!("more than {} nodes; split the document", BUDGET.max_nodes),
            other => other.to_string(),
        };
        invalid("xml", p.row as usize, p.col as usize, message)
    })
}

/// Most attributes (namespace declarations included) on one XML element.
const MAX_XML_ATTRIBUTES: usize = 256;

/// One-based line and column of byte offset `at`.
fn line_column(content: &str, at: usize) -> (usize, usize) {
    let before = content.get(..at).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Refuses XML whose elements nest deeper than the budget or carry too many attributes,
/// scanning the way roxmltree's tokenizer descends: `<name` opens (until `/>` or the matching `</`), comments, CDATA and
/// processing instructions are skipped to their first terminator, and quoted attribute values
/// are skipped inside tags. Wherever the two could disagree the document is malformed and
/// roxmltree stops there, so the count never falls below the depth roxmltree reaches.
fn xml_depth(content: &str) -> Result<(), DomainError> {
    let bytes = content.as_bytes();
    let find = |from: usize, pattern: &[u8]| {
        bytes.get(from..).and_then(|rest| rest.windows(pattern.len()).position(|w| w == pattern)).map(|i| from + i)
    };
    let (mut depth, mut i) = (0usize, 0usize);
    while let Some(offset) = bytes.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'<')) {
        let at = i + offset;
        let rest = bytes.get(at..).unwrap_or_default();
        let skip_to = |end: &[u8]| find(at, end).map(|e| e + end.len());
        let next = if rest.starts_with(b"<!--") {
            skip_to(b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_to(b"?>")
        } else if rest.starts_with(b"<!") {
            Some(at + 2)
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            Some(at + 2)
        } else {
            depth += 1;
            if depth > BUDGET.max_depth {
                let (line, column) = line_column(content, at);
                return Err(too_deep("xml", line, column));
            }
            // Inside the start tag: up to its `>` (outside quotes); `/>` closes it at once.
            // Attributes are counted: the parser checks each against all before it, so a
            // start tag with 100,000 of them would cost minutes.
            let mut j = at + 1;
            let mut quote = None;
            let mut attributes = 0usize;
            loop {
                match (bytes.get(j), quote) {
                    (None, _) => break None,
                    (Some(&c), Some(q)) if c == q => quote = None,
                    (Some(_), Some(_)) => {}
                    (Some(&c), None) if c == b'"' || c == b'\'' => quote = Some(c),
                    (Some(b'='), None) => {
                        attributes += 1;
                        if attributes > MAX_XML_ATTRIBUTES {
                            let (line, column) = line_column(content, at);
                            return Err(invalid(
                                "xml",
                                line,
                                column,
                                format!("more than {MAX_XML_ATTRIBUTES} attributes on one element; use child elements"),
                            ));
                        }
                    }
                    (Some(b'>'), None) => {
                        if bytes.get(j.wrapping_sub(1)) == Some(&b'/') {
                            depth = depth.saturating_sub(1);
                        }
                        break Some(j + 1);
                    }
                    (Some(b'<'), None) => break Some(j),
                    (Some(_), None) => {}
                }
                j += 1;
            }
        };
        match next {
            Some(n) => i = n,
            None => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_name_suffix() {
        assert_eq!(Format::of_namespace("application"), Format::Properties);
        assert_eq!(Format::of_namespace("FX.apollo"), Format::Properties);
        assert_eq!(Format::of_namespace("app.yaml"), Format::Yaml);
        assert_eq!(Format::of_namespace("ds.JSON"), Format::Json);
    }

    #[test]
    fn broken_yaml_names_line_and_column() {
        let err = Format::Yaml.validate("a: 1\nb: [2\nc: 3\n").unwrap_err();
        match err {
            DomainError::InvalidContent { format, line, .. } => {
                assert_eq!(format, "yaml");
                assert!(line >= 2, "line {line}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn message(err: DomainError) -> (usize, String) {
        match err {
            DomainError::InvalidContent { line, message, .. } => (line, message),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The payload that overflowed the stack: a block sequence nested 5,000 deep.
    #[test]
    fn deep_yaml_is_refused_by_the_depth_budget_without_recursion() {
        let deep = format!("{}x", "- ".repeat(5000));
        let (line, msg) = message(Format::Yaml.validate(&deep).unwrap_err());
        assert_eq!(line, 1);
        assert!(msg.contains("nesting deeper than 64 levels"), "{msg}");
        let flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Format::Yml.validate(&flow).is_err());
        let ok = format!("{}x", "- ".repeat(60));
        assert!(Format::Yaml.validate(&ok).is_ok());
        let indented: String = (0..70).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect();
        let (line, msg) = message(Format::Yaml.validate(&format!("{indented}{}v: 1\n", "  ".repeat(70))).unwrap_err());
        assert!(msg.contains("64 levels") && line == 65, "{line} {msg}");
    }

    /// The 0.6 KB "billion laughs" document that grew the server to 12 GB.
    #[test]
    fn yaml_alias_bomb_is_refused_by_the_alias_budget() {
        let mut doc = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (prev, name) in
            ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            doc.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        assert!(doc.len() < 700);
        let started = std::time::Instant::now();
        let (line, msg) = message(Format::Yaml.validate(&doc).unwrap_err());
        assert!(msg.contains("aliases expand to more than 100000 nodes"), "{msg}");
        assert!(line <= 9, "line {line}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn yaml_anchors_and_merge_keys_within_budget_are_accepted() {
        let spring = "base: &base\n  timeout: 5\n  retries: 3\nfoo:\n  <<: *base\n  url: a\nbar:\n  <<: *base\n  url: b\nlist: [*base, *base]\n";
        assert!(Format::Yaml.validate(spring).is_ok());
        assert!(Format::Yaml.validate("a: 1\n---\nb: 2\n").is_ok(), "several documents");
    }

    #[test]
    fn an_alias_inside_its_own_anchor_is_refused() {
        let (_, msg) = message(Format::Yaml.validate("a: &a [1, *a]\n").unwrap_err());
        assert!(msg.contains("contains it"), "{msg}");
    }

    #[test]
    fn an_alias_that_would_nest_past_the_budget_is_refused() {
        let deep = format!("a: &a {}1{}\nb: {}*a{}\n", "[".repeat(40), "]".repeat(40), "[".repeat(40), "]".repeat(40));
        let (line, msg) = message(Format::Yaml.validate(&deep).unwrap_err());
        assert!(msg.contains("64 levels") && line == 2, "{line} {msg}");
    }

    #[test]
    fn json_and_xml_depth_are_bounded_and_named() {
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(Format::Json.validate(&ok).is_ok());
        let deep = format!("{{\"a\":\n{}{}}}", "[".repeat(65), "]".repeat(65));
        let (line, msg) = message(Format::Json.validate(&deep).unwrap_err());
        assert!(msg.contains("nesting deeper than 64 levels") && line == 2, "{line} {msg}");
        assert!(Format::Json.validate("[\"[[[[\\\"[[[[\"]").is_ok(), "brackets in strings do not count");
        let xml = format!("<r>\n{}{}</r>", "<a>".repeat(70), "</a>".repeat(70));
        let (line, msg) = message(Format::Xml.validate(&xml).unwrap_err());
        assert!(msg.contains("nesting deeper than 64 levels") && line == 2, "{line} {msg}");
        assert!(Format::Xml.validate(&format!("{}{}", "<a>".repeat(64), "</a>".repeat(64))).is_ok());
    }

    #[test]
    fn xml_depth_ignores_markup_in_comments_cdata_and_attribute_values() {
        let inner = "<x a=\"1>2\" b='/>'/><!-- <y><y><y> --><![CDATA[<z><z>]]><?pi <w> ?>";
        let doc = format!("{}{inner}{}", "<a>".repeat(63), "</a>".repeat(63));
        assert!(Format::Xml.validate(&doc).is_ok(), "63 levels plus one self-closed element");
        let siblings = format!("<r>{}</r>", "<a><b/></a>".repeat(1000));
        assert!(Format::Xml.validate(&siblings).is_ok(), "closing tags give levels back");
    }

    #[test]
    fn xml_dtds_stay_refused() {
        let laughs = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"lol\"><!ENTITY b \"&a;&a;\">]><l>&b;</l>";
        assert!(Format::Xml.validate(laughs).is_err());
    }

    #[test]
    fn documents_over_the_size_budget_are_refused_before_parsing() {
        let big = " ".repeat(BUDGET.max_bytes + 1);
        assert!(matches!(Format::Json.validate(&big), Err(DomainError::InvalidField { field: "content", .. })));
        assert!(Format::Txt.validate(&big).is_ok(), "txt is not parsed");
    }

    #[test]
    fn broken_json_and_xml_are_rejected() {
        assert!(matches!(Format::Json.validate("{\"a\":\n  1,}"), Err(DomainError::InvalidContent { line: 2, .. })));
        assert!(Format::Xml.validate("<a><b></a>").is_err());
        assert!(Format::Xml.validate("<a><b/></a>").is_ok());
        assert!(Format::Json.validate("{\"a\": [1, 2]}").is_ok());
        assert!(Format::Yaml.validate("a:\n  - 1\n").is_ok());
    }
}
