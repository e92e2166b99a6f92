//! Line charts for run reports, written as both SVG (for the web) and PNG (for everything else): one drawing
//! path for every recipe's report (the o1 report and the AlphaZero report).
//!
//! The font is embedded (DejaVu Sans, see `assets/DejaVuSans.LICENSE`) so plots render the same on any
//! machine without system font libraries.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

/// One named line of (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// What a chart shows and how its x axis is scaled.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Base-2 logarithmic x axis (budgets and FLOPs span orders of magnitude).
    pub log_x: bool,
    pub series: &'a [Series],
}

/// A chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw chart {path}: {message}")]
pub struct PlotError {
    path: String,
    message: String,
}

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (900, 560);
/// Okabe-Ito colours: distinguishable with every common colour-vision deficiency.
const COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a compile-time constant known to parse; a failure here would be a build defect,
        // and plotters then falls back to drawing no text rather than failing.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Writes `<stem>.svg` and `<stem>.png`.
pub fn write_chart(stem: &Path, chart: &Chart<'_>) -> Result<(), PlotError> {
    register_font();
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let fail = |path: &Path, err: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        message: err.to_string(),
    };
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        draw(&root, chart).map_err(|e| fail(&svg, &e))?;
        root.present().map_err(|e| fail(&svg, &e))?;
    }
    let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
    draw(&root, chart).map_err(|e| fail(&png, &e))?;
    root.present().map_err(|e| fail(&png, &e))?;
    Ok(())
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart<'_>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let points = chart.series.iter().flat_map(|s| s.points.iter().copied());
    let finite: Vec<(f64, f64)> =
        points.filter(|(x, y)| x.is_finite() && y.is_finite() && (!chart.log_x || *x > 0.0)).collect();
    let (mut x_min, mut x_max) = bounds(finite.iter().map(|p| p.0));
    let (mut y_min, mut y_max) = bounds(finite.iter().map(|p| p.1));
    if chart.log_x {
        x_min = x_min.max(f64::MIN_POSITIVE);
        x_max = x_max.max(x_min * 2.0);
    } else if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    if y_max <= y_min {
        y_min -= 0.5;
        y_max += 0.5;
    }
    let pad = (y_max - y_min) * 0.05;
    let (y_lo, y_hi) = (y_min - pad, y_max + pad);

    let mut builder = ChartBuilder::on(root);
    builder.caption(chart.title, ("sans-serif", 24)).margin(16).x_label_area_size(48).y_label_area_size(64);
    if chart.log_x {
        let mut ctx = builder.build_cartesian_2d((x_min..x_max).log_scale().base(2.0), y_lo..y_hi)?;
        ctx.configure_mesh().x_desc(chart.x_label).y_desc(chart.y_label).x_label_formatter(&short_number).draw()?;
        draw_series(&mut ctx, chart)?;
        legend(&mut ctx)
    } else {
        let mut ctx = builder.build_cartesian_2d(x_min..x_max, y_lo..y_hi)?;
        ctx.configure_mesh().x_desc(chart.x_label).y_desc(chart.y_label).x_label_formatter(&short_number).draw()?;
        draw_series(&mut ctx, chart)?;
        legend(&mut ctx)
    }
}

fn draw_series<'b, DB, X, Y>(ctx: &mut ChartContext<'b, DB, Cartesian2d<X, Y>>, chart: &Chart<'_>) -> DrawResult<DB>
where
    DB: DrawingBackend + 'b,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (index, series) in chart.series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let points: Vec<(f64, f64)> =
            series.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        // Past the eight colours, the series are dashed with triangles, so a colour is never ambiguous.
        if index < COLORS.len() {
            ctx.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(series.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            ctx.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        } else {
            ctx.draw_series(DashedLineSeries::new(points.clone(), 8, 5, color.stroke_width(2)))?
                .label(series.name.as_str())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (8, 0)], color.stroke_width(2))
                        + PathElement::new(vec![(12, 0), (20, 0)], color.stroke_width(2))
                });
            ctx.draw_series(points.into_iter().map(|p| TriangleMarker::new(p, 4, color.filled())))?;
        }
    }
    Ok(())
}

fn legend<'b, DB, X, Y>(ctx: &mut ChartContext<'b, DB, Cartesian2d<X, Y>>) -> DrawResult<DB>
where
    DB: DrawingBackend + 'b,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// Axis labels like `64`, `1.5k`, `3.2M`, `1.1G`, `2.0T`.
fn short_number(value: &f64) -> String {
    let v = *value;
    let abs = v.abs();
    let (scaled, suffix) = match abs {
        a if a >= 1e12 => (v / 1e12, "T"),
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    if suffix.is_empty() && (v.fract() == 0.0) {
        format!("{v:.0}")
    } else if suffix.is_empty() {
        format!("{v:.2}")
    } else {
        format!("{scaled:.1}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("selfplay-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let series = [
            Series { name: "greedy".into(), points: vec![(1.0, 0.2), (64.0, 0.2)] },
            Series { name: "majority".into(), points: vec![(1.0, 0.2), (4.0, 0.3), (64.0, 0.45)] },
        ];
        let chart =
            Chart { title: "accuracy vs budget", x_label: "budget", y_label: "accuracy", log_x: true, series: &series };
        write_chart(&dir.join("test_time"), &chart).unwrap();
        let svg = std::fs::read_to_string(dir.join("test_time.svg")).unwrap();
        assert!(svg.contains("majority") && svg.contains("<svg"));
        let png = std::fs::read(dir.join("test_time.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Nine series: the ninth shares the first's colour, so it is drawn dashed with triangles (polygons), which
    /// the first eight never are.
    #[test]
    fn series_past_the_palette_are_dashed_with_triangles() {
        let dir = std::env::temp_dir().join(format!("selfplay-plot-many-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let series: Vec<Series> =
            (0..9).map(|i| Series { name: format!("s{i}"), points: vec![(1.0, 0.1 * i as f64), (2.0, 0.5)] }).collect();
        let chart = Chart { title: "t", x_label: "x", y_label: "y", log_x: false, series: &series };
        write_chart(&dir.join("eight"), &Chart { series: &series[..8], ..chart }).unwrap();
        write_chart(&dir.join("nine"), &chart).unwrap();
        let svg = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.svg"))).unwrap();
        assert!(!svg("eight").contains("<polygon"));
        assert!(svg("nine").contains("<polygon") && svg("nine").contains("s8"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_and_degenerate_series_still_draw() {
        let dir = std::env::temp_dir().join(format!("selfplay-plot-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let series = [Series { name: "flat".into(), points: vec![(3.0, 0.5), (f64::NAN, 1.0)] }];
        let chart = Chart { title: "t", x_label: "x", y_label: "y", log_x: false, series: &series };
        write_chart(&dir.join("flat"), &chart).unwrap();
        write_chart(&dir.join("none"), &Chart { series: &[], ..chart }).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(&64.0), "64");
        assert_eq!(short_number(&1500.0), "1.5k");
        assert_eq!(short_number(&3.2e9), "3.2G");
        assert_eq!(short_number(&0.25), "0.25");
    }
}
