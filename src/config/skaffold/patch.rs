//! JSON patches (RFC 6902) on YAML values, as skaffold applies a profile's `patches`.
//!
//! Paths are JSON pointers (`/build/artifacts/0/docker/dockerfile`, `~1` for `/`, `~0` for `~`,
//! `-` for "append" in `add`). Like skaffold's yaml-patch library, a path segment `key=value`
//! selects every mapping below that point whose `key` is the string `value`, e.g.
//! `/build/artifacts/image=api/docker/target`. The operation defaults to `replace`.

use serde_yaml::{Mapping, Value};

/// Why a patch could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("has no `/` at the start of its path")]
    NotAPointer,
    #[error("names a path that does not exist in the configuration")]
    MissingPath,
    #[error("has an unknown operation (expected add, remove, replace, move, copy or test)")]
    UnknownOp,
    #[error("needs a `from` path for `{0}`")]
    MissingFrom(&'static str),
    #[error("needs a `value`")]
    MissingValue,
    #[error("failed its test: the value differs")]
    TestFailed,
}

/// Applies one patch operation to `doc`.
pub(crate) fn apply(
    doc: &mut Value,
    op: &str,
    path: &str,
    from: Option<&str>,
    value: Option<&Value>,
) -> Result<(), Error> {
    let targets = expand(doc, path)?;
    if targets.is_empty() {
        return Err(Error::MissingPath);
    }
    for target in targets {
        match op {
            "add" => add(doc, &target, value.ok_or(Error::MissingValue)?.clone())?,
            "remove" => {
                remove(doc, &target)?;
            }
            "replace" => {
                let slot = get_mut(doc, &target).ok_or(Error::MissingPath)?;
                *slot = value.ok_or(Error::MissingValue)?.clone();
            }
            "move" | "copy" => {
                let kind = if op == "move" { "move" } else { "copy" };
                let from = decode(from.ok_or(Error::MissingFrom(kind))?)?;
                let moved = if kind == "move" {
                    remove(doc, &from)?
                } else {
                    get(doc, &from).ok_or(Error::MissingPath)?.clone()
                };
                add(doc, &target, moved)?;
            }
            "test" => {
                if get(doc, &target) != Some(value.ok_or(Error::MissingValue)?) {
                    return Err(Error::TestFailed);
                }
            }
            _ => return Err(Error::UnknownOp),
        }
    }
    Ok(())
}

/// Splits a pointer into its decoded segments.
fn decode(path: &str) -> Result<Vec<String>, Error> {
    let rest = path.strip_prefix('/').ok_or(Error::NotAPointer)?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// The concrete pointers a path stands for: itself, or every match of its `key=value` segments.
fn expand(doc: &Value, path: &str) -> Result<Vec<Vec<String>>, Error> {
    let segments = decode(path)?;
    if !segments.iter().any(|s| s.split('=').count() == 2) {
        return Ok(vec![segments]);
    }
    // A route is a pointer and, while it still points into the document, the value it names.
    let mut routes: Vec<(Vec<String>, Option<&Value>)> = vec![(Vec::new(), Some(doc))];
    for segment in &segments {
        let mut next = Vec::new();
        match segment.split_once('=') {
            Some((key, wanted)) if !wanted.contains('=') => {
                for (prefix, node) in &routes {
                    if let Some(node) = node {
                        find_all(prefix, key, wanted, node, &mut next);
                    }
                }
            }
            _ => {
                for (mut prefix, node) in routes {
                    let child = node.and_then(|n| child(n, segment));
                    prefix.push(segment.clone());
                    next.push((prefix, child));
                }
            }
        }
        routes = next;
    }
    Ok(routes.into_iter().map(|(pointer, _)| pointer).collect())
}

/// Every mapping at or below `node` whose `key` is the string `wanted`.
fn find_all<'a>(
    prefix: &[String],
    key: &str,
    wanted: &str,
    node: &'a Value,
    out: &mut Vec<(Vec<String>, Option<&'a Value>)>,
) {
    match node {
        Value::Mapping(map) => {
            if map.get(key).and_then(Value::as_str) == Some(wanted) {
                out.push((prefix.to_vec(), Some(node)));
                return;
            }
            for (k, v) in map {
                if let Some(k) = k.as_str() {
                    let mut path = prefix.to_vec();
                    path.push(k.to_string());
                    find_all(&path, key, wanted, v, out);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut path = prefix.to_vec();
                path.push(i.to_string());
                find_all(&path, key, wanted, v, out);
            }
        }
        _ => {}
    }
}

fn index(segment: &str, len: usize) -> Option<usize> {
    if segment.len() > 1 && segment.starts_with('0') {
        return None;
    }
    segment.parse::<usize>().ok().filter(|&i| i < len)
}

fn child<'a>(node: &'a Value, segment: &str) -> Option<&'a Value> {
    match node {
        Value::Mapping(map) => map.get(segment),
        Value::Sequence(items) => items.get(index(segment, items.len())?),
        _ => None,
    }
}

fn get<'a>(doc: &'a Value, pointer: &[String]) -> Option<&'a Value> {
    pointer
        .iter()
        .try_fold(doc, |node, segment| child(node, segment))
}

fn get_mut<'a>(doc: &'a mut Value, pointer: &[String]) -> Option<&'a mut Value> {
    pointer.iter().try_fold(doc, |node, segment| match node {
        Value::Mapping(map) => map.get_mut(segment.as_str()),
        Value::Sequence(items) => {
            let i = index(segment, items.len())?;
            items.get_mut(i)
        }
        _ => None,
    })
}

