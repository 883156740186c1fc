//! Small SVG charts: a line over time and horizontal bars. Plain text, no dependencies.

use std::fmt::Write;

const WIDTH: f64 = 720.0;
const LEFT: f64 = 230.0;
const ROW: f64 = 22.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart of `points` (x, y) titled `title`, with axis labels.
pub(crate) fn line(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)]) -> String {
    let (w, h, pad) = (WIDTH, 360.0, 60.0);
    let max_x = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_y = points.iter().map(|p| p.1).fold(1.0, f64::max);
    let min_y = points.iter().map(|p| p.1).fold(0.0, f64::min);
    let span_y = (max_y - min_y).max(1.0);
    let sx = |x: f64| pad + x / max_x * (w - 2.0 * pad);
    let sy = |y: f64| h - pad - (y - min_y) / span_y * (h - 2.0 * pad);
    let mut svg = header(w, h, title);
    let _ = write!(
        svg,
        r#"<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="black"/>"#,
        b = h - pad,
        r = w - pad
    );
    let path: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
        .collect();
    let _ = write!(
        svg,
        r#"<polyline fill="none" stroke="steelblue" stroke-width="2" points="{}"/>"#,
        path.join(" ")
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
        w / 2.0,
        h - 15.0,
        escape(x_label),
        h / 2.0,
        h / 2.0,
        escape(y_label)
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" font-size="11">{:.0}</text><text x="{}" y="{}" font-size="11">{:.0}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{:.0}</text>"#,
        pad + 4.0,
        pad - 4.0,
        max_y,
        pad + 4.0,
        h - pad - 4.0,
        min_y,
        w - pad,
        h - pad + 14.0,
        max_x
    );
    svg.push_str("</svg>\n");
    svg
}

/// Horizontal bars: for each row, a label and one or more values (drawn in the given
/// colours, each bar under the previous), scaled to the largest value.
pub(crate) fn bars(
    title: &str,
    unit: &str,
    rows: &[(String, Vec<f64>)],
    colours: &[&str],
) -> String {
    let per_row = rows.first().map_or(1, |r| r.1.len().max(1)) as f64;
    let h = 60.0 + rows.len() as f64 * ROW * per_row + 20.0;
    let max = rows
        .iter()
        .flat_map(|r| r.1.iter().copied())
        .fold(1.0, f64::max);
    let min = rows
        .iter()
        .flat_map(|r| r.1.iter().copied())
        .fold(0.0, f64::min);
    let span = max - min;
    let scale = |v: f64| (v / span) * (WIDTH - LEFT - 90.0);
    let zero = LEFT - scale(min);
    let mut svg = header(WIDTH, h, title);
    let mut y = 50.0;
    for (label, values) in rows {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>"#,
            LEFT - 8.0 - scale(-min),
            y + 14.0,
            escape(label)
        );
        for (i, value) in values.iter().enumerate() {
            let width = scale(value.abs());
            let x = if *value < 0.0 { zero - width } else { zero };
            let colour = colours.get(i).copied().unwrap_or("gray");
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{}" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="11">{value:.0} {}</text>"#,
                ROW - 4.0,
                zero + width.max(0.0) + 4.0,
                y + 13.0,
                escape(unit)
            );
            y += ROW;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn header(w: f64, h: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="16">{}</text>"#,
        w / 2.0,
        escape(title)
    )
}
