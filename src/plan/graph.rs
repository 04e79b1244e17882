//! The dependency graph between artifacts: edges, cycle detection, selection, levels.

use std::collections::{BTreeMap, BTreeSet};

use super::{Error, PlannedArtifact, SkaffoldRun, Via, Work};
use crate::config::skaffold::{Artifact, Kind};

/// An artifact depends on artifact `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    pub(crate) to: usize,
    pub(crate) via: Via,
    pub(crate) alias: Option<String>,
}

/// The dependencies of every artifact, by index: its `requires`, and its `buildpacks.runImage`
/// when that names another artifact (unless `run_images` gives that run image).
pub(crate) fn dependencies(
    all: &[&Artifact],
    run_images: &BTreeMap<String, String>,
) -> Result<Vec<Vec<Edge>>, Error> {
    let index = |image: &str| all.iter().position(|a| a.image == image);
    all.iter()
        .map(|artifact| {
            let mut edges = Vec::new();
            for requirement in &artifact.requires {
                let to = index(&requirement.image).ok_or_else(|| Error::UnknownRequirement {
                    image: artifact.image.clone(),
                    location: artifact.location.clone(),
                    required: requirement.image.clone(),
                    available: all.iter().map(|a| a.image.clone()).collect(),
                })?;
                edges.push(Edge {
                    to,
                    via: Via::Requires,
                    alias: Some(requirement.alias.clone()),
                });
            }
            if let Kind::Buildpacks(b) = &artifact.kind
                && let Some(run_image) = b.run_image.as_deref()
                && !run_images.contains_key(run_image)
                && let Some(to) = index(run_image)
            {
                edges.push(Edge {
                    to,
                    via: Via::RunImage,
                    alias: None,
                });
            }
            Ok(edges)
        })
        .collect()
}

/// Fails with the first cycle found, named by images (`a → b → a`).
pub(crate) fn check_acyclic(names: &[String], edges: &[Vec<Edge>]) -> Result<(), Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done,
    }
    fn visit(
        node: usize,
        edges: &[Vec<Edge>],
        state: &mut [State],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[node] = State::Open;
        stack.push(node);
        for edge in &edges[node] {
            match state[edge.to] {
                State::Open => {
                    let start = stack
                        .iter()
                        .position(|&n| n == edge.to)
                        .expect("an open node is on the stack");
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(edge.to);
                    return Some(cycle);
                }
                State::New => {
                    if let Some(cycle) = visit(edge.to, edges, state, stack) {
                        return Some(cycle);
                    }
                }
                State::Done => {}
            }
        }
        stack.pop();
        state[node] = State::Done;
        None
    }
    let mut state = vec![State::New; names.len()];
    for node in 0..names.len() {
        if state[node] == State::New
            && let Some(cycle) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Err(Error::Cycle {
                cycle: cycle.into_iter().map(|n| names[n].clone()).collect(),
            });
        }
    }
    Ok(())
}

/// `start` and everything it depends on, transitively, in index order.
pub(crate) fn closure(start: usize, edges: &[Vec<Edge>]) -> Vec<usize> {
    let mut seen = BTreeSet::from([start]);
    let mut todo = vec![start];
    while let Some(node) = todo.pop() {
        for edge in &edges[node] {
            if seen.insert(edge.to) {
                todo.push(edge.to);
            }
        }
    }
    seen.into_iter().collect()
}

