//! The module layering, checked the way rust-analyzer's tidy tests check theirs: by reading the
//! source as text. Two rules (ARCHITECTURE.md, "Architecture invariants"):
//!
//! - the top-level modules (those `src/lib.rs` declares) import each other without a cycle.
//!   Module `a` imports `b` when any file of `a` (`src/a.rs`, `src/a/**`, tests included)
//!   mentions `crate::b` — comments count too, like code: a doc link is a dependency of the
//!   reader;
//! - the grant engine (`src/grant.rs`, `src/grant/**`) mentions neither `hyper` nor `sqlx`, nor
//!   `crate::proxy` or `crate::server`.
//!
//! `cargo test --test architecture -- --nocapture` prints the graph (who imports whom, with
//! the first place each import is made).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A source file: its path relative to the crate root (`src/…`) and its text.
struct Source {
    path: String,
    text: String,
}

/// Where one module mentions another: `file:line` of every mention.
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let sources = read_sources();
    let modules = library_modules(&sources);
    let graph = import_graph(&sources, &modules);
    println!("{}", render(&graph));
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "the top-level modules import each other in a cycle; move the shared piece down \
         (see ARCHITECTURE.md, Architecture invariants):\n{}",
        describe_cycles(&graph, &cycles)
    );
}

#[test]
fn grant_engine_knows_no_http_sql_proxy_or_server() {
    const FORBIDDEN: [&str; 4] = ["hyper", "sqlx", "crate::proxy", "crate::server"];
    let mut found = Vec::new();
    for source in read_sources() {
        if top_level(&source.path).as_deref() != Some("grant") {
            continue;
        }
        for (number, line) in source.text.lines().enumerate() {
            for word in FORBIDDEN.iter().filter(|word| line.contains(**word)) {
                found.push(format!(
                    "{}:{}: mentions `{word}`: {}",
                    source.path,
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "grant/ must not know HTTP, SQL, the proxy or the server:\n{}",
        found.join("\n")
    );
}

/// The checker itself finds a cycle (so a green run means something).
#[test]
fn a_planted_cycle_is_reported() {
    let sources = vec![
        source("src/lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        source("src/a.rs", "use crate::b::Thing;\n"),
        source("src/b/inner.rs", "use crate::{c::Other, a};\n"),
        source("src/c.rs", "//! nothing of the crate\n"),
    ];
    let modules = library_modules(&sources);
    let graph = import_graph(&sources, &modules);
    let cycles = cycles(&graph);
    assert_eq!(cycles, vec![vec!["a".to_owned(), "b".to_owned()]]);
    let text = describe_cycles(&graph, &cycles);
    assert!(text.contains("a -> b -> a"), "{text}");
    assert!(text.contains("src/b/inner.rs:1"), "{text}");
}

fn source(path: &str, text: &str) -> Source {
    Source {
        path: path.to_owned(),
        text: text.to_owned(),
    }
}

fn read_sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect_rs_files(&root.join("src"), &mut files);
    let mut sources: Vec<Source> = files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
            let path = file
                .strip_prefix(root)
                .expect("a file under the crate root")
                .to_string_lossy()
                .replace('\\', "/");
            Source { path, text }
        })
        .collect();
    // `src/a.rs` before `src/a/…`: a module's own file names its first import.
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    sources
}

fn collect_rs_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_rs_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The library's top-level modules: the `mod` lines of `src/lib.rs` (the binary's own
/// modules, `main.rs` and `cli/`, are another crate).
fn library_modules(sources: &[Source]) -> BTreeSet<String> {
    let lib = sources
        .iter()
        .find(|s| s.path == "src/lib.rs")
        .expect("src/lib.rs");
    lib.text
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// `src/proxy/headers.rs` → `proxy`; `src/lib.rs` → `lib`.
fn top_level(path: &str) -> Option<String> {
    let rest = path.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    Some(first.strip_suffix(".rs").unwrap_or(first).to_owned())
}

fn import_graph(sources: &[Source], modules: &BTreeSet<String>) -> Graph {
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for source in sources {
        let Some(from) = top_level(&source.path).filter(|m| modules.contains(m)) else {
            continue;
        };
        for (number, line) in source.text.lines().enumerate() {
            for to in crate_mentions(line) {
                if to != from && modules.contains(&to) {
                    graph
                        .get_mut(&from)
                        .expect("every module is a node")
                        .entry(to)
                        .or_default()
                        .push(format!("{}:{}", source.path, number + 1));
                }
            }
        }
    }
    graph
}

/// The first path segment after every `crate::` on the line; `crate::{a::X, b}` names both.
fn crate_mentions(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        names.push(identifier(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else {
            names.push(identifier(rest));
        }
    }
    names.retain(|name| !name.is_empty());
    names
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Every cycle once, as its modules in order starting from the smallest name (a cycle
/// `a -> b -> a` is `[a, b]`). Small graph: for each edge `a -> b`, the shortest way back.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut found = BTreeSet::new();
    for (from, targets) in graph {
        for to in targets.keys() {
            if let Some(mut back) = shortest_path(graph, to, from) {
                back.pop(); // `from` again
                let mut cycle = vec![from.clone()];
                cycle.extend(back);
                let start = (0..cycle.len())
                    .min_by_key(|&i| &cycle[i])
                    .expect("a cycle has a module");
                cycle.rotate_left(start);
                found.insert(cycle);
            }
        }
    }
    found.into_iter().collect()
}

/// Breadth first: `start`, …, `goal`.
fn shortest_path(graph: &Graph, start: &str, goal: &str) -> Option<Vec<String>> {
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = BTreeSet::from([start]);
    while let Some(node) = queue.pop_front() {
        if node == goal {
            let mut path = vec![node.to_owned()];
            let mut at = node;
            while let Some(&before) = previous.get(at) {
                path.push(before.to_owned());
                at = before;
            }
            path.reverse();
            return Some(path);
        }
        for next in graph.get(node).into_iter().flat_map(|t| t.keys()) {
            if seen.insert(next) {
                previous.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

fn describe_cycles(graph: &Graph, cycles: &[Vec<String>]) -> String {
    let mut text = String::new();
    for cycle in cycles {
        let mut names = cycle.clone();
        names.push(cycle[0].clone());
        let _ = writeln!(text, "  {}", names.join(" -> "));
        for pair in names.windows(2) {
            let places = &graph[&pair[0]][&pair[1]];
            let _ = writeln!(
                text,
                "    {} -> {}: {}",
                pair[0],
                pair[1],
                places.join(", ")
            );
        }
    }
    text
}

fn render(graph: &Graph) -> String {
    let mut text = String::from("top-level module imports (a -> b: first mention):\n");
    for (from, targets) in graph {
        if targets.is_empty() {
            let _ = writeln!(text, "{from} (imports nothing of the crate)");
        }
        for (to, places) in targets {
            let _ = writeln!(text, "{from} -> {to}  ({})", places[0]);
        }
    }
    text
}
