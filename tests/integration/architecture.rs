//! The module map holds: `src/lib.rs`'s table lists exactly the top-level modules of the tree, in
//! layers, and each module uses only the modules below it (so there is no import cycle); the proxy
//! holds no binding decision and writes no record; the binding layer uses no HTTP type.
//!
//! A module "uses" another when a line of its code (comments aside) names `crate::<module>`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

/// Every `.rs` file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path, text));
        }
    }
    out
}

/// The code lines of a file: comments and doc comments left out.
fn code(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter(|(_, line)| !line.trim_start().starts_with("//")).map(|(i, l)| (i + 1, l))
}

/// The modules of `lib.rs`'s table, top to bottom.
fn layers() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|line| line.strip_prefix("//! | [`"))
        .filter_map(|rest| rest.split_once("`]").map(|(name, _)| name.to_owned()))
        .collect()
}

/// The top-level module a file under `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

#[test]
fn the_module_table_matches_the_tree() {
    let tree: BTreeSet<String> =
        std::fs::read_dir(src()).unwrap().filter_map(|entry| module_of(&entry.unwrap().path())).collect();
    let table: BTreeSet<String> = layers().into_iter().collect();
    assert_eq!(table, tree, "lib.rs's table and the modules under src/");
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: BTreeSet<String> =
        lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|l| l.trim_end_matches(';').to_owned()).collect();
    assert_eq!(declared, tree, "lib.rs's `pub mod` lines");
}

#[test]
fn each_module_uses_only_the_layers_below_it() {
    let layers = layers();
    let rank = |name: &str| layers.iter().position(|l| l == name);
    let mut upward = Vec::new();
    for (path, text) in files(&src()) {
        let Some(module) = module_of(&path) else { continue };
        let own = rank(&module).unwrap_or_else(|| panic!("{module} is not in lib.rs's table"));
        for (number, line) in code(&text) {
            for (at, _) in line.match_indices("crate::") {
                let used: String =
                    line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if used == module || used.is_empty() {
                    continue;
                }
                match rank(&used) {
                    Some(other) if other > own => {}
                    _ => upward.push(format!("{}:{number}: {module} uses {used}", path.display())),
                }
            }
        }
    }
    assert!(upward.is_empty(), "uses of a module at the same layer or above:\n{}", upward.join("\n"));
}

#[test]
fn the_proxy_decides_nothing_and_writes_no_record() {
    const DECIDING_OR_WRITING: [&str; 13] = [
        "decide(",
        "bind_on_response",
        "create_session(",
        "put_session(",
        "end_session(",
        "update_session_metadata(",
        "create_refresh_token(",
        "put_refresh_token(",
        "rotate_refresh_token(",
        "end_refresh_token(",
        "update_refresh_token_metadata(",
        ".sweep_refresh_tokens(",
        ".sweep_tombstones(",
    ];
    let mut found = Vec::new();
    for (path, text) in files(&src().join("proxy")) {
        // The demo upstream is a stand-in login service with a store of its own, not helloguard's.
        if path.ends_with("demo.rs") {
            continue;
        }
        for (number, line) in code(&text) {
            for needle in DECIDING_OR_WRITING.iter().filter(|n| line.contains(**n)) {
                found.push(format!("{}:{number}: {needle}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "decisions or record writes in the proxy:\n{}", found.join("\n"));
}

#[test]
fn the_binding_layer_uses_no_http_type() {
    const HTTP: [&str; 6] = ["hyper", "http::", "crate::http", "HeaderMap", "HeaderValue", "StatusCode"];
    let mut found = Vec::new();
    for (path, text) in files(&src().join("binding")) {
        for (number, line) in code(&text) {
            for needle in HTTP.iter().filter(|n| line.contains(**n)) {
                found.push(format!("{}:{number}: {needle}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "HTTP in the binding layer:\n{}", found.join("\n"));
}
