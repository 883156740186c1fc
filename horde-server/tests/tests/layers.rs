//! The shape of horde-server's source, checked: its modules depend on each other without a
//! circle (wire types → driver → ops → api and web → routes), and no HTTP handler changes
//! the server's own tables (users, sessions, identities, idempotency keys, rate limits) past the
//! command layer (`ops`): only ops call `Txn::record` and `Txn::memory`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a source file belongs to (`api/users.rs` → `api`); `None` for the
/// crate roots, which compose everything.
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The code of a file without comments (doc links name modules without depending on them)
/// and without its `#[cfg(test)]` module.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module → the modules it uses (`crate::name`).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(&src()) {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let code = code(&file);
        let used = graph.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            for name in used_names(&code[at + "crate::".len()..]) {
                // Items of the root (`crate::app`) are not modules here.
                if name != module && src_has_module(&name) {
                    used.insert(name);
                }
            }
        }
    }
    graph
}

/// The first names of what follows `crate::`: `x` in `x::y`, or each of `a, b` in `{a::c, b}`.
fn used_names(rest: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect();
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                names.push(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    names.into_iter().filter(|n| !n.is_empty()).collect()
}

fn src_has_module(name: &str) -> bool {
    src().join(format!("{name}.rs")).exists() || src().join(name).join("mod.rs").exists()
}

/// A circle through `start`, if any.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut path = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let here = path.last().cloned().unwrap_or_default();
        for next in graph.get(&here).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(graph, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_modules_depend_on_each_other_without_a_circle() {
    let graph = graph();
    assert!(
        graph.contains_key("driver") && graph.contains_key("api"),
        "{graph:?}"
    );
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|module| circle(&graph, module))
        .map(|path| path.join(" → "))
        .collect();
    assert!(
        circles.is_empty(),
        "module circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn handlers_change_state_only_through_ops() {
    let mut found = Vec::new();
    for file in sources(&src()) {
        let module = module_of(&file).unwrap_or_default();
        if module != "api" && module != "web" {
            continue;
        }
        for (number, line) in code(&file).lines().enumerate() {
            if ["Write::", "Recorded", ".record(", ".memory()"]
                .iter()
                .any(|bad| line.contains(bad))
            {
                found.push(format!(
                    "{}:{}: {}",
                    file.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "handlers that change state past crate::ops:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_see_a_circle_and_a_handler_that_writes() {
    // The checks themselves, on made-up input: a test that cannot fail is no test.
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert_eq!(circle(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(circle(&graph, "d"), None);
    assert_eq!(used_names("driver::Driver;"), ["driver"]);
    assert_eq!(
        used_names("{error::ApiError, store::{Write, Store}, wire};"),
        ["error", "store", "wire"]
    );
}
