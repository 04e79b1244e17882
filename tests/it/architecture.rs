//! The rules of `docs/architecture.md` that the source itself can be checked against: the
//! top-level modules of `src/` form no import cycle, and each outside system has one owner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The code of a file without its comments and its test module (`#[cfg(test)] mod tests {`,
/// at the end of a file).
fn code(path: &Path) -> String {
    let text = fs_err::read_to_string(path).unwrap();
    let mut kept = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests {"))
        {
            break;
        }
        if !trimmed.starts_with("//") {
            kept.push(line);
        }
    }
    kept.join("\n")
}

/// The files of modules declared `#[cfg(test)] mod <name>;`: test code, not the module's.
fn test_only(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for file in files {
        let text = fs_err::read_to_string(file).unwrap();
        let dir = if file
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() != "#[cfg(test)]" {
                continue;
            }
            let Some(next) = lines.next() else { break };
            let declared = next
                .trim()
                .trim_start_matches("pub(crate) ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'));
            if let Some(name) = declared {
                found.push(dir.join(format!("{name}.rs")));
                found.push(dir.join(name).join("mod.rs"));
            }
        }
    }
    found
}

/// The top-level module a file of `src/` belongs to (`src/build/artifact.rs` → `build`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The top-level modules `code` names through `crate::` (`crate::a::b`, `crate::{a, b::c}`).
fn names(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.insert(name);
            }
        } else {
            found.insert(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    found.retain(|n| n.starts_with(|c: char| c.is_ascii_lowercase()));
    found
}

/// A cycle of the graph, if there is one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, done, path) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

#[test]
fn the_modules_of_src_form_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let files = sources(&src);
    let tests = test_only(&files);
    for file in files.iter().filter(|f| !tests.contains(f)) {
        let module = module_of(&src, file);
        if module == "main" || module == "lib" {
            continue;
        }
        let mut used = names(&code(file));
        used.remove(&module);
        edges.entry(module).or_default().extend(used);
    }
    assert!(
        edges.get("commands").is_some_and(|e| e.contains("execute"))
            && edges.get("engine").is_some_and(|e| e.contains("config")),
        "the check reads the imports (commands call execute, engine reads the environment): {edges:?}"
    );
    assert_eq!(
        cycle(&edges),
        None,
        "an import cycle between modules of src/"
    );
    for leaf in ["hint", "paths"] {
        assert!(
            edges.get(leaf).is_none_or(BTreeSet::is_empty),
            "`{leaf}` is a leaf: {:?}",
            edges.get(leaf)
        );
    }
    let users_of_error: Vec<&String> = edges
        .iter()
        .filter(|(_, used)| used.contains("error"))
        .map(|(module, _)| module)
        .collect();
    assert_eq!(
        users_of_error,
        Vec::<&String>::new(),
        "only main renders errors"
    );
    // `error` only renders: it knows no module's errors (each error knows its own hint and
    // exit status, read when it becomes a command's `failure::Failure`).
    assert_eq!(
        edges.get("error"),
        Some(&BTreeSet::from([
            "failure".to_string(),
            "output".to_string()
        ])),
        "`error` renders a Failure and nothing else"
    );
}

#[test]
fn each_outside_system_has_one_owner() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    for (crate_name, owner) in [
        ("bollard", "engine"),
        ("kube", "kubernetes"),
        ("k8s_openapi", "kubernetes"),
    ] {
        let users: BTreeSet<String> = sources(&src)
            .into_iter()
            .filter(|f| code(f).contains(&format!("{crate_name}::")))
            .map(|f| module_of(&src, &f))
            .collect();
        assert_eq!(
            users,
            BTreeSet::from([owner.to_string()]),
            "only `{owner}` uses {crate_name}"
        );
    }
    // skaffold is started from one place; the only other program op runs is `ssh`, for an
    // engine at ssh://, from the engine's tunnel.
    let process_users: BTreeSet<PathBuf> = sources(&src)
        .into_iter()
        .filter(|f| code(f).contains("tokio::process"))
        .map(|f| f.strip_prefix(&src).unwrap().to_path_buf())
        .collect();
    assert_eq!(
        process_users,
        BTreeSet::from([
            PathBuf::from("engine/ssh.rs"),
            PathBuf::from("skaffold/mod.rs")
        ]),
        "only `skaffold` starts skaffold, and only the engine's ssh tunnel starts ssh"
    );
    let oci_client_users: BTreeSet<PathBuf> = sources(&src)
        .into_iter()
        .chain(sources(&root.join("lifecycle/src")))
        .chain(sources(&root.join("oci/src")))
        .filter(|f| code(f).contains("oci_client::"))
        .map(|f| {
            f.strip_prefix(root)
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf()
        })
        .collect();
    assert_eq!(
        oci_client_users,
        BTreeSet::from([PathBuf::from("oci/src")]),
        "only the OCI crate uses oci-client"
    );
}

