//! docs/ARCHITECTURE.md's dependency table against the Cargo.toml files: a crate that gains
//! or loses a vaekit dependency the document does not show fails here, as does a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The vaekit crates each workspace member names under `[dependencies]`, by package name.
fn from_manifests() -> BTreeMap<String, BTreeSet<String>> {
    let workspace: toml::Table = toml::from_str(
        &std::fs::read_to_string(root().join("Cargo.toml")).expect("workspace Cargo.toml"),
    )
    .expect("workspace Cargo.toml parses");
    let members = workspace["workspace"]["members"]
        .as_array()
        .expect("members");
    let mut graph = BTreeMap::new();
    for member in members {
        let dir = root().join(member.as_str().expect("member path"));
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).expect("member Cargo.toml");
        let manifest: toml::Table = toml::from_str(&text).expect("member Cargo.toml parses");
        let name = manifest["package"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let deps = manifest
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|d| {
                d.keys()
                    .filter(|k| k.starts_with("vaekit-"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        graph.insert(name, deps);
    }
    graph
}

/// The table between the `crate-graph` markers of docs/ARCHITECTURE.md.
fn from_document() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("document");
    let begin = text
        .find("<!-- crate-graph: begin -->")
        .expect("begin marker");
    let end = text.find("<!-- crate-graph: end -->").expect("end marker");
    let mut graph = BTreeMap::new();
    for line in text[begin..end].lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells[0] == "crate" {
            continue;
        }
        let deps = cells[1]
            .split(',')
            .map(|d| d.split_whitespace().next().unwrap_or(""))
            .filter(|d| d.starts_with("vaekit-"))
            .map(str::to_string)
            .collect();
        graph.insert(cells[0].to_string(), deps);
    }
    graph
}

#[test]
fn the_document_shows_every_crate_and_its_dependencies() {
    let (actual, documented) = (from_manifests(), from_document());
    let names = |g: &BTreeMap<String, BTreeSet<String>>| g.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&documented),
        names(&actual),
        "crates in the table vs the workspace"
    );
    for (name, deps) in &actual {
        assert_eq!(
            &documented[name], deps,
            "{name}: docs/ARCHITECTURE.md shows {:?}, its Cargo.toml has {deps:?}",
            documented[name]
        );
    }
}

#[test]
fn the_crate_graph_has_no_cycle() {
    let graph = from_manifests();
    // Depth-first search with colours: 1 = on the stack, 2 = done.
    fn visit(n: &str, g: &BTreeMap<String, BTreeSet<String>>, colour: &mut BTreeMap<String, u8>) {
        match colour.get(n) {
            Some(2) => return,
            Some(1) => panic!("a dependency cycle through {n}"),
            _ => {}
        }
        colour.insert(n.to_string(), 1);
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, colour);
        }
        colour.insert(n.to_string(), 2);
    }
    let mut colour = BTreeMap::new();
    for n in graph.keys() {
        visit(n, &graph, &mut colour);
    }
}