fn add(doc: &mut Value, pointer: &[String], value: Value) -> Result<(), Error> {
    let Some((last, parent)) = pointer.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent).ok_or(Error::MissingPath)? {
        Value::Mapping(map) => {
            map.insert(Value::String(last.clone()), value);
        }
        Value::Sequence(items) => {
            if last == "-" {
                items.push(value);
            } else {
                let i = index(last, items.len() + 1).ok_or(Error::MissingPath)?;
                items.insert(i, value);
            }
        }
        _ => return Err(Error::MissingPath),
    }
    Ok(())
}

fn remove(doc: &mut Value, pointer: &[String]) -> Result<Value, Error> {
    let (last, parent) = pointer.split_last().ok_or(Error::MissingPath)?;
    match get_mut(doc, parent).ok_or(Error::MissingPath)? {
        Value::Mapping(map) => remove_key(map, last),
        Value::Sequence(items) => {
            let i = index(last, items.len()).ok_or(Error::MissingPath)?;
            Ok(items.remove(i))
        }
        _ => Err(Error::MissingPath),
    }
}

fn remove_key(map: &mut Mapping, key: &str) -> Result<Value, Error> {
    map.remove(key).ok_or(Error::MissingPath)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_yaml::from_str(
            "build:\n  artifacts:\n    - image: base\n      docker: {dockerfile: Dockerfile}\n    - image: api\n      docker: {dockerfile: Dockerfile}\n",
        )
        .unwrap()
    }

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn replace_add_remove_move_copy_test() {
        let mut d = doc();
        let v = yaml("Dockerfile.prod");
        apply(
            &mut d,
            "replace",
            "/build/artifacts/0/docker/dockerfile",
            None,
            Some(&v),
        )
        .unwrap();
        assert_eq!(
            get(&d, &decode("/build/artifacts/0/docker/dockerfile").unwrap()),
            Some(&v)
        );

        let extra = yaml("{image: worker}");
        apply(&mut d, "add", "/build/artifacts/-", None, Some(&extra)).unwrap();
        apply(
            &mut d,
            "add",
            "/build/artifacts/0",
            None,
            Some(&yaml("{image: first}")),
        )
        .unwrap();
        let images = |d: &Value| -> Vec<String> {
            d["build"]["artifacts"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| a["image"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(images(&d), ["first", "base", "api", "worker"]);

        apply(&mut d, "remove", "/build/artifacts/0", None, None).unwrap();
        apply(
            &mut d,
            "copy",
            "/build/artifacts/-",
            Some("/build/artifacts/0"),
            None,
        )
        .unwrap();
        assert_eq!(images(&d), ["base", "api", "worker", "base"]);
        apply(
            &mut d,
            "move",
            "/build/artifacts/0",
            Some("/build/artifacts/3"),
            None,
        )
        .unwrap();
        assert_eq!(images(&d), ["base", "base", "api", "worker"]);

        apply(
            &mut d,
            "test",
            "/build/artifacts/2/image",
            None,
            Some(&yaml("api")),
        )
        .unwrap();
        assert_eq!(
            apply(
                &mut d,
                "test",
                "/build/artifacts/2/image",
                None,
                Some(&yaml("x"))
            ),
            Err(Error::TestFailed)
        );
    }

    #[test]
    fn missing_paths_and_bad_patches_are_errors() {
        let mut d = doc();
        let v = yaml("x");
        assert_eq!(
            apply(
                &mut d,
                "replace",
                "/build/artifacts/5/image",
                None,
                Some(&v)
            ),
            Err(Error::MissingPath)
        );
        assert_eq!(
            apply(&mut d, "remove", "/nothing", None, None),
            Err(Error::MissingPath)
        );
        assert_eq!(
            apply(&mut d, "add", "/build/nothing/x", None, Some(&v)),
            Err(Error::MissingPath)
        );
        assert_eq!(
            apply(&mut d, "replace", "build", None, Some(&v)),
            Err(Error::NotAPointer)
        );
        assert_eq!(
            apply(&mut d, "frobnicate", "/build", None, Some(&v)),
            Err(Error::UnknownOp)
        );
        assert_eq!(
            apply(&mut d, "move", "/build", None, None),
            Err(Error::MissingFrom("move"))
        );
        assert_eq!(
            apply(
                &mut d,
                "replace",
                "/build/artifacts/01/image",
                None,
                Some(&v)
            ),
            Err(Error::MissingPath)
        );
    }

    #[test]
    fn key_value_segments_select_matching_mappings() {
        let mut d = doc();
        let v = yaml("prod");
        apply(
            &mut d,
            "add",
            "/build/artifacts/image=api/docker/target",
            None,
            Some(&v),
        )
        .unwrap();
        assert_eq!(d["build"]["artifacts"][1]["docker"]["target"], v);
        assert!(d["build"]["artifacts"][0]["docker"].get("target").is_none());
        assert_eq!(
            apply(
                &mut d,
                "replace",
                "/build/artifacts/image=nope/docker",
                None,
                Some(&v)
            ),
            Err(Error::MissingPath)
        );
    }

    #[test]
    fn escaped_segments_are_decoded() {
        let mut d = yaml("a: {\"x/y\": 1, \"m~n\": 2}");
        apply(&mut d, "replace", "/a/x~1y", None, Some(&yaml("3"))).unwrap();
        apply(&mut d, "remove", "/a/m~0n", None, None).unwrap();
        assert_eq!(d, yaml("a: {\"x/y\": 3}"));
    }
}
