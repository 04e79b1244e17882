//! Running jobs that depend on each other: each starts as soon as the jobs it waits for are
//! done, at most `bound` at a time, those that are ready first in the order given. A job whose
//! dependency failed does not run, and says which one; every failure is kept. Nothing here
//! knows what a job does (a build, in op), so the order is tested without an engine.
//!
//! This is not the plan's levels (`op build --dry-run` prints those): a job does not wait for
//! the slowest job of the level before its own, only for its own dependencies, so the wall time
//! is that of the longest chain, not the sum of the slowest job of every level.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinSet;

/// A job: its name and the names of the jobs it waits for (jobs not in the list are not
/// waited for: they are not run now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) name: String,
    pub(crate) waits_for: Vec<String>,
}

/// Why a job did not succeed.
#[derive(Debug)]
pub(crate) enum Failed<E> {
    /// It ran and failed.
    Ran(E),
    /// It did not run: a job it waits for failed or did not run.
    Dependency(String),
}

/// Runs `jobs` with `start(name, results of the jobs it waits for)`; `skipped(name,
/// dependency)` hears of each job that will not run because of a failed dependency, when it is
/// known. Returns every job's outcome, in the order of `jobs`. Once `cancelled` is set no job
/// starts; the running ones finish, and the jobs that never started are left out.
pub(crate) async fn run<T, E, F, Fut>(
    jobs: &[Job],
    bound: usize,
    cancelled: &AtomicBool,
    mut start: F,
    mut skipped: impl FnMut(&str, &str),
) -> Vec<(String, Result<T, Failed<E>>)>
where
    T: Clone + Send + 'static,
    E: Send + 'static,
    F: FnMut(&str, BTreeMap<String, T>) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let known: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let mut done: BTreeMap<String, Result<T, Failed<E>>> = BTreeMap::new();
    let mut started: Vec<bool> = vec![false; jobs.len()];
    let mut running: JoinSet<(String, Result<T, E>)> = JoinSet::new();
    loop {
        // Jobs whose dependency failed fail in turn, transitively, before anything starts.
        let mut changed = true;
        while changed {
            changed = false;
            for (i, job) in jobs.iter().enumerate() {
                if started[i] {
                    continue;
                }
                let failed = job
                    .waits_for
                    .iter()
                    .find(|dep| matches!(done.get(dep.as_str()), Some(Err(_))));
                if let Some(dep) = failed {
                    started[i] = true;
                    skipped(&job.name, dep);
                    done.insert(job.name.clone(), Err(Failed::Dependency(dep.clone())));
                    changed = true;
                }
            }
        }
        if !cancelled.load(Ordering::SeqCst) {
            for (i, job) in jobs.iter().enumerate() {
                if running.len() >= bound.max(1) {
                    break;
                }
                let ready = !started[i]
                    && job.waits_for.iter().all(|dep| {
                        !known.contains(&dep.as_str()) || matches!(done.get(dep), Some(Ok(_)))
                    });
                if ready {
                    started[i] = true;
                    let inputs = job
                        .waits_for
                        .iter()
                        .filter_map(|dep| match done.get(dep) {
                            Some(Ok(value)) => Some((dep.clone(), value.clone())),
                            _ => None,
                        })
                        .collect();
                    let name = job.name.clone();
                    let future = start(&name, inputs);
                    running.spawn(async move { (name, future.await) });
                }
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((name, result)) => {
                done.insert(name, result.map_err(Failed::Ran));
            }
            // A job's task panicked or was aborted: it cannot be told from the others, so
            // whatever it was, it did not finish; the jobs waiting for it never become ready.
            Err(e) => tracing::debug!(error = %e, "a job's task ended without a result"),
        }
    }
    jobs.iter()
        .filter_map(|job| done.remove(&job.name).map(|r| (job.name.clone(), r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    fn job(name: &str, waits_for: &[&str]) -> Job {
        Job {
            name: name.into(),
            waits_for: waits_for.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    /// What a fake run did: the outcomes; when each job started and ended (seconds of paused
    /// time, in milliseconds); the most jobs that ran at once; the names of the results each job was given; the
    /// skips heard of, as `<job> for <dependency>`.
    #[derive(Default)]
    struct FakeRun {
        results: Vec<(String, Result<String, Failed<String>>)>,
        spans: BTreeMap<String, (u128, u128)>,
        most: usize,
        inputs: Vec<(String, Vec<String>)>,
        skips: Vec<String>,
    }

    #[derive(Default)]
    struct Running {
        now: usize,
        most: usize,
        spans: BTreeMap<String, (u128, u128)>,
    }

    /// Runs `jobs` where each takes `durations[name]` seconds (else 1), those in `failing`
    /// fail, and the start of `cancel_at` cancels.
    async fn fake(
        jobs: &[Job],
        bound: usize,
        durations: &[(&str, u64)],
        failing: &[&str],
        cancel_at: Option<&str>,
    ) -> FakeRun {
        let durations: BTreeMap<String, u64> = durations
            .iter()
            .map(|(n, d)| ((*n).to_string(), *d))
            .collect();
        let failing: Vec<String> = failing.iter().map(|s| (*s).to_string()).collect();
        let running = Arc::new(Mutex::new(Running::default()));
        let cancelled = Arc::new(AtomicBool::new(false));
        let zero = Instant::now();
        let mut inputs = Vec::new();
        let mut skips = Vec::new();
        let results = run(
            jobs,
            bound,
            &cancelled,
            |name, given| {
                inputs.push((name.to_string(), given.keys().cloned().collect()));
                let (running, cancelled) = (Arc::clone(&running), Arc::clone(&cancelled));
                let name = name.to_string();
                let seconds = durations.get(&name).copied().unwrap_or(1);
                let fails = failing.contains(&name);
                let cancels = cancel_at == Some(name.as_str());
                async move {
                    let begin = zero.elapsed().as_millis();
                    {
                        let mut r = running.lock().unwrap();
                        r.now += 1;
                        r.most = r.most.max(r.now);
                    }
                    if cancels {
                        cancelled.store(true, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_secs(seconds)).await;
                    let mut r = running.lock().unwrap();
                    r.now -= 1;
                    r.spans
                        .insert(name.clone(), (begin, zero.elapsed().as_millis()));
                    if fails {
                        Err(format!("{name} broke"))
                    } else {
                        Ok(format!("{name}@sha256:x"))
                    }
                }
            },
            |name, dep| skips.push(format!("{name} for {dep}")),
        )
        .await;
        let r = running.lock().unwrap();
        FakeRun {
            results,
            spans: r.spans.clone(),
            most: r.most,
            inputs,
            skips,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn independent_jobs_overlap_up_to_the_bound() {
        let jobs: Vec<Job> = ["a", "b", "c", "d"].iter().map(|n| job(n, &[])).collect();
        let FakeRun {
            results,
            spans,
            most,
            ..
        } = fake(&jobs, 2, &[], &[], None).await;
        assert_eq!(most, 2, "never more than the bound at once");
        assert!(results.iter().all(|(_, r)| r.is_ok()));
        assert_eq!(
            results.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c", "d"],
            "results in the order of the jobs"
        );
        assert_eq!(spans["a"].0, 0);
        assert_eq!(spans["c"].0, 1000, "c starts when a slot frees, in order");
        let FakeRun { spans, most, .. } = fake(&jobs, 4, &[], &[], None).await;
        assert_eq!(most, 4);
        assert!(spans.values().all(|(begin, _)| *begin == 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_starts_when_its_own_dependencies_are_done_not_its_level() {
        // base → app (runImage), beside an unrelated slow job: max(slow, base + app), not
        // slow + app.
        let jobs = [job("slow", &[]), job("base", &[]), job("app", &["base"])];
        let durations = [("slow", 7), ("base", 1), ("app", 2)];
        let FakeRun {
            results,
            spans,
            inputs,
            ..
        } = fake(&jobs, 4, &durations, &[], None).await;
        assert!(results.iter().all(|(_, r)| r.is_ok()));
        assert_eq!(spans["app"].0, 1000, "app starts when base is done");
        assert_eq!(spans["app"].1, 3000);
        let wall = spans.values().map(|s| s.1).max();
        assert_eq!(wall, Some(7000), "the longest chain is the wall time");
        assert!(
            inputs.contains(&("app".to_string(), vec!["base".to_string()])),
            "app gets base's result: {inputs:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_dependency_skips_its_dependents_and_every_failure_is_kept() {
        let jobs = [
            job("base", &[]),
            job("app", &["base"]),
            job("docs", &["app"]),
            job("other", &[]),
            job("broken", &[]),
        ];
        let FakeRun {
            results,
            spans,
            skips,
            ..
        } = fake(&jobs, 2, &[], &["base", "broken"], None).await;
        assert_eq!(
            skips,
            ["app for base", "docs for app"],
            "heard of when known"
        );
        let outcome: BTreeMap<&str, String> = results
            .iter()
            .map(|(n, r)| {
                let text = match r {
                    Ok(v) => format!("ok {v}"),
                    Err(Failed::Ran(e)) => format!("ran: {e}"),
                    Err(Failed::Dependency(d)) => format!("skipped: {d}"),
                };
                (n.as_str(), text)
            })
            .collect();
        assert_eq!(outcome["base"], "ran: base broke");
        assert_eq!(outcome["app"], "skipped: base");
        assert_eq!(
            outcome["docs"], "skipped: app",
            "transitively, naming its own"
        );
        assert_eq!(outcome["other"], "ok other@sha256:x");
        assert_eq!(outcome["broken"], "ran: broken broke");
        assert!(!spans.contains_key("app") && !spans.contains_key("docs"));
    }

    #[tokio::test(start_paused = true)]
    async fn once_cancelled_nothing_starts_and_the_running_jobs_finish() {
        let jobs = [
            job("a", &[]),
            job("b", &[]),
            job("c", &[]),
            job("d", &["a"]),
        ];
        let FakeRun { results, spans, .. } = fake(&jobs, 2, &[], &[], Some("a")).await;
        let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"], "only what started before the cancel");
        assert!(!spans.contains_key("c") && !spans.contains_key("d"));
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_outside_the_list_are_not_waited_for() {
        // A dependency that is not built now (already published).
        let jobs = [job("app", &["published-base"])];
        let FakeRun {
            results, inputs, ..
        } = fake(&jobs, 1, &[], &[], None).await;
        assert!(results[0].1.is_ok());
        assert_eq!(inputs, [("app".to_string(), Vec::<String>::new())]);
    }
}
