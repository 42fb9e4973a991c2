//! Sweep charts with plotters, as SVG and PNG. Text is drawn with DejaVu Sans from the `dejavu`
//! crate (registered with plotters' ab_glyph backend), so no system font is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::curve::Point;
use crate::stats::{LoadCell, Pct, Summary};

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

const WARREN: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(23, 190, 207), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];
const ZK: [RGBColor; 4] =
    [RGBColor(214, 39, 40), RGBColor(255, 127, 14), RGBColor(140, 86, 75), RGBColor(227, 119, 194)];

struct Series {
    name: String,
    color: RGBColor,
    points: Vec<(f64, Summary)>,
}

/// One series per (system, size) with at least one measured cell, in a stable order.
fn series(cells: &[LoadCell], with_echo: bool) -> Vec<Series> {
    let mut keys: Vec<(String, usize)> = cells.iter().map(|c| (c.system.clone(), c.nodes)).collect();
    keys.sort();
    keys.dedup();
    let mut sizes: Vec<usize> = cells.iter().map(|c| c.nodes).collect();
    sizes.sort();
    sizes.dedup();
    let mut out = Vec::new();
    for (sys, n) in keys {
        if sys == "echo" && !with_echo {
            continue;
        }
        let mut points: Vec<(f64, Summary)> = cells
            .iter()
            .filter(|c| c.system == sys && c.nodes == n)
            .filter_map(|c| c.res.as_ref().ok().map(|s| (c.ratio, s.clone())))
            .collect();
        if points.is_empty() {
            continue;
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let i = sizes.iter().position(|&s| s == n).unwrap_or(0) % 4;
        let (name, color) = match sys.as_str() {
            "echo" => ("echo ceiling".to_string(), BLACK),
            "warren" => (format!("Warren x{n}"), WARREN[i]),
            "zookeeper" => (format!("ZooKeeper x{n}"), ZK[i]),
            other => (format!("{other} x{n}"), RGBColor(100, 100, 100)),
        };
        out.push(Series { name, color, points });
    }
    out
}

fn bounds(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = vals.filter(|v| *v > 0.0).collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    if v.is_empty() {
        (1.0, 10.0)
    } else {
        (lo / 1.6, hi * 1.6)
    }
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    ss: &[Series],
    value: &dyn Fn(&Summary) -> f64,
    legend: bool,
) -> Result<(), String> {
    let (lo, hi) = bounds(ss.iter().flat_map(|s| s.points.iter().map(|(_, p)| value(p))));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.03f64..1.03f64, (lo..hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("read ratio (getData share)")
        .y_desc(y_desc)
        .x_labels(11)
        .y_label_formatter(&|v| human(*v))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for s in ss {
        let pts: Vec<(f64, f64)> = s.points.iter().map(|(r, p)| (*r, value(p))).filter(|(_, v)| *v > 0.0).collect();
        let color = s.color;
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    if legend && !ss.is_empty() {
        draw_legend(&mut chart)?;
    }
    Ok(())
}

fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_throughput<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, cells: &[LoadCell]) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ss = series(cells, true);
    panel(&root, "Throughput against read ratio (log scale)", "ops/s", &ss, &|s| s.ops_per_s(), true)?;
    root.present().map_err(|e| e.to_string())
}

fn draw_latency<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, cells: &[LoadCell]) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ss = series(cells, false);
    let panels = root.split_evenly((2, 2));
    let pick: [(&str, fn(&Pct) -> u64); 4] =
        [("p50", |p| p.p50), ("p90", |p| p.p90), ("p99", |p| p.p99), ("p99.9", |p| p.p999)];
    for (i, (area, (name, f))) in panels.iter().zip(pick).enumerate() {
        panel(area, &format!("latency {name}, all ops"), "microseconds", &ss, &|s| f(&s.all) as f64, i == 0)?;
    }
    root.present().map_err(|e| e.to_string())
}

