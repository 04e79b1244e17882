//! How builds show their progress on stderr:
//!
//! - on a terminal, one line per artifact (its phase and elapsed time, from indicatif), with the
//!   build output scrolling above them, each line prefixed with the artifact's name;
//! - elsewhere (CI logs, a `dumb` terminal: [`live_stderr`]), the prefixed lines only, and a
//!   line when an artifact is done;
//! - with `-q`, nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::execute::{Phase, Reporter};

/// Whether stderr takes live lines: a terminal that is not `dumb` (`TERM` set). indicatif draws
/// nothing, and prints nothing above its bars, anywhere else, so everything else gets plain
/// lines (a terminal of `TERM=dumb`, an editor's shell, a CI log).
pub fn live_stderr() -> bool {
    !ProgressDrawTarget::stderr().is_hidden()
}

/// The width the artifact names are padded to in prefixes.
fn prefix_width(names: &[String]) -> usize {
    names.iter().map(String::len).max().unwrap_or(0).min(24)
}

fn prefix(name: &str, width: usize) -> String {
    format!("[{name:<width$}]")
}

/// Prefixed lines, for logs.
pub struct PlainReporter {
    width: usize,
    started: Mutex<BTreeMap<String, Instant>>,
}

impl PlainReporter {
    pub fn new(names: &[String]) -> Self {
        Self {
            width: prefix_width(names),
            started: Mutex::new(BTreeMap::new()),
        }
    }

    fn write(text: &str) {
        use std::io::Write as _;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}

impl Reporter for PlainReporter {
    fn phase(&self, artifact: &str, phase: Phase) {
        let mut started = self
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match phase {
            Phase::Preparing => {
                started.insert(artifact.to_string(), Instant::now());
                Self::write(&format!(
                    "{} preparing the build",
                    prefix(artifact, self.width)
                ));
            }
            Phase::Done | Phase::Failed => {
                let elapsed = started
                    .get(artifact)
                    .map(Instant::elapsed)
                    .unwrap_or_default();
                Self::write(&format!(
                    "{} {} in {:.1}s",
                    prefix(artifact, self.width),
                    phase.label(),
                    elapsed.as_secs_f64()
                ));
            }
            _ => {}
        }
    }

    fn line(&self, artifact: &str, line: &str) {
        Self::write(&format!("{} {line}", prefix(artifact, self.width)));
    }

    fn note(&self, text: &str) {
        Self::write(text);
    }
}

/// Nothing at all (`-q`).
pub struct QuietReporter;

impl Reporter for QuietReporter {
    fn phase(&self, _: &str, _: Phase) {}
    fn line(&self, _: &str, _: &str) {}
    fn note(&self, _: &str) {}
}

/// A live line per artifact on a terminal.
pub struct TerminalReporter {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
    width: usize,
    finished: ProgressStyle,
}

impl TerminalReporter {
    pub fn new(names: &[String]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = prefix_width(names);
        let style =
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} {elapsed:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = names
            .iter()
            .map(|name| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(format!("{name:<width$}"));
                bar.set_message(Phase::Waiting.label());
                bar.enable_steady_tick(Duration::from_millis(120));
                (name.clone(), bar)
            })
            .collect();
        let finished = ProgressStyle::with_template("  {prefix:.bold} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        Self {
            multi,
            bars,
            width,
            finished,
        }
    }
}

impl Reporter for TerminalReporter {
    fn phase(&self, artifact: &str, phase: Phase) {
        let Some(bar) = self.bars.get(artifact) else {
            return;
        };
        match phase {
            Phase::Preparing => {
                bar.reset_elapsed();
                bar.set_message(phase.label());
            }
            Phase::Done | Phase::Failed => {
                let mark = if phase == Phase::Done { "✓" } else { "✗" };
                let seconds = bar.elapsed().as_secs_f64();
                bar.set_style(self.finished.clone());
                bar.finish_with_message(format!("{mark} {} in {seconds:.1}s", phase.label()));
            }
            _ => bar.set_message(phase.label()),
        }
    }

    fn line(&self, artifact: &str, line: &str) {
        let _ = self
            .multi
            .println(format!("{} {line}", prefix(artifact, self.width)));
    }

    fn note(&self, text: &str) {
        let _ = self.multi.println(text);
    }
}

impl Drop for TerminalReporter {
    fn drop(&mut self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

/// One live line on a terminal: a spinner whose message is replaced as things change, the
/// elapsed time beside it, and lines printed above it; cleared when dropped.
pub struct StatusLine {
    bar: ProgressBar,
}

impl StatusLine {
    pub fn new(message: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar }
    }

    /// Replaces the line's message.
    pub fn set(&self, message: &str) {
        self.bar.set_message(message.to_string());
    }

    /// A line above the live one.
    pub fn println(&self, text: &str) {
        self.bar.println(text);
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
