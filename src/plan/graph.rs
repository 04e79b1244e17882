//! The dependency graph between artifacts: edges, cycle detection, selection, levels.

use std::collections::BTreeSet;

use super::{Error, PlannedArtifact, Via, Work};
use crate::config::skaffold::{Artifact, Kind};

/// An artifact depends on artifact `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    pub(crate) to: usize,
    pub(crate) via: Via,
    pub(crate) alias: Option<String>,
}

/// The dependencies of every artifact, by index: its `requires`, and its `buildpacks.runImage`
/// when that names another artifact.
pub(crate) fn dependencies(all: &[&Artifact]) -> Result<Vec<Vec<Edge>>, Error> {
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
                && let Some(to) = b.run_image.as_deref().and_then(index)
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
