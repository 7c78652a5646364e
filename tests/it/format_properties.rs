//! Property tests of content validation over generated documents: whatever the nesting, anchors,
//! aliases or garbage, validation answers (on a small stack, quickly) and never crashes; shallow
//! valid documents are still accepted.

use std::time::{Duration, Instant};

use cairn::domain::Format;
use proptest::prelude::*;

/// Stack of the thread the properties run on: far less than a blocking worker's 2 MiB, so any
/// recursion per nesting level shows up as a crash here first.
const STACK: usize = 512 * 1024;
/// Generous for a debug build; an expanding or quadratic validator takes far longer.
const TIME: Duration = Duration::from_secs(2);

fn timed(format: Format, doc: &str) -> bool {
    let started = Instant::now();
    let ok = format.validate(doc).is_ok();
    assert!(started.elapsed() < TIME, "{format:?} took {:?} on {} bytes", started.elapsed(), doc.len());
    ok
}

/// Runs a proptest block on a thread with a small stack.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let t = std::thread::Builder::new().stack_size(STACK).spawn(f).unwrap();
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() }
}

/// A generated data tree, rendered into every format.
#[derive(Debug, Clone)]
enum Tree {
    Scalar(String),
    List(Vec<Tree>),
    Map(Vec<Tree>),
}

fn tree(depth: u32) -> impl Strategy<Value = Tree> {
    let leaf = "[a-zA-Z0-9 _.:#&*!|>'\"-]{0,12}".prop_map(Tree::Scalar);
    leaf.prop_recursive(depth, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Tree::List),
            prop::collection::vec(inner, 0..5).prop_map(Tree::Map),
        ]
    })
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn json(t: &Tree) -> String {
    match t {
        Tree::Scalar(s) => quoted(s),
        Tree::List(v) => format!("[{}]", v.iter().map(json).collect::<Vec<_>>().join(",")),
        Tree::Map(v) => {
            format!(
                "{{{}}}",
                v.iter().enumerate().map(|(i, c)| format!("\"k{i}\":{}", json(c))).collect::<Vec<_>>().join(",")
            )
        }
    }
}

/// Block-style YAML: every collection on its own lines, two spaces deeper than its parent.
fn yaml(t: &Tree, indent: usize) -> String {
    let pad = "  ".repeat(indent);
    match t {
        Tree::Scalar(s) => format!(" {}", quoted(s)),
        Tree::List(v) if v.is_empty() => " []".into(),
        Tree::Map(v) if v.is_empty() => " {}".into(),
        Tree::List(v) => v.iter().map(|c| format!("\n{pad}-{}", yaml(c, indent + 1))).collect(),
        Tree::Map(v) => v.iter().enumerate().map(|(i, c)| format!("\n{pad}k{i}:{}", yaml(c, indent + 1))).collect(),
    }
}

fn xml(t: &Tree) -> String {
    match t {
        Tree::Scalar(s) => s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
        Tree::List(v) | Tree::Map(v) => v.iter().map(|c| format!("<e a=\"1\">{}</e>", xml(c))).collect(),
    }
}

/// Nodes a client builds for the "billion laughs" family: level 1 is a list of `width`
/// scalars, level i a list of `width` aliases of level i-1. Returns the nodes aliases add.
fn laughs(levels: u32, width: usize) -> (String, u64) {
    let mut doc = format!("l1: &l1 [{}]\n", vec!["lol"; width].join(","));
    let (mut size, mut added) = (1 + width as u64, 0u64);
    for i in 2..=levels {
        doc.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); width].join(",")));
        added = added.saturating_add(width as u64 * size);
        size = 1 + (width as u64).saturating_mul(size);
    }
    (doc, added)
}

#[test]
fn shallow_valid_documents_are_accepted_in_every_format() {
    on_small_stack(|| {
        proptest!(config(), |(t in tree(8))| {
            prop_assert!(timed(Format::Json, &json(&t)), "json {}", json(&t));
            let y = yaml(&t, 0);
            prop_assert!(timed(Format::Yaml, &y), "yaml {y}");
            prop_assert!(timed(Format::Yml, &json(&t)), "json is yaml too");
            let x = format!("<root>{}</root>", xml(&t));
            prop_assert!(timed(Format::Xml, &x), "xml {x}");
        });
    });
}

#[test]
fn nesting_is_accepted_up_to_64_levels_and_refused_beyond_at_any_depth() {
    on_small_stack(|| {
        let depth = prop_oneof![0usize..80, 80usize..30_000];
        proptest!(config(), |(n in depth, style in 0usize..6)| {
            let (format, doc) = match style {
                0 => (Format::Yaml, format!("{}x", "- ".repeat(n))),
                1 => (Format::Yaml, format!("{}{}", "[".repeat(n), "]".repeat(n))),
                // Indentation grows quadratically: 3,000 levels are 4.5 MB already.
                2 => {
                    let n = n.min(3000);
                    (Format::Yaml, (0..n).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>() + &" ".repeat(n) + "v")
                }
                3 => (Format::Json, format!("{}1{}", "[".repeat(n), "]".repeat(n))),
                4 => (Format::Json, format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
                // An XML document needs a root element: nesting 0 is written as 1.
                _ => (Format::Xml, format!("{}{}", "<a>".repeat(n.max(1)), "</a>".repeat(n.max(1)))),
            };
            prop_assert_eq!(timed(format, &doc), n <= 64, "{:?} nested {}", format, n);
        });
    });
}

#[test]
fn yaml_aliases_are_accepted_until_their_expansion_exceeds_the_budget() {
    on_small_stack(|| {
        proptest!(config(), |(levels in 1u32..14, width in 1usize..14)| {
            let (doc, added) = laughs(levels, width);
            prop_assert_eq!(timed(Format::Yaml, &doc), added <= 100_000, "{} levels of {}: {} alias nodes", levels, width, added);
        });
    });
}

#[test]
fn garbage_never_crashes_a_validator() {
    on_small_stack(|| {
        let yaml_chars = "[-\\[\\]{}:,&*!|>?#%@`'\" \n\ta-c0-9<]{0,400}";
        let xml_chars = "[<>/!?=\"'&;\\[\\] \na-cDOCTYPENTIY]{0,400}";
        let json_chars = "[\\[\\]{}:,\"\\\\ \n0-9eE+.a-u-]{0,400}";
        proptest!(config(), |(y in yaml_chars, x in xml_chars, j in json_chars, bytes in prop::collection::vec(any::<u8>(), 0..300))| {
            timed(Format::Yaml, &y);
            timed(Format::Xml, &x);
            timed(Format::Json, &j);
            let lossy = String::from_utf8_lossy(&bytes);
            for f in Format::ALL {
                timed(f, &lossy);
            }
        });
    });
}
