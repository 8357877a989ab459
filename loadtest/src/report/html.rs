//! `--html FILE`: one self-contained page (inline SVG from plotters, no
//! scripts, no external resources) that opens offline.

use std::fmt::Write;

use plotters::prelude::*;

use super::json::WriteError;
use super::{Bucket, PlayReport};

const SIZE: (u32, u32) = (860, 300);

/// One line of a chart.
struct Line<'a> {
    label: &'a str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

fn chart_error(chart: &'static str) -> impl Fn(String) -> WriteError {
    move |reason| WriteError::Chart { chart, reason }
}

/// A line chart over seconds; `chart` names it in errors.
fn line_chart(chart: &'static str, y_desc: &str, lines: &[Line<'_>]) -> Result<String, WriteError> {
    let err = chart_error(chart);
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut c = ChartBuilder::on(&root)
            .caption(chart, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| err(e.to_string()))?;
        c.configure_mesh()
            .x_desc("seconds")
            .y_desc(y_desc)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for line in lines {
            let color = line.color;
            c.draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| err(e.to_string()))?
            .label(line.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// Bars for a bucketed distribution.
fn histogram(chart: &'static str, x_desc: &str, bars: &[Bucket]) -> Result<String, WriteError> {
    let err = chart_error(chart);
    let x_min = bars.first().map_or(0.0, |b| b.from);
    let x_max = bars.last().map_or(1.0, |b| b.to).max(x_min + 1e-3);
    let y_max = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut c = ChartBuilder::on(&root)
            .caption(chart, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(x_min..x_max, 0f64..y_max)
            .map_err(|e| err(e.to_string()))?;
        c.configure_mesh()
            .x_desc(x_desc)
            .y_desc("samples")
            .draw()
            .map_err(|e| err(e.to_string()))?;
        c.draw_series(bars.iter().map(|b| {
            Rectangle::new(
                [(b.from, 0.0), (b.to, b.count as f64)],
                BLUE.mix(0.6).filled(),
            )
        }))
        .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole page.
pub fn play(report: &PlayReport) -> Result<String, WriteError> {
    let s = &report.summary;
    let per_second = |f: &dyn Fn(&crate::stats::Interval) -> f64| -> Vec<(f64, f64)> {
        s.intervals
            .iter()
            .map(|i| (i.second as f64 + 1.0, f(i)))
            .collect()
    };
    let charts = [
        line_chart(
            "Latency behind live",
            "ms",
            &[
                Line {
                    label: "p50",
                    color: BLUE,
                    points: per_second(&|i| i.latency_p50_ms),
                },
                Line {
                    label: "max",
                    color: RED,
                    points: per_second(&|i| i.latency_max_ms),
                },
            ],
        )?,
        histogram(
            "Latency behind live (distribution)",
            "ms behind live",
            &report.histograms.latency_behind_live_ms,
        )?,
        line_chart(
            "Request latency (time to last byte)",
            "ms",
            &[
                Line {
                    label: "p50",
                    color: BLUE,
                    points: per_second(&|i| i.request_p50_ms),
                },
                Line {
                    label: "p99",
                    color: RED,
                    points: per_second(&|i| i.request_p99_ms),
                },
            ],
        )?,
        histogram(
            "Request latency (distribution)",
            "ms",
            &report.histograms.request_ms,
        )?,
        line_chart(
            "Media throughput",
            "Mbit/s",
            &[Line {
                label: "throughput",
                color: GREEN,
                points: per_second(&|i| i.throughput_bps as f64 / 1e6),
            }],
        )?,
        line_chart(
            "Viewers and harness CPU",
            "viewers / % of one core",
            &[
                Line {
                    label: "viewers",
                    color: BLUE,
                    points: report
                        .timeline
                        .iter()
                        .map(|t| (t.second as f64 + 1.0, t.viewers as f64))
                        .collect(),
                },
                Line {
                    label: "harness CPU %",
                    color: MAGENTA,
                    points: report
                        .timeline
                        .iter()
                        .map(|t| (t.second as f64 + 1.0, t.cpu_percent))
                        .collect(),
                },
            ],
        )?,
    ];
    let mut page = String::new();
    let title = format!(
        "livecdn loadtest: {} viewers, {}",
        report.run.viewers, report.run.protocol
    );
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}\
         pre{{background:#f4f4f4;padding:1em;overflow:auto}}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        page,
        "<p>URL: <code>{}</code></p>\n<pre>{}</pre>",
        escape(&report.run.url),
        escape(&super::text::play(report))
    );
    for svg in &charts {
        let _ = writeln!(page, "<div>{svg}</div>");
    }
    let json = super::json::to_string(report)?;
    let _ = writeln!(
        page,
        "<details><summary>All figures (JSON)</summary><pre>{}</pre></details>\n</body></html>",
        escape(&json)
    );
    Ok(page)
}
