//! Charts drawn by the server as SVG (no chart library, nothing loaded by the browser): ranked
//! horizontal bars, each with its figure written beside it, and an optional target mark. The SVG
//! is built with escaped text, so area names cannot break out of it.

use askama::Template;

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The area's name.
    pub label: String,
    /// Its value (a rate in percent, a score).
    pub value: f64,
    /// The text written beside the bar (the value with what it counts).
    pub note: String,
    /// A target to mark on the bar's scale, if any.
    pub target: Option<f64>,
    /// Drawn highlighted (a target missed, an area below the line).
    pub alert: bool,
}

/// Left margin for the labels, bar area width, right margin for the notes; row height.
const LABEL_WIDTH: f64 = 150.0;
const BAR_WIDTH: f64 = 380.0;
const NOTE_WIDTH: f64 = 190.0;
const ROW_HEIGHT: f64 = 26.0;
const TOP: f64 = 30.0;

/// A bar drawn: its geometry.
#[derive(Debug, Clone)]
struct DrawnBar {
    y: String,
    text_y: String,
    width: String,
    label: String,
    note: String,
    note_x: String,
    target_x: Option<String>,
    alert: bool,
}

#[derive(Template)]
#[template(path = "bar_chart.svg", escape = "html")]
struct BarChartSvg {
    title: String,
    width: String,
    height: String,
    label_width: String,
    bar_height: String,
    axis_bottom: String,
    bars: Vec<DrawnBar>,
}

fn px(value: f64) -> String {
    format!("{value:.1}")
}

/// A horizontal bar chart of `bars` (in the order given) on a scale from 0 to `scale` (at least
/// the largest value or target).
pub fn bar_chart(title: &str, bars: &[Bar], scale: f64) -> String {
    let top = bars
        .iter()
        .flat_map(|b| [b.value, b.target.unwrap_or(0.0)])
        .fold(scale, f64::max)
        .max(f64::EPSILON);
    let x = |value: f64| LABEL_WIDTH + BAR_WIDTH * (value.max(0.0) / top);
    let rows = bars.len() as f64;
    let drawn = bars
        .iter()
        .enumerate()
        .map(|(i, bar)| {
            let y = TOP + ROW_HEIGHT * i as f64;
            let end = x(bar.value);
            DrawnBar {
                y: px(y + 4.0),
                text_y: px(y + ROW_HEIGHT / 2.0 + 4.0),
                width: px(end - LABEL_WIDTH),
                label: bar.label.clone(),
                note: bar.note.clone(),
                note_x: px(end + 6.0),
                target_x: bar.target.map(|t| px(x(t))),
                alert: bar.alert,
            }
        })
        .collect();
    let svg = BarChartSvg {
        title: title.to_owned(),
        width: px(LABEL_WIDTH + BAR_WIDTH + NOTE_WIDTH),
        height: px(TOP + ROW_HEIGHT * rows + 10.0),
        label_width: px(LABEL_WIDTH),
        bar_height: px(ROW_HEIGHT - 8.0),
        axis_bottom: px(TOP + ROW_HEIGHT * rows),
        bars: drawn,
    };
    svg.render().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: f64) -> Bar {
        Bar {
            label: label.into(),
            value,
            note: format!("{value}%"),
            target: None,
            alert: false,
        }
    }

    #[test]
    fn bars_are_proportional_and_labels_are_escaped() {
        let svg = bar_chart(
            "化解率",
            &[bar("思明区", 80.0), bar("<script>湖里区", 40.0)],
            100.0,
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("width=\"304.0\""), "80% of 380: {svg}");
        assert!(svg.contains("width=\"152.0\""), "40% of 380: {svg}");
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&#60;script&#62;湖里区") || svg.contains("&lt;script&gt;湖里区"));
        assert!(svg.contains("<title>化解率</title>"));
    }

    #[test]
    fn a_target_is_marked_and_the_scale_stretches_to_it() {
        let mut with_target = bar("思明区", 50.0);
        with_target.target = Some(200.0);
        with_target.alert = true;
        let svg = bar_chart("进度", &[with_target], 100.0);
        assert!(svg.contains("width=\"95.0\""), "50 of 200 on 380: {svg}");
        assert!(svg.contains("class=\"target\""), "{svg}");
        assert!(svg.contains("class=\"bar alert\""), "{svg}");
    }
}
