//! What the benchmarks share: a figure measured over rounds, reported as its median and spread.

/// The median and the spread of a figure's rounds.
#[derive(Clone, Debug, Default)]
pub struct Figure(pub Vec<f64>);

impl Figure {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut values = self.0.clone();
        values.sort_by(f64::total_cmp);
        values
    }

    pub fn median(&self) -> f64 {
        let values = self.sorted();
        let n = values.len();
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => values[n / 2],
            _ => f64::midpoint(values[n / 2 - 1], values[n / 2]),
        }
    }

    /// `median (min – max)`, scaled.
    pub fn show(&self, scale: f64, unit: &str) -> String {
        let values = self.sorted();
        let (min, max) = (
            values.first().copied().unwrap_or(f64::NAN),
            values.last().copied().unwrap_or(f64::NAN),
        );
        format!(
            "{:.2}{unit} ({:.2} – {:.2})",
            self.median() * scale,
            min * scale,
            max * scale
        )
    }
}

/// `value` against `target` (at most).
pub fn verdict(value: f64, target: f64) -> &'static str {
    if value <= target { "met" } else { "**missed**" }
}
