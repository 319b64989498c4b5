//! The layering check: reads the layer table in `lib.rs`'s documentation and every
//! `crate::…` path in `src/`, and fails on a module that reaches a module of its own or a
//! higher layer (an edge that could close a cycle), or on a module missing from the table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module → layer, from the `//! | n | `a` `b` | … |` rows of `lib.rs`.
fn table(lib: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("//! |")) {
        let mut cells = line.split('|').map(str::trim);
        let Some(Ok(layer)) = cells.next().map(str::parse::<usize>) else {
            continue;
        };
        let modules = cells.next().unwrap_or_default();
        for m in modules.split('`').skip(1).step_by(2) {
            layers.insert(m.to_string(), layer);
        }
    }
    layers
}

/// The top-level modules `lib.rs` declares.
fn declared(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules named by `crate::x` and `crate::{x, y}` in a line of code.
fn targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

/// Items `lib.rs` re-exports at the crate root, by the module they come from.
fn root_item(name: &str) -> &str {
    match name {
        "Config" => "config",
        "start" | "RunningApp" => "app",
        other => other,
    }
}

#[test]
fn layering() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read lib.rs");
    let layers = table(&lib);
    for m in declared(&lib) {
        assert!(
            layers.contains_key(&m),
            "module `{m}` is missing from lib.rs's layer table"
        );
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let from = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(&from_layer) = layers.get(&from) else {
            continue; // lib.rs, main.rs and this check
        };
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for target in targets(line) {
                let to = root_item(&target);
                if to == from {
                    continue;
                }
                match layers.get(to) {
                    Some(&l) if l < from_layer => {}
                    Some(&l) => broken.push(format!(
                        "{}:{}: `{from}` (layer {from_layer}) uses `{to}` (layer {l})",
                        rel.display(),
                        n + 1
                    )),
                    None => broken.push(format!(
                        "{}:{}: `{from}` uses `{to}`, which is not in the table",
                        rel.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "edges against the layer table:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_sees_edges() {
    assert_eq!(
        targets("use crate::{hub::Hub, store::Store};"),
        ["hub", "store"]
    );
    assert_eq!(
        targets("x: crate::config::Config, y: crate::Config"),
        ["config", "Config"]
    );
    let t = table("//! | 0 | `ids` `error` | leaves |\n//! |---|---|---|\n//! | 3 | `hub` | x |");
    assert_eq!(t.get("error"), Some(&0));
    assert_eq!(t.get("hub"), Some(&3));
    assert_eq!(t.len(), 3);
}
