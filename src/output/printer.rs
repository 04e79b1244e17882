use std::io::{self, Write};

use super::Styles;

/// How much op says on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: results and errors only.
    Quiet,
    /// The default: results, progress and warnings.
    Normal,
    /// `-v` (and more): also diagnostics through `tracing`.
    Verbose,
}

/// Where output goes: stdout for results, stderr for everything else.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    verbosity: Verbosity,
    styles: Styles,
}

impl Printer {
    /// A printer that colours stderr when it is a terminal and `NO_COLOR` is not set.
    pub fn new(verbosity: Verbosity) -> Self {
        let styles = match anstream::AutoStream::choice(&io::stderr()) {
            anstream::ColorChoice::Never => Styles::plain(),
            _ => Styles::colored(),
        };
        Self { verbosity, styles }
    }

    /// A printer with no colours, whatever the terminal.
    pub fn plain(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            styles: Styles::plain(),
        }
    }

    /// The styles for stderr.
    pub fn styles(&self) -> Styles {
        self.styles
    }

    /// The verbosity chosen on the command line.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Writes a result to stdout. Errors (a closed pipe, most likely) are returned so that the
    /// caller stops producing output.
    pub fn result(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        if !text.is_empty() && !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// A line of progress on stderr (silenced by `-q`).
    pub fn info(&self, text: &str) {
        if self.verbosity > Verbosity::Quiet {
            Self::stderr(&format!("{text}\n"));
        }
    }

    /// A warning on stderr (silenced by `-q`).
    pub fn warn(&self, text: &str) {
        if self.verbosity > Verbosity::Quiet {
            let label = self.styles.warning;
            Self::stderr(&format!("{label}warning{label:#}: {text}\n"));
        }
    }

    /// A GitHub Actions error annotation (`::error ::<text>`, on one line) on stderr, beside an
    /// error op renders too; never silenced.
    pub fn annotate_error(&self, text: &str) {
        let line = text
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        Self::stderr(&format!("::error ::{line}\n"));
    }

    /// An already rendered error on stderr; never silenced.
    pub fn error(&self, rendered: &str) {
        Self::stderr(rendered);
    }

    fn stderr(text: &str) {
        let mut err = anstream::AutoStream::auto(io::stderr()).lock();
        // Nothing sensible can be done when stderr itself is gone.
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }
}