fn draw_curve<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, points: &[Point]) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut keys: Vec<(String, u64)> = points.iter().map(|p| (p.system.clone(), (p.ratio * 1000.0) as u64)).collect();
    keys.sort();
    keys.dedup();
    let line = |sys: &str, r: u64| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter(|p| p.system == sys && (p.ratio * 1000.0) as u64 == r)
            .map(|p| (p.summary.ops_per_s(), p.summary.all.p99 as f64 / 1000.0))
            .filter(|&(o, l)| o > 0.0 && l > 0.0)
            .collect()
    };
    let (xlo, xhi) = bounds(keys.iter().flat_map(|(s, r)| line(s, *r)).map(|p| p.0));
    let (ylo, yhi) = bounds(keys.iter().flat_map(|(s, r)| line(s, *r)).map(|p| p.1));
    let mut chart = ChartBuilder::on(&root)
        .caption("p99 latency against throughput as offered load rises (log scales)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d((xlo..xhi).log_scale(), (ylo..yhi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("throughput, ops/s")
        .y_desc("p99 latency, ms")
        .x_label_formatter(&|v| human(*v))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (sys, r)) in keys.iter().enumerate() {
        let (label, color) = match sys.as_str() {
            "warren" => ("Warren", WARREN[i % 4]),
            "zookeeper" => ("ZooKeeper", ZK[i % 4]),
            other => (other, RGBColor(100, 100, 100)),
        };
        let pts = line(sys, *r);
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("{label}, read ratio {}", *r as f64 / 1000.0))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    if !keys.is_empty() {
        draw_legend(&mut chart)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// The throughput-latency curve: `base.svg` and `base.png`.
pub fn curve(points: &[Point], base: &Path) -> Result<(), String> {
    fonts();
    let (svg, png) = (base.with_extension("svg"), base.with_extension("png"));
    draw_curve(SVGBackend::new(&svg, (960, 600)).into_drawing_area(), points)?;
    draw_curve(BitMapBackend::new(&png, (960, 600)).into_drawing_area(), points)
}

/// Writes `base.svg` and `base.png`.
pub fn throughput(cells: &[LoadCell], base: &Path) -> Result<(), String> {
    fonts();
    let (svg, png) = (base.with_extension("svg"), base.with_extension("png"));
    draw_throughput(SVGBackend::new(&svg, (960, 600)).into_drawing_area(), cells)?;
    draw_throughput(BitMapBackend::new(&png, (960, 600)).into_drawing_area(), cells)
}

pub fn latency(cells: &[LoadCell], base: &Path) -> Result<(), String> {
    fonts();
    let (svg, png) = (base.with_extension("svg"), base.with_extension("png"));
    draw_latency(SVGBackend::new(&svg, (1200, 860)).into_drawing_area(), cells)?;
    draw_latency(BitMapBackend::new(&png, (1200, 860)).into_drawing_area(), cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_render_to_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("loadgen-chart-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cells = crate::stats::fixtures::cells();
        throughput(&cells, &dir.join("throughput")).unwrap();
        latency(&cells, &dir.join("latency")).unwrap();
        for f in ["throughput.svg", "latency.svg"] {
            let s = std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(s.starts_with("<svg"), "{f}");
            assert!(s.contains("ZooKeeper x3"), "{f} has the legend");
        }
        assert!(std::fs::read_to_string(dir.join("throughput.svg")).unwrap().contains("echo ceiling"));
        for f in ["throughput.png", "latency.png"] {
            let b = std::fs::read(dir.join(f)).unwrap();
            assert_eq!(&b[1..4], b"PNG", "{f}");
            assert!(b.len() > 10_000, "{f} has content");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn curve_chart_has_both_systems() {
        let dir = std::env::temp_dir().join(format!("loadgen-chart-curve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pt = |system: &str, ops, p50| Point {
            system: system.into(),
            ratio: 0.9,
            clients: 1,
            outstanding: 1,
            summary: crate::stats::fixtures::summary(ops, p50),
        };
        let pts =
            [pt("warren", 1000, 100), pt("warren", 9000, 300), pt("zookeeper", 800, 900), pt("zookeeper", 4000, 5000)];
        curve(&pts, &dir.join("curve")).unwrap();
        let s = std::fs::read_to_string(dir.join("curve.svg")).unwrap();
        assert!(s.contains("Warren, read ratio 0.9") && s.contains("ZooKeeper, read ratio 0.9"));
        assert_eq!(&std::fs::read(dir.join("curve.png")).unwrap()[1..4], b"PNG");
        curve(&[], &dir.join("empty")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_sweeps_still_draw() {
        let dir = std::env::temp_dir().join(format!("loadgen-chart-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        throughput(&[], &dir.join("t")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
