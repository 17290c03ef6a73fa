//! SVG charts of a run, drawn with plotters' SVG backend (text is SVG `<text>`, so no font
//! files are needed to draw and the browser picks a sans-serif face to show it).
//!
//! Two kinds per workload: throughput against thread count (one line per map, each point with
//! a whisker from its lowest to its highest sample, the measured limit as a dashed line, the
//! mix under the title, thread counts above the CPU count marked) and sampled latency
//! percentiles per map (log scale: p999 is often 100× p50). Legends sit in a strip right of
//! the plot so they never cover a line.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::adapter::{MapKind, MapRole};
use super::report::{display_name, limit_mops, limit_reference};
use super::run::BenchResult;
use super::workload::Workload;

/// Width and height of every chart, in pixels.
pub const CHART_SIZE: (u32, u32) = (680, 420);

/// Width of the legend strip right of the plot.
const LEGEND_WIDTH: u32 = 175;

const FONT: &str = "sans-serif";
const INK: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(225, 225, 225);

/// The colour of a map's line: warm colours for mapguard's maps, cool and muted ones for
/// the peers (colour-blind-safe Tableau 10 hues).
pub fn map_colour(map: MapKind) -> RGBColor {
    match map {
        MapKind::Sharded => RGBColor(0xe1, 0x57, 0x59),
        MapKind::ReadMostly => RGBColor(0xf2, 0x8e, 0x2b),
        MapKind::Locked => RGBColor(0xb0, 0x7a, 0xa1),
        MapKind::Dashmap => RGBColor(0x4e, 0x79, 0xa7),
        MapKind::Papaya => RGBColor(0x59, 0xa1, 0x4f),
        MapKind::Scc => RGBColor(0x76, 0xb7, 0xb2),
        MapKind::RwLockStd => RGBColor(0x9c, 0x75, 0x5f),
        MapKind::MutexStd => RGBColor(0x8c, 0x8c, 0x8c),
        MapKind::Hashbrown => RGBColor(0, 0, 0),
        MapKind::Calibration => RGBColor(0x55, 0x55, 0x55),
    }
}

fn line_width(map: MapKind) -> u32 {
    if map.role() == MapRole::Ours { 3 } else { 2 }
}

/// One chart: a file name (relative to the report directory), a title and the SVG text.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File name, e.g. `throughput-seed95.svg`.
    pub file: String,
    /// What the chart shows, for the page's alt text and caption.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

