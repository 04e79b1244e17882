//! How op styles what it prints on a terminal.

/// Styles for the parts of a rendered error.
#[derive(Clone, Copy, Debug)]
pub struct Styles {
    pub error: anstyle::Style,
    pub hint: anstyle::Style,
    pub warning: anstyle::Style,
}

impl Styles {
    /// Colours for a terminal.
    pub fn colored() -> Self {
        use anstyle::{AnsiColor, Style};
        Self {
            error: Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
            hint: Style::new().bold().fg_color(Some(AnsiColor::Cyan.into())),
            warning: Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())),
        }
    }

    /// No styling at all.
    pub fn plain() -> Self {
        let none = anstyle::Style::new();
        Self {
            error: none,
            hint: none,
            warning: none,
        }
    }
}
