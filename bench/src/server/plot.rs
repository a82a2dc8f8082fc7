//! `--plot FILE.svg`: latency over time (p50 and p99 per time bucket) above the latency
//! percentile curve, one colour per endpoint set.
//!
//! plotters' SVG backend with no font feature: text is emitted as SVG `<text>` and its size is
//! estimated, so no font file or system font library is needed to draw.

use std::path::Path;

use plotters::prelude::*;

use super::report::Report;

/// Colours of side A and side B.
const SIDE_COLORS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];
/// Percentile curve: points per decade of "nines".
const CURVE_POINTS_PER_NINE: u32 = 20;
/// Percentile curve: up to 99.999 %.
const CURVE_NINES_MAX: f64 = 5.0;

/// One line of a chart: its label and (x, y) points.
type Line = (String, Vec<(f64, f64)>);

/// Latency over time for a report: (seconds, p50 ms) and (seconds, p99 ms) per bucket.
pub fn timeline_lines(report: &Report) -> [Line; 2] {
    let width = report.outcome.timeline.bucket_width().as_secs_f64();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for (index, bucket) in report.outcome.timeline.buckets().iter().enumerate() {
        if bucket.is_empty() {
            continue;
        }
        let t = (index as f64 + 0.5) * width;
        p50.push((t, bucket.value_at_quantile(0.50) as f64 / 1000.0));
        p99.push((t, bucket.value_at_quantile(0.99) as f64 / 1000.0));
    }
    [("p50".into(), p50), ("p99".into(), p99)]
}

/// The percentile curve: x is the number of nines (1 = 90 %, 2 = 99 %), y the latency in ms.
pub fn percentile_curve(report: &Report) -> Vec<(f64, f64)> {
    let latency = &report.outcome.latency;
    if latency.is_empty() {
        return Vec::new();
    }
    let steps = (CURVE_NINES_MAX * CURVE_POINTS_PER_NINE as f64) as u32;
    (0..=steps)
        .map(|step| {
            let nines = step as f64 / CURVE_POINTS_PER_NINE as f64;
            let quantile = 1.0 - 10f64.powf(-nines);
            (nines, latency.value_at_quantile(quantile) as f64 / 1e6)
        })
        .collect()
}

/// Draws the reports (one or two sides) into an SVG file.
pub fn write_svg(path: &Path, reports: &[&Report]) -> Result<(), String> {
    draw(path, reports).map_err(|error| format!("cannot draw {}: {error}", path.display()))
}

fn draw(path: &Path, reports: &[&Report]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1000, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(400);
    let workload = reports.first().map_or("", |r| r.workload.as_str());

    let timelines: Vec<(usize, [Line; 2])> = reports
        .iter()
        .enumerate()
        .map(|(side, report)| (side, timeline_lines(report)))
        .collect();
    let points = || {
        timelines
            .iter()
            .flat_map(|(_, lines)| lines.iter().flat_map(|l| &l.1))
    };
    let t_max = points().map(|p| p.0).fold(1.0, f64::max);
    let y_max = points().map(|p| p.1).fold(0.001, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&upper)
        .caption(format!("{workload}: latency over time"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("latency (ms)")
        .draw()?;
    for (side, lines) in &timelines {
        let color = SIDE_COLORS[side % SIDE_COLORS.len()];
        for (index, (name, line)) in lines.iter().enumerate() {
            let style = color.stroke_width(if index == 0 { 1 } else { 2 });
            let label = format!("{} {name}", side_label(reports, *side));
            chart
                .draw_series(LineSeries::new(line.iter().copied(), style))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    let curves: Vec<Vec<(f64, f64)>> = reports.iter().map(|r| percentile_curve(r)).collect();
    let y_max = curves.iter().flatten().map(|p| p.1).fold(0.001, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&lower)
        .caption(
            format!("{workload}: latency by percentile"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..CURVE_NINES_MAX, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(6)
        .x_label_formatter(&|nines| nines_label(*nines))
        .draw()?;
    for (side, curve) in curves.iter().enumerate() {
        let color = SIDE_COLORS[side % SIDE_COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                curve.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(side_label(reports, side))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}

/// "A 127.0.0.1:2379" style label of a side.
fn side_label(reports: &[&Report], side: usize) -> String {
    let name = if reports.len() > 1 {
        ["A ", "B "][side.min(1)]
    } else {
        ""
    };
    format!("{name}{}", reports[side].endpoints.join(","))
}

/// 0 → "0%", 1 → "90%", 2 → "99%", 3 → "99.9%".
pub fn nines_label(nines: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let decimals = (nines.round() as i32 - 2).max(0) as usize;
    format!("{percent:.decimals$}%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::recorder::Recorder;
    use std::time::Duration;

    fn report() -> Report {
        let recorder = Recorder::start();
        for millis in 1..=1000u64 {
            recorder.success(Duration::from_micros(millis * 10));
        }
        let outcome = recorder.finish(Duration::from_secs(1));
        Report::new("put", &["127.0.0.1:2379".to_string()], &outcome)
    }

    // Goal: the percentile axis labels read as percentiles.
    #[test]
    fn nines_label_reads_as_percentiles() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(5.0), "99.999%");
    }

    // Goal: the curve rises with the percentile and ends at the maximum; the SVG is written
    // with both charts' captions.
    #[test]
    fn curve_is_monotonic_and_svg_is_written() {
        let report = report();
        let curve = percentile_curve(&report);
        assert!(curve.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        assert!((curve.last().unwrap().1 - 10.0).abs() < 0.1);
        let dir = std::env::temp_dir().join(format!("basalt-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plot.svg");
        write_svg(&path, &[&report, &report]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("latency over time"));
        assert!(svg.contains("latency by percentile"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