fn text_style(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

/// How a legend entry shows its series.
#[derive(Clone, Copy, Debug)]
enum Swatch {
    Line,
    Dashed,
    Dot,
    Ring,
}

/// Draws the legend strip: one sample of the series' mark and its name per entry.
fn legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[(String, ShapeStyle, Swatch)],
) -> Result<(), String> {
    let top = 50;
    for (i, (name, style, swatch)) in entries.iter().enumerate() {
        let y = top + 22 * i as i32;
        match swatch {
            Swatch::Dashed => {
                for x in (8..36).step_by(8) {
                    area.draw(&PathElement::new(vec![(x, y), (x + 4, y)], *style))
                        .map_err(|e| e.to_string())?;
                }
            }
            Swatch::Line => area
                .draw(&PathElement::new(vec![(8, y), (36, y)], *style))
                .map_err(|e| e.to_string())?,
            Swatch::Dot => area
                .draw(&Circle::new((22, y), 5, style.color.filled()))
                .map_err(|e| e.to_string())?,
            Swatch::Ring => area
                .draw(&Circle::new((22, y), 8, style.color.stroke_width(3)))
                .map_err(|e| e.to_string())?,
        }
        area.draw(&Text::new(name.clone(), (44, y - 7), text_style(13)))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The maps of `results` in drawing order, the baseline and `limit` (drawn as the limit) left
/// out: the peers and the reference first, mapguard's maps last, so that no line of ours is
/// hidden behind a peer's.
fn maps_in(results: &[&BenchResult], limit: MapKind) -> Vec<MapKind> {
    let mut maps: Vec<MapKind> = MapKind::ALL
        .into_iter()
        .filter(|m| *m != MapKind::Hashbrown && *m != limit)
        .filter(|m| results.iter().any(|r| r.map == *m))
        .collect();
    // A stable sort: within each group the order of `MapKind::ALL` stays.
    maps.sort_by_key(|m| m.role() == MapRole::Ours);
    maps
}

/// The label of thread count `t` on a chart's axis: marked when it is more than the machine's
/// `cpus` (the threads then take turns on the cores).
fn thread_label(t: usize, cpus: usize) -> String {
    if t > cpus {
        format!("{t}*")
    } else {
        t.to_string()
    }
}

/// Throughput against thread count on `workload`: one line per map with whiskers over its
/// samples, the limit measured at each thread count ([`limit_mops`]) as a dashed line. Failed
/// cells are left out of their line.
pub fn throughput_chart(results: &[BenchResult], workload: &Workload) -> Result<Chart, String> {
    let cells: Vec<&BenchResult> = results
        .iter()
        .filter(|r| r.workload.name == workload.name && !r.failed())
        .collect();
    let mut threads: Vec<usize> = cells
        .iter()
        .filter(|r| r.map != MapKind::Hashbrown)
        .map(|r| r.threads)
        .collect();
    threads.sort_unstable();
    threads.dedup();
    let reference = limit_reference(workload);
    let limit: Vec<(usize, f64)> = threads
        .iter()
        .filter_map(|&t| limit_mops(results, workload, t).map(|l| (t, l)))
        .collect();
    let limit_top = limit.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let maps_top = cells
        .iter()
        .filter(|r| r.map != MapKind::Hashbrown && r.map != reference)
        .flat_map(|r| r.mops_samples.iter().copied())
        .fold(0.0f64, f64::max)
        .max(0.1);
    // A limit far above every map would squeeze their lines into the bottom of the chart: it
    // is then named in the legend instead of drawn.
    let limit_on_chart = !limit.is_empty() && limit_top <= 3.0 * maps_top;
    let top = if limit_on_chart {
        limit_top.max(maps_top)
    } else {
        maps_top
    } * 1.12;
    // Thread counts sit at evenly spaced positions (1, 2, 8 would crowd on a linear axis),
    // one labelled segment each.
    let position =
        |t: usize| SegmentValue::CenterOf(threads.iter().position(|x| *x == t).unwrap_or(0) as i32);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let x_desc = if threads.iter().any(|&t| t > cpus) {
        format!("worker threads (* more than the {cpus} CPUs)")
    } else {
        "worker threads".to_owned()
    };
    let title = format!("{}: throughput by thread count", workload.name);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, side) = root.split_horizontally(CHART_SIZE.0 - LEGEND_WIDTH);
        let segments = threads.len().max(1) as i32;
        // The title, and the mix under it.
        let (head, body) = plot.split_vertically(48);
        head.draw(&Text::new(title.clone(), (70, 10), text_style(18)))
            .map_err(|e| e.to_string())?;
        head.draw(&Text::new(workload.summary(), (70, 32), text_style(12)))
            .map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .margin_top(4)
            .x_label_area_size(42)
            .y_label_area_size(58)
            .build_cartesian_2d((0..segments - 1).into_segmented(), 0.0..top)
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = threads.iter().map(|&t| thread_label(t, cpus)).collect();
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .disable_x_mesh()
            .x_labels(segments as usize + 1)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_labels(8)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc(x_desc)
            .y_desc("Mops/s (higher is better)")
            .label_style(text_style(13))
            .axis_desc_style(text_style(14))
            .draw()
            .map_err(|e| e.to_string())?;
        let mut entries = Vec::new();
        let limit_name = match reference {
            MapKind::Hashbrown => "limit: shared reads",
            _ => "limit: calibration",
        };
        if limit_on_chart {
            let style = BLACK.stroke_width(2);
            let points: Vec<(SegmentValue<i32>, f64)> =
                limit.iter().map(|&(t, l)| (position(t), l)).collect();
            let points = if points.len() == 1 {
                // One thread count: a level line across the chart.
                vec![
                    (SegmentValue::Exact(0), points[0].1),
                    (SegmentValue::Last, points[0].1),
                ]
            } else {
                points
            };
            chart
                .draw_series(DashedLineSeries::new(points, 8, 6, style))
                .map_err(|e| e.to_string())?;
            entries.push((limit_name.to_owned(), style, Swatch::Dashed));
        } else if !limit.is_empty() {
            entries.push((
                format!("{limit_name}: up to {limit_top:.0}"),
                BLACK.stroke_width(2),
                Swatch::Dashed,
            ));
            entries.push((
                "(far above the chart)".to_owned(),
                WHITE.into(),
                Swatch::Line,
            ));
        }
        for map in maps_in(&cells, reference) {
            let mut points: Vec<&BenchResult> =
                cells.iter().copied().filter(|r| r.map == map).collect();
            points.sort_by_key(|r| r.threads);
            let colour = map_colour(map);
            // Whiskers first, from the lowest sample to the highest, under the line.
            chart
                .draw_series(points.iter().filter(|r| r.mops_samples.len() > 1).map(|r| {
                    let lo = r.mops_samples.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = r.mops_samples.iter().copied().fold(0.0f64, f64::max);
                    PathElement::new(
                        vec![(position(r.threads), lo), (position(r.threads), hi)],
                        colour.mix(0.6).stroke_width(1),
                    )
                }))
                .map_err(|e| e.to_string())?;
            let points: Vec<(SegmentValue<i32>, f64)> = points
                .iter()
                .map(|r| (position(r.threads), r.mops()))
                .collect();
            let style = colour.stroke_width(line_width(map));
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|p| Circle::new(p.clone(), 3 + line_width(map) / 2, colour.filled())),
                )
                .map_err(|e| e.to_string())?;
            entries.push((display_name(map), style, Swatch::Line));
        }
        legend(&side, &entries)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Chart {
        file: format!("throughput-{}.svg", workload.name),
        title,
        svg,
    })
}

