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

    /// Checks that `content` parses in this format; errors name the line and column.
    pub fn validate(self, content: &str) -> Result<(), DomainError> {
        match self {
            Format::Json => serde_json::from_str::<serde::de::IgnoredAny>(content)
                .map(|_| ())
                .map_err(|e| invalid("json", e.line(), e.column(), e.to_string())),
            Format::Yaml | Format::Yml => yaml_rust2::YamlLoader::load_from_str(content).map(|_| ()).map_err(|e| {
                let m = e.marker();
                invalid("yaml", m.line(), m.col() + 1, e.info().to_string())
            }),
            Format::Xml => roxmltree::Document::parse(content).map(|_| ()).map_err(|e| {
                let p = e.pos();
                invalid("xml", p.row as usize, p.col as usize, e.to_string())
            }),
            Format::Properties | Format::Txt => Ok(()),
        }
    }
}

fn invalid(format: &'static str, line: usize, column: usize, message: String) -> DomainError {
    DomainError::InvalidContent { format, line, column, message }
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

    #[test]
    fn broken_json_and_xml_are_rejected() {
        assert!(matches!(Format::Json.validate("{\"a\":\n  1,}"), Err(DomainError::InvalidContent { line: 2, .. })));
        assert!(Format::Xml.validate("<a><b></a>").is_err());
        assert!(Format::Xml.validate("<a><b/></a>").is_ok());
        assert!(Format::Json.validate("{\"a\": [1, 2]}").is_ok());
        assert!(Format::Yaml.validate("a:\n  - 1\n").is_ok());
    }
}
