//! Curves as SVG, written by hand: for each panel, axes with round ticks, the median of each x
//! as a point with its spread (min – max) as a whisker, a line through the medians, and a
//! target (a line to stay under, or a band to stay in) when there is one.

use std::fmt::Write as _;

use crate::support::Figure;

/// One curve: a figure per x.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<Figure>,
}

/// What a panel's curve should do.
pub enum Target {
    /// Stay at or under this value.
    AtMost(f64),
    /// Stay within `[low, high]`.
    Within(f64, f64),
}

pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    pub target: Option<(Target, String)>,
}

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 260.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 44.0;
const HEADER: f64 = 68.0;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A value as a label: three significant figures at most.
pub fn short(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A tick's value, with as many decimals as its step needs.
fn tick_label(value: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{value:.0}")
    } else if step >= 0.1 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A round step of about a fifth of `max` (1, 2 or 5 times a power of ten).
fn step_for(max: f64) -> f64 {
    let raw = (max / 5.0).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

/// Where the points of a panel sit on its x axis: a label and a position (a logarithm, for a
/// log scale).
pub type Xs<'a> = [(&'a str, f64)];

/// The whole picture: `title` and two lines of `subtitle` above the panels (two to a row), each
/// panel's x axis `xs`, named `x_title`.
pub fn svg(
    title: &str,
    subtitle: [&str; 2],
    x_title: &str,
    xs: &Xs<'_>,
    panels: &[Panel],
) -> String {
    let columns = panels.len().clamp(1, 2);
    let rows = panels.len().div_ceil(columns);
    #[allow(clippy::cast_precision_loss, reason = "a handful of panels")]
    let (width, height) = (
        PANEL_W * columns as f64,
        HEADER + PANEL_H * rows as f64 + 8.0,
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="{width}" height="{height}" fill="#ffffff"/>
<text x="12" y="22" font-size="15" font-weight="bold">{}</text>
<text x="12" y="40" fill="#555555">{}</text>
<text x="12" y="55" fill="#555555">{}</text>"##,
        esc(title),
        esc(subtitle[0]),
        esc(subtitle[1])
    );
    for (i, panel) in panels.iter().enumerate() {
        #[allow(clippy::cast_precision_loss, reason = "a handful of panels")]
        let (x, y) = (
            PANEL_W * (i % columns) as f64,
            HEADER + PANEL_H * (i / columns) as f64,
        );
        draw(&mut s, panel, (x, y), x_title, xs);
    }
    s.push_str("</svg>\n");
    s
}

fn draw(s: &mut String, panel: &Panel, (ox, oy): (f64, f64), x_title: &str, xs: &Xs<'_>) {
    let (plot_w, plot_h) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let (x0, y0) = (ox + LEFT, oy + TOP + plot_h);
    let mut max = panel
        .series
        .iter()
        .flat_map(|series| series.points.iter())
        .flat_map(|figure| figure.0.iter().copied())
        .fold(0.0_f64, f64::max);
    if let Some((target, _)) = &panel.target {
        max = max.max(match target {
            Target::AtMost(v) | Target::Within(_, v) => *v,
        });
    }
    let step = step_for(max * 1.08);
    let top = (max * 1.08 / step).ceil().max(1.0) * step;
    let ys = |v: f64| y0 - v / top * plot_h;
    let (first, last) = (xs[0].1, xs[xs.len() - 1].1);
    let xs_at = |i: usize| x0 + plot_w * (0.1 + 0.8 * (xs[i].1 - first) / (last - first));
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="12.5" font-weight="bold">{}</text>"#,
        ox + 12.0,
        oy + 18.0,
        esc(&panel.title)
    );
    // The grid and the y axis's labels.
    let mut tick = 0.0;
    while tick <= top * 1.0001 {
        let y = ys(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444444">{}</text>"##,
            x0 + plot_w,
            x0 - 6.0,
            y + 4.0,
            tick_label(tick, step)
        );
        tick += step;
    }
    if let Some(target) = &panel.target {
        target_mark(s, target, (x0, plot_w), &ys);
    }
    axes(s, (x0, y0), (plot_w, plot_h), x_title, xs, &xs_at);
    legend(s, panel, (ox, oy));
    curves(s, panel, &ys, &xs_at);
}

