//! The server's modules import each other without a circle: read every source file, collect
//! the `crate::…` (and, inside a folder, `super::…`) paths it names, and check that the graph
//! of top-level modules, and of the files within each folder, is acyclic. `clock` is at the
//! bottom (it imports no module of the crate), and `state` imports no feature that serves
//! HTTP through it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, as paths relative to `src/`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(src()).unwrap().to_owned());
        }
    }
}

/// The code of a file without comments (doc comments name paths that are not imports).
fn code(path: &Path) -> String {
    std::fs::read_to_string(src().join(path))
        .unwrap()
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers that follow `prefix` in `text` (`crate::ops::log` with prefix `crate::`
/// gives `ops`).
fn names_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .filter(|(at, _)| {
            // `crate::` inside a longer name (`mycrate::`) is not the crate.
            !text[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// The top-level module a file belongs to (`ops/log.rs` → `ops`, `clock.rs` → `clock`).
fn top(path: &Path) -> String {
    let first = path
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

fn top_level_graph() -> Graph {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top(f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let from = top(file);
        if from == "main" {
            continue; // the crate root declares every module
        }
        let edges = graph.entry(from.clone()).or_default();
        for name in names_after(&code(file), "crate::") {
            if name != from && modules.contains(name) {
                edges.insert(name.to_owned());
            }
        }
    }
    graph
}

/// For each folder, the graph of its files (without `mod.rs`, the folder's face, which
/// declares and re-exports its files).
fn folder_graphs() -> BTreeMap<String, Graph> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut folders: BTreeMap<String, Graph> = BTreeMap::new();
    for file in files.iter().filter(|f| f.components().count() == 2) {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        if stem == "mod" {
            continue;
        }
        folders
            .entry(top(file))
            .or_default()
            .insert(stem, BTreeSet::new());
    }
    for (folder, graph) in &mut folders {
        let siblings: BTreeSet<String> = graph.keys().cloned().collect();
        for stem in &siblings {
            let text = code(&Path::new(folder).join(format!("{stem}.rs")));
            let own = format!("crate::{folder}::");
            let named = names_after(&text, "super::")
                .into_iter()
                .chain(names_after(&text, &own));
            for name in named {
                if name != stem && siblings.contains(name) {
                    graph.get_mut(stem).unwrap().insert(name.to_owned());
                }
            }
        }
    }
    folders
}

/// A circle of the graph, if it has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_top_level_modules_import_each_other_without_a_circle() {
    let graph = top_level_graph();
    for expected in [
        "clock",
        "config",
        "ops",
        "signaling",
        "state",
        "records",
        "ice",
    ] {
        assert!(
            graph.contains_key(expected),
            "no module {expected}: {graph:?}"
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import circle: {}\n{graph:#?}", cycle.join(" -> "));
    }
}

#[test]
fn clock_and_state_are_at_the_bottom() {
    let graph = top_level_graph();
    assert!(
        graph["clock"].is_empty(),
        "clock imports {:?}",
        graph["clock"]
    );
    for feature in ["records", "ice", "http", "commands"] {
        assert!(
            !graph["state"].contains(feature),
            "state imports {feature}: {:?}",
            graph["state"]
        );
    }
}

#[test]
fn the_files_of_each_folder_import_each_other_without_a_circle() {
    let folders = folder_graphs();
    assert!(folders["signaling"].contains_key("hub"), "{folders:?}");
    for (folder, graph) in &folders {
        if let Some(cycle) = find_cycle(graph) {
            panic!("import circle in {folder}/: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn a_circle_is_found() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    let cycle = find_cycle(&graph).expect("a -> b -> c -> a");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    let line: Graph = [("a", "b"), ("b", "c")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    assert_eq!(find_cycle(&line), None);
    assert_eq!(
        names_after("use crate::ops::log; mycrate::ice", "crate::"),
        vec!["ops"]
    );
}