#[test]
fn the_cycle_check_finds_cycles() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        names("use crate::{build, hint::Hint};\nlet x = crate::engine::unique_name(\"a\");"),
        BTreeSet::from(["build".into(), "engine".into(), "hint".into()])
    );
}

/// op reads the CNB files through `cnb-data`, which op-lifecycle shares; it does not link the
/// lifecycle itself.
#[test]
fn op_depends_on_the_cnb_data_not_on_the_lifecycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table =
        toml::from_str(&fs_err::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        let names: Vec<&String> = manifest
            .get(table)
            .and_then(toml::Value::as_table)
            .map(|deps| deps.keys().collect())
            .unwrap_or_default();
        assert!(
            !names.iter().any(|n| *n == "op-lifecycle"),
            "op's [{table}] names op-lifecycle: {names:?}"
        );
        if table == "dependencies" {
            assert!(names.iter().any(|n| *n == "cnb-data"), "{names:?}");
        }
    }
    // (Written in two parts, so that this file does not name it.)
    let path = ["op_lifecycle", "::"].concat();
    let users: Vec<PathBuf> = sources(&root.join("src"))
        .into_iter()
        .chain(sources(&root.join("tests/it")))
        .filter(|f| code(f).contains(&path))
        .collect();
    assert_eq!(users, Vec::<PathBuf>::new(), "op's code names op_lifecycle");
}

/// One image reference type and one platform type, both op-oci's, made where input enters and
/// carried as values: no other definition, no string helpers that parse a reference again for
/// its host or repository, and `plan` (which makes the references) does not import `registry`.
#[test]
fn references_and_platforms_have_one_type() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<PathBuf> = sources(&root.join("src"))
        .into_iter()
        .chain(sources(&root.join("lifecycle/src")))
        .chain(sources(&root.join("cnb-data/src")))
        .collect();
    for (what, needle) in [
        ("a reference type", "struct Reference {"),
        ("a platform type", "struct Platform {"),
        ("a host-of-a-reference helper", "fn host_of("),
        ("a repository-of-a-reference helper", "fn repository_of("),
    ] {
        let defined: Vec<&PathBuf> = files.iter().filter(|f| code(f).contains(needle)).collect();
        assert_eq!(
            defined,
            Vec::<&PathBuf>::new(),
            "{what} outside op-oci (`{needle}`)"
        );
    }
    let oci = code(&root.join("oci/src/reference.rs"));
    assert!(oci.contains("pub struct Reference {"), "op-oci defines it");
    let plan: BTreeSet<String> = sources(&root.join("src/plan"))
        .iter()
        .filter(|f| !f.ends_with("tests.rs"))
        .flat_map(|f| names(&code(f)))
        .collect();
    assert!(
        !plan.contains("registry"),
        "`plan` imports `registry`: {plan:?}"
    );
}

/// Commands parse, call and print: the process's environment and directory are read once, by
/// `config` (`config::env::Invocation`), and every `OP_*` setting is resolved there.
#[test]
fn commands_do_not_read_the_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readers: Vec<PathBuf> = sources(&root.join("src/commands"))
        .into_iter()
        .chain(sources(&root.join("src/cli")))
        .filter(|f| {
            let code = code(f);
            code.contains("std::env") || code.contains("env.get(\"OP_") || code.contains("env.set(")
        })
        .collect();
    assert_eq!(
        readers,
        Vec::<PathBuf>::new(),
        "commands read the environment"
    );
}