fn target_mark(
    s: &mut String,
    (target, label): &(Target, String),
    (x0, plot_w): (f64, f64),
    ys: &dyn Fn(f64) -> f64,
) {
    match target {
        Target::AtMost(v) => {
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1.5"/><text x="{:.1}" y="{:.1}" fill="#c0392b">{}</text>"##,
                x0 + plot_w,
                x0 + 6.0,
                ys(*v) - 5.0,
                esc(label),
                y = ys(*v),
            );
        }
        Target::Within(low, high) => {
            let _ = writeln!(
                s,
                r##"<rect x="{x0}" y="{:.1}" width="{plot_w:.1}" height="{:.1}" fill="#27ae60" fill-opacity="0.13"/><text x="{:.1}" y="{:.1}" fill="#1e8449">{}</text>"##,
                ys(*high),
                ys(*low) - ys(*high),
                x0 + 6.0,
                ys(*low) + 13.0,
                esc(label)
            );
        }
    }
}

/// The axes and the x labels.
fn axes(
    s: &mut String,
    (x0, y0): (f64, f64),
    (plot_w, plot_h): (f64, f64),
    x_title: &str,
    xs: &Xs<'_>,
    xs_at: &dyn Fn(usize) -> f64,
) {
    let _ = writeln!(
        s,
        r##"<line x1="{x0}" y1="{y0}" x2="{:.1}" y2="{y0}" stroke="#333333"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{:.1}" stroke="#333333"/>"##,
        x0 + plot_w,
        y0 - plot_h
    );
    for (i, (label, _)) in xs.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            xs_at(i),
            y0 + 16.0,
            esc(label)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{}</text>"##,
        x0 + plot_w / 2.0,
        y0 + 34.0,
        esc(x_title)
    );
}

/// The legend, when there are several curves.
fn legend(s: &mut String, panel: &Panel, (ox, oy): (f64, f64)) {
    if panel.series.len() > 1 {
        let mut lx = ox + 12.0;
        for series in &panel.series {
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                oy + 26.0,
                series.color,
                lx + 14.0,
                oy + 35.0,
                esc(&series.name)
            );
            #[allow(clippy::cast_precision_loss, reason = "short names")]
            let advance = 30.0 + 6.0 * series.name.chars().count() as f64;
            lx += advance;
        }
    }
}

/// The curves: whiskers, a line through the medians, the points and their values.
fn curves(s: &mut String, panel: &Panel, ys: &dyn Fn(f64) -> f64, xs_at: &dyn Fn(usize) -> f64) {
    for (n, series) in panel.series.iter().enumerate() {
        // The values of a second curve go under its points, so that close curves stay legible.
        let label_dy = if n % 2 == 0 { -6.0 } else { 15.0 };
        let (mut line, mut points) = (String::new(), String::new());
        for (i, figure) in series.points.iter().enumerate() {
            if figure.0.is_empty() {
                continue;
            }
            let (x, median) = (xs_at(i), figure.median());
            let (min, max) = figure
                .0
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(*v), hi.max(*v))
                });
            let _ = write!(line, "{x:.1},{:.1} ", ys(median));
            let _ = writeln!(
                points,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{c}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}"/>"#,
                ys(min),
                ys(max),
                x - 4.0,
                ys(min),
                x + 4.0,
                ys(min),
                x - 4.0,
                ys(max),
                x + 4.0,
                ys(max),
                c = series.color
            );
            let _ = writeln!(
                points,
                r##"<circle cx="{x:.1}" cy="{:.1}" r="3.5" fill="{}"/><text x="{:.1}" y="{:.1}" fill="#222222">{}</text>"##,
                ys(median),
                series.color,
                x + 6.0,
                ys(median) + label_dy,
                short(median)
            );
        }
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.8"/>"#,
            line.trim_end(),
            series.color
        );
        s.push_str(&points);
    }
}