/// The artifacts that are built, grouped so that each group only depends on earlier groups.
/// Skipped artifacts are left out, and depending on one does not delay anything: it is expected
/// to be published already.
pub(crate) fn levels(artifacts: &[PlannedArtifact]) -> Vec<Vec<String>> {
    let built: Vec<&PlannedArtifact> = artifacts
        .iter()
        .filter(|a| !matches!(a.work, Work::Skip { .. }))
        .collect();
    let mut level: Vec<Option<usize>> = vec![None; built.len()];
    // The graph is acyclic, so repeating until nothing changes terminates after at most
    // `built.len()` rounds.
    loop {
        let mut changed = false;
        for (i, artifact) in built.iter().enumerate() {
            if level[i].is_some() {
                continue;
            }
            let mut deepest = Some(0);
            for dependency in &artifact.depends_on {
                let Some(j) = built.iter().position(|b| b.image == dependency.image) else {
                    continue;
                };
                deepest = match (deepest, level[j]) {
                    (Some(d), Some(l)) => Some(d.max(l + 1)),
                    _ => None,
                };
            }
            if deepest.is_some() {
                level[i] = deepest;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let depth = level.iter().flatten().max().map_or(0, |d| d + 1);
    (0..depth)
        .map(|d| {
            built
                .iter()
                .zip(&level)
                .filter(|(_, l)| **l == Some(d))
                .map(|(a, _)| a.image.clone())
                .collect()
        })
        .collect()
}

/// The representative of `i`'s group (union-find, with path halving).
fn root(run: &mut [usize], mut i: usize) -> usize {
    while run[i] != i {
        run[i] = run[run[i]];
        i = run[i];
    }
    i
}

/// The `skaffold build` runs of the artifacts op hands to skaffold, in skaffold.yaml order.
///
/// Artifacts that `requires` each other build in one run (skaffold passes one's image to the
/// other). skaffold's `--build-image NAME` selects every artifact whose image contains `NAME`,
/// so an artifact whose image is part of another's builds in the same run as that other one;
/// when that other one is not skaffold's to build (a buildpacks artifact, or one `--artifact`
/// left out), skaffold cannot be told to build one without the other, and that is an error.
pub(crate) fn skaffold_runs(
    all: &[&Artifact],
    artifacts: &[PlannedArtifact],
    push: bool,
    default_repo: &str,
) -> Result<Vec<SkaffoldRun>, Error> {
    let delegated: Vec<&PlannedArtifact> = artifacts
        .iter()
        .filter(|a| matches!(a.work, Work::Skaffold(_)))
        .collect();
    let position = |image: &str| delegated.iter().position(|a| a.image == image);
    // The run of each delegated artifact: the smallest index of its group.
    let mut run: Vec<usize> = (0..delegated.len()).collect();
    let join = |run: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (root(run, a), root(run, b));
        run[ra.max(rb)] = ra.min(rb);
    };
    for (i, artifact) in delegated.iter().enumerate() {
        for dependency in &artifact.depends_on {
            if let Some(j) = position(&dependency.image) {
                join(&mut run, i, j);
            }
        }
        for other in all
            .iter()
            .filter(|o| o.image != artifact.image && o.image.contains(&artifact.image))
        {
            let Some(j) = position(&other.image) else {
                let why = if matches!(other.kind, Kind::Buildpacks(_))
                    && artifacts.iter().any(|a| a.image == other.image)
                {
                    "is a buildpacks artifact, which op builds itself"
                } else {
                    "is not part of this build (--artifact left it out)"
                };
                return Err(Error::SkaffoldSelection {
                    image: artifact.image.clone(),
                    other: other.image.clone(),
                    why: why.to_string(),
                });
            };
            join(&mut run, i, j);
        }
    }
    // An artifact op builds reads its dependencies from the registry.
    let needed_by_op = |image: &str| {
        artifacts
            .iter()
            .filter(|a| matches!(a.work, Work::Buildpacks(_)))
            .any(|a| a.depends_on.iter().any(|d| d.image == image))
    };
    let local_push = |image: &str| {
        all.iter()
            .find(|a| a.image == image)
            .and_then(|a| a.local_push)
            .unwrap_or(false)
    };
    let mut runs: Vec<SkaffoldRun> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    for (i, artifact) in delegated.iter().enumerate() {
        let r = root(&mut run, i);
        let image = artifact.image.clone();
        let pushed = push || needed_by_op(&image) || local_push(&image);
        if let Some(k) = roots.iter().position(|&x| x == r) {
            runs[k].artifacts.push(image);
            runs[k].push |= pushed;
        } else {
            roots.push(r);
            runs.push(SkaffoldRun {
                artifacts: vec![image],
                push: pushed,
                default_repo: default_repo.to_string(),
            });
        }
    }
    Ok(runs)
}