/// The thread count whose latencies the latency chart shows: 2 (the two-core case) when run,
/// else the largest.
pub fn latency_threads(results: &[BenchResult], workload: &Workload) -> Option<usize> {
    let threads: Vec<usize> = results
        .iter()
        .filter(|r| r.workload.name == workload.name && r.map != MapKind::Hashbrown)
        .map(|r| r.threads)
        .collect();
    if threads.contains(&2) {
        Some(2)
    } else {
        threads.into_iter().max()
    }
}

/// Sampled latency percentiles (p50, p99, p999) per map on `workload` at
/// [`latency_threads`] threads, plus the baseline (at the same thread count on a read-only mix,
/// where it shares its table, else at one thread); log scale.
pub fn latency_chart(results: &[BenchResult], workload: &Workload) -> Result<Chart, String> {
    let threads = latency_threads(results, workload).unwrap_or(1);
    let here: Vec<&BenchResult> = results
        .iter()
        .filter(|r| r.workload.name == workload.name && !r.failed())
        .collect();
    // The baseline at the same thread count where it ran there (a read-only mix), else at one.
    let baseline_threads = if here
        .iter()
        .any(|r| r.map == MapKind::Hashbrown && r.threads == threads)
    {
        threads
    } else {
        1
    };
    let mut cells: Vec<&BenchResult> = here
        .into_iter()
        .filter(|r| {
            if r.map == MapKind::Hashbrown {
                r.threads == baseline_threads
            } else {
                r.threads == threads
            }
        })
        .collect();
    cells.sort_by_key(|r| MapKind::ALL.iter().position(|m| *m == r.map));
    // p999 is a ring around the others' dots, so that equal percentiles stay visible.
    const QUANTILES: [(f64, &str, RGBColor); 3] = [
        (0.5, "p50", RGBColor(0x1f, 0x4e, 0x79)),
        (0.99, "p99", RGBColor(0xe1, 0x57, 0x59)),
        (0.999, "p999", RGBColor(0xf2, 0x8e, 0x2b)),
    ];
    let values = cells
        .iter()
        .flat_map(|r| QUANTILES.iter().map(|(q, _, _)| r.latency_ns(*q) as f64))
        .filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if hi > 0.0 {
        (lo / 2.0, hi * 2.0)
    } else {
        (1.0, 1000.0)
    };
    // At least two decades, so that the axis labels powers of ten and not 1, 2, 3 .. 9 µs
    // crowded into one decade.
    let widen = (100.0 / (hi / lo)).max(1.0).sqrt();
    let (lo, hi) = ((lo / widen).max(1.0), hi * widen);
    let title = format!("{}: latency at {threads} threads", workload.name);
    let names: Vec<String> = cells
        .iter()
        .map(|r| {
            if r.map == MapKind::Hashbrown && r.threads != threads {
                "hashbrown (1 thread)".to_owned()
            } else {
                display_name(r.map)
            }
        })
        .collect();
    let rows = cells.len().max(1) as i32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, side) = root.split_horizontally(CHART_SIZE.0 - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(&title, text_style(18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(150)
            .build_cartesian_2d((lo..hi).log_scale(), (0..rows - 1).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .y_labels(rows as usize + 1)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => usize::try_from(rows - 1 - *i)
                    .ok()
                    .and_then(|i| names.get(i).cloned())
                    .unwrap_or_default(),
                SegmentValue::Exact(_) => String::new(),
                SegmentValue::Last => String::new(),
            })
            .x_labels(6)
            .x_label_formatter(&|v| format_ns(*v))
            .x_desc("ns per operation, sampled (log scale, lower is better)")
            .label_style(text_style(13))
            .axis_desc_style(text_style(14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, r) in cells.iter().enumerate() {
            // The first map at the top.
            let row = || SegmentValue::CenterOf(rows - 1 - i as i32);
            let xs: Vec<f64> = QUANTILES
                .iter()
                .map(|(q, _, _)| (r.latency_ns(*q) as f64).max(lo))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    vec![(xs[0], row()), (xs[2], row())],
                    map_colour(r.map).mix(0.5).stroke_width(3),
                ))
                .map_err(|e| e.to_string())?;
            for (i, (x, (_, _, colour))) in xs.iter().zip(QUANTILES).enumerate() {
                let dot = if i == 2 {
                    Circle::new((*x, row()), 8, colour.stroke_width(3))
                } else {
                    Circle::new((*x, row()), 5, colour.filled())
                };
                chart
                    .draw_series(std::iter::once(dot))
                    .map_err(|e| e.to_string())?;
            }
        }
        let entries: Vec<(String, ShapeStyle, Swatch)> = QUANTILES
            .iter()
            .map(|(_, name, colour)| {
                let swatch = if *name == "p999" {
                    Swatch::Ring
                } else {
                    Swatch::Dot
                };
                ((*name).to_owned(), colour.filled(), swatch)
            })
            .collect();
        legend(&side, &entries)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Chart {
        file: format!("latency-{}.svg", workload.name),
        title,
        svg,
    })
}

/// `ns` as an axis label: `250 ns`, `4 µs`, `1.5 ms`.
pub fn format_ns(ns: f64) -> String {
    let (value, unit) = if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    if value >= 10.0 || (value - value.round()).abs() < 0.05 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// Every chart of a run: throughput and latency for each workload, in workload order.
pub fn all_charts(results: &[BenchResult]) -> Result<Vec<Chart>, String> {
    let mut charts = Vec::new();
    for workload in super::workload::WORKLOADS {
        if !results.iter().any(|r| r.workload.name == workload.name) {
            continue;
        }
        charts.push(throughput_chart(results, workload)?);
        charts.push(latency_chart(results, workload)?);
    }
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_read_naturally() {
        assert_eq!(format_ns(250.0), "250 ns");
        assert_eq!(format_ns(4_000.0), "4 µs");
        assert_eq!(format_ns(1_500_000.0), "1.5 ms");
        assert_eq!(format_ns(25_000.0), "25 µs");
    }
}
