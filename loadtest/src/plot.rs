//! `--plot`: an SVG with, for every phase, the latency percentiles of each target (log
//! scale) beside its throughput.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{PhaseReport, Report};

const ROW_HEIGHT: u32 = 380;
const WIDTH: u32 = 1400;

fn color_of(target: &str, index: usize) -> RGBColor {
    match target {
        "direct" => RGBColor(120, 120, 120),
        "nginx" => RGBColor(0, 150, 57),
        "sigv4-proxy" => RGBColor(31, 90, 200),
        "incumbent" => RGBColor(214, 39, 40),
        _ => {
            let palette = [
                RGBColor(148, 103, 189),
                RGBColor(255, 127, 14),
                RGBColor(23, 190, 207),
                RGBColor(140, 86, 75),
            ];
            palette[index % palette.len()]
        }
    }
}

/// Whether a phase is judged by bandwidth (big answers) rather than requests per second.
pub(crate) fn by_bandwidth(phase: &PhaseReport) -> bool {
    phase.name.starts_with("stream")
}

pub(crate) fn write_svg(report: &Report, path: &Path) -> Result<(), String> {
    let rows = report.phases.len().max(1);
    let root = SVGBackend::new(path, (WIDTH, ROW_HEIGHT * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((rows, 2));
    for (index, phase) in report.phases.iter().enumerate() {
        latency_chart(&areas[index * 2], phase)?;
        throughput_chart(&areas[index * 2 + 1], phase)?;
    }
    root.present()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn latency_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    phase: &PhaseReport,
) -> Result<(), String> {
    let values = phase
        .results
        .iter()
        .flat_map(|r| r.summary.latency_ms.points().map(|(_, v)| v))
        .filter(|v| *v > 0.0);
    let (low, high) = values.fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (low, high) = if high <= 0.0 {
        (0.01, 1.0)
    } else {
        (low / 1.5, high * 1.5)
    };
    let labels = ["p50", "p90", "p99", "p99.9", "max"];
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: latency (ms, log scale)", phase.name),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0i32..4i32, (low..high).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(5)
        .y_labels(8)
        .x_label_formatter(&|x| {
            labels
                .get(usize::try_from(*x).unwrap_or(usize::MAX))
                .copied()
                .unwrap_or("")
                .to_owned()
        })
        .y_label_formatter(&|y| {
            if *y >= 10.0 {
                format!("{y:.0}")
            } else if *y >= 1.0 {
                format!("{y:.1}")
            } else {
                format!("{y:.2}")
            }
        })
        .y_desc("ms")
        .draw()
        .map_err(|e| e.to_string())?;
    for (index, result) in phase.results.iter().enumerate() {
        let color = color_of(&result.target, index);
        let points: Vec<(i32, f64)> = result
            .summary
            .latency_ms
            .points()
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (i as i32, v.max(low)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(result.target.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| e.to_string())
}

fn throughput_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    phase: &PhaseReport,
) -> Result<(), String> {
    let bandwidth = by_bandwidth(phase);
    let values: Vec<f64> = phase
        .results
        .iter()
        .map(|r| {
            if bandwidth {
                r.summary.mb_per_s_received
            } else {
                r.summary.requests_per_s
            }
        })
        .collect();
    let top = values.iter().copied().fold(0.0_f64, f64::max).max(1.0) * 1.2;
    let names: Vec<String> = phase.results.iter().map(|r| r.target.clone()).collect();
    // A segmented range a..b has b - a + 1 segments: one per target.
    let last = names.len().max(1) as i32 - 1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{}: throughput ({})",
                phase.name,
                if bandwidth { "MB/s" } else { "requests/s" }
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d((0..last).into_segmented(), 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|value| match value {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names
                .get(usize::try_from(*i).unwrap_or(usize::MAX))
                .cloned()
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (index, (result, value)) in phase.results.iter().zip(&values).enumerate() {
        let color = color_of(&result.target, index);
        let i = index as i32;
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), *value),
            ],
            color.filled(),
        );
        bar.set_margin(0, 0, 20, 20);
        chart
            .draw_series(std::iter::once(bar))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{value:.0}"),
                (SegmentValue::CenterOf(i), *value + top * 0.02),
                ("sans-serif", 15)
                    .into_font()
                    .into_text_style(area)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procwatch::Machine;
    use crate::report::TargetResult;
    use crate::stats::{Percentiles, Summary};

    #[test]
    fn writes_an_svg_with_every_phase_and_target() {
        let result = |target: &str, rps: f64| TargetResult {
            target: target.into(),
            summary: Summary {
                requests_per_s: rps,
                latency_ms: Percentiles {
                    p50: 0.3,
                    p90: 0.5,
                    p99: 1.0,
                    p99_9: 3.0,
                    max: 9.0,
                    mean: 0.35,
                },
                ..Summary::default()
            },
        };
        let report = Report {
            tool: "loadtest".into(),
            command: String::new(),
            machine: Machine::read(),
            targets: vec![],
            phases: vec![PhaseReport {
                name: "query".into(),
                workload: String::new(),
                load: String::new(),
                results: vec![result("nginx", 20000.0), result("sigv4-proxy", 21000.0)],
            }],
            checks: vec![],
            notes: vec![],
        };
        let dir = std::env::temp_dir().join(format!("loadtest-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("plot.svg");
        write_svg(&report, &path).expect("plots");
        let svg = std::fs::read_to_string(&path).expect("written");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("query: latency"));
        assert!(svg.contains("sigv4-proxy"));
        assert!(svg.contains("21000"));
    }
}
