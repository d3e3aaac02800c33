//! Every chart of the report, drawn by plotters into an SVG string that the
//! page inlines (no image files, no scripts, nothing fetched).
//!
//! Charts are fixed-size (`W`×`H` user units) and scale with the page
//! through the SVG's viewBox (set by the template's CSS width). Text is left
//! to the browser (plotters' SVG backend writes `<text>`), so no font files
//! are needed to draw.

use hdrhistogram::Histogram;
use plotters::prelude::*;
use ticketing_load::record::Second;
use ticketing_load::resources::{ResourceReport, ResourceSample};
use ticketing_load::slo::SoakSlo;
use ticketing_load::summary::RoomSample;

/// Chart size in SVG user units.
pub const W: u32 = 760;
pub const H: u32 = 300;

const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE_: RGBColor = RGBColor(230, 120, 20);
const RED_: RGBColor = RGBColor(200, 40, 40);
const GREEN_: RGBColor = RGBColor(40, 150, 70);
const GREY_: RGBColor = RGBColor(120, 120, 120);
const FAULT_SHADE: RGBColor = RGBColor(250, 200, 200);
/// Text sizes in user units (charts are drawn 760 wide and shown at 450–1150).
const CAPTION_PX: u32 = 20;
const LABEL_PX: u32 = 15;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw a chart: {e:?}")
}

const PALETTE: [RGBColor; 4] = [BLUE_, ORANGE_, GREEN_, RED_];

/// A chart with nothing to show still says what it would have shown.
fn empty(title: &str) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H / 3)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        root.draw(&Text::new(
            format!("{title}: no data"),
            (20, 40),
            ("sans-serif", 16).into_font().color(&GREY_),
        ))
        .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// A line chart: lines over a shared x axis, an optional shaded x range
/// (the fault window), an optional horizontal limit (an SLO), and a log
/// y axis for latencies (the tail and the median both stay readable).
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub series: &'a [Series],
    pub shade_x: Option<(f64, f64)>,
    /// The shaded range's legend.
    pub shade_label: &'a str,
    pub limit_y: Option<(String, f64)>,
    pub x_labels: Option<&'a dyn Fn(&f64) -> String>,
    /// Fixes the x range (else it is the data's).
    pub x_range: Option<(f64, f64)>,
    pub log_y: bool,
}

impl std::fmt::Debug for LineChart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineChart")
            .field("title", &self.title)
            .field("series", &self.series.len())
            .finish_non_exhaustive()
    }
}

impl<'a> LineChart<'a> {
    pub fn new(title: &'a str, x_desc: &'a str, y_desc: &'a str, series: &'a [Series]) -> Self {
        LineChart {
            title,
            x_desc,
            y_desc,
            series,
            shade_x: None,
            shade_label: "fault window",
            limit_y: None,
            x_labels: None,
            x_range: None,
            log_y: false,
        }
    }

    /// Draws the chart as SVG.
    pub fn draw(&self) -> anyhow::Result<String> {
        // On a log axis values are drawn as log10 and labelled back in the
        // data's unit; decades get the ticks.
        let log_y = self.log_y;
        let to_y = move |v: f64| if log_y { v.max(1e-3).log10() } else { v };
        let all: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .collect();
        if all.is_empty() {
            return empty(self.title);
        }
        let (x_min, x_max) = self.x_range.unwrap_or_else(|| {
            (
                all.iter().map(|p| p.0).fold(f64::MAX, f64::min).min(0.0),
                all.iter().map(|p| p.0).fold(f64::MIN, f64::max).max(1.0),
            )
        });
        let ys = all
            .iter()
            .map(|p| p.1)
            .chain(self.limit_y.as_ref().map(|l| l.1));
        let (y_min, y_max, y_ticks) = if log_y {
            let lo = ys.clone().filter(|v| *v > 0.0).fold(f64::MAX, f64::min);
            let hi = ys.fold(0.0, f64::max);
            let lo = to_y(if lo == f64::MAX { 0.1 } else { lo }).floor();
            let hi = to_y(hi.max(1e-3)).ceil().max(lo + 1.0);
            (lo, hi, (hi - lo) as usize + 1)
        } else {
            let top = ys.fold(0.0, f64::max);
            (0.0, if top <= 0.0 { 1.0 } else { top * 1.1 }, 8)
        };
        let y_label = move |y: &f64| {
            if log_y {
                crate::format::ms(10f64.powf(*y))
            } else if y.abs() >= 100.0 || y.fract() == 0.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", CAPTION_PX))
                .margin(12)
                .margin_right(36)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(x_min..x_max, y_min..y_max)
                .map_err(draw_err)?;
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(self.x_desc)
                .y_desc(self.y_desc)
                .label_style(("sans-serif", LABEL_PX))
                .axis_desc_style(("sans-serif", LABEL_PX))
                .light_line_style(WHITE)
                .y_labels(y_ticks)
                .y_label_formatter(&y_label);
            if let Some(f) = self.x_labels {
                mesh.x_label_formatter(f);
            }
            if let Some((a, b)) = self.x_range {
                mesh.x_labels(((b - a).round() as usize + 1).min(10));
            }
            mesh.draw().map_err(draw_err)?;
            if let Some((a, b)) = self.shade_x {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, y_min), (b.max(a), y_max)],
                        FAULT_SHADE.mix(0.5).filled(),
                    )))
                    .map_err(draw_err)?
                    .label(self.shade_label)
                    .legend(|(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 16, y + 5)], FAULT_SHADE.filled())
                    });
            }
            if let Some((label, y)) = &self.limit_y {
                chart
                    .draw_series(LineSeries::new(
                        [(x_min, to_y(*y)), (x_max, to_y(*y))],
                        RED_.stroke_width(1),
                    ))
                    .map_err(draw_err)?
                    .label(label.as_str())
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED_));
            }
            for (i, s) in self.series.iter().enumerate() {
                let colour = PALETTE[i % PALETTE.len()];
                let points: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x, to_y(y))).collect();
                let dots = points.len() <= 60;
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        colour.stroke_width(2),
                    ))
                    .map_err(draw_err)?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
                if dots {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                        .map_err(draw_err)?;
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", LABEL_PX))
                .background_style(WHITE.mix(0.85))
                .border_style(GREY_)
                .draw()
                .map_err(draw_err)?;
            root.present().map_err(draw_err)?;
        }
        Ok(svg)
    }
}

/// Requests and errors per second over the run, the fault window shaded.
pub fn timeline(timeline: &[Second], window_ms: Option<(u64, u64)>) -> anyhow::Result<String> {
    let at = |i: usize| i as f64;
    let series = [
        Series {
            label: "requests/s".into(),
            points: timeline
                .iter()
                .enumerate()
                .map(|(i, s)| (at(i), s.requests as f64))
                .collect(),
        },
        Series {
            label: "errors/s".into(),
            points: timeline
                .iter()
                .enumerate()
                .map(|(i, s)| (at(i), s.errors as f64))
                .collect(),
        },
    ];
    let mut chart = LineChart::new(
        "Throughput and errors over time",
        "seconds since the start of load",
        "per second",
        &series,
    );
    chart.shade_x = window_ms.map(|(a, b)| (a as f64 / 1000.0, b as f64 / 1000.0));
    chart.draw()
}

/// An open run's arrivals per second: scheduled (the target rate), started
/// (achieved) and dropped, with the most iterations running at once.
pub fn arrivals(o: &ticketing_load::open::OpenFigures) -> anyhow::Result<String> {
    let line = |label: &str, f: &dyn Fn(&ticketing_load::open::OpenSecond) -> u64| Series {
        label: label.into(),
        points: o
            .timeline
            .iter()
            .enumerate()
            .map(|(i, s)| (i as f64, f(s) as f64))
            .collect(),
    };
    let series = [
        line("scheduled/s (target)", &|s| s.target),
        line("started/s (achieved)", &|s| s.started),
        line("dropped/s", &|s| s.dropped),
        line("busy users (most in the second)", &|s| s.active_max),
    ];
    LineChart::new(
        "Open model: arrivals per second of the schedule",
        "seconds since the schedule started",
        "per second / users",
        &series,
    )
    .draw()
}

/// The waiting room over the run, from its once-a-second readings:
/// visitors waiting, shoppers active and admissions per second; and beside
/// it the shop phase's p95 per second (every request but the room's own),
/// both on seconds since the start of load.
pub fn waiting_room(
    w: &ticketing_load::summary::WaitingFigures,
    timeline: &[Second],
) -> anyhow::Result<(String, String)> {
    let at = |ms: u64| ms as f64 / 1000.0;
    let line = |label: &str, f: &dyn Fn(&RoomSample) -> u64| Series {
        label: label.into(),
        points: w
            .samples
            .iter()
            .map(|s| (at(s.at_ms), f(s) as f64))
            .collect(),
    };
    let admitted = Series {
        label: "admitted/s".into(),
        points: w
            .samples
            .windows(2)
            .map(|p| {
                let secs = (at(p[1].at_ms) - at(p[0].at_ms)).max(0.001);
                let n = p[1].admitted_total.saturating_sub(p[0].admitted_total);
                (at(p[1].at_ms), n as f64 / secs)
            })
            .collect(),
    };
    let room = [
        line("waiting", &|s| s.waiting),
        line("active shoppers", &|s| s.active),
        admitted,
    ];
    let room = LineChart::new(
        "Waiting room: queue length, active shoppers, admissions",
        "seconds since the start of load",
        "visitors / per second",
        &room,
    )
    .draw()?;
    let shop = [Series {
        label: "shop-phase p95 (ms)".into(),
        points: timeline
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as f64, s.p95_ms?)))
            .collect(),
    }];
    let shop = LineChart::new(
        "Shop phase: p95 per second (the room's own requests left out)",
        "seconds since the start of load",
        "ms",
        &shop,
    )
    .draw()?;
    Ok((room, shop))
}

/// A soak's samples over time: resident memory (the warm-up shaded, the
/// bound drawn from the first sample after it), and the counts that must
/// come back (open fds, live tasks, open connections, OS threads).
pub fn resources(r: &ResourceReport, soak: &SoakSlo) -> anyhow::Result<(String, String)> {
    let all: Vec<&ResourceSample> = r.during.iter().chain(&r.after).collect();
    let line = |label: &str, f: &dyn Fn(&ResourceSample) -> f64| Series {
        label: label.into(),
        points: all
            .iter()
            .map(|s| (s.at_ms as f64 / 1000.0, f(s)))
            .collect(),
    };
    const MIB: f64 = 1024.0 * 1024.0;
    let memory = [line("resident memory (MiB)", &|s| s.rss_bytes as f64 / MIB)];
    let mut chart = LineChart::new(
        "Target memory over the soak (after the load: settling)",
        "seconds since the start of load",
        "MiB",
        &memory,
    );
    let end_s = all.last().map_or(0.0, |s| s.at_ms as f64 / 1000.0);
    chart.shade_x = Some((0.0, (soak.warmup_ms as f64 / 1000.0).min(end_s)));
    chart.shade_label = "warm-up (not judged)";
    chart.limit_y = r.warm(soak.warmup_ms).map(|w| {
        (
            format!("bound: after warm-up + {} MiB", soak.rss_growth_mib_max),
            w.rss_bytes as f64 / MIB + soak.rss_growth_mib_max,
        )
    });
    let memory = chart.draw()?;
    let counts = [
        line("open fds", &|s| s.open_fds as f64),
        line("live tasks", &|s| s.tasks as f64),
        line("open connections", &|s| s.connections as f64),
        line("OS threads", &|s| s.threads as f64),
    ];
    let counts = LineChart::new(
        "Descriptors, tasks, connections, threads (must come back after the run)",
        "seconds since the start of load",
        "count",
        &counts,
    )
    .draw()?;
    Ok((memory, counts))
}

/// The largest "nines" shown: 99.999 %.
const NINES_MAX: f64 = 5.0;

/// A histogram's latency by percentile on a "nines" axis (0 %, 90 %,
/// 99 %, 99.9 %, ... equally spaced), the way HdrHistogram plots are read:
/// the tail gets as much room as the median.
pub fn percentile_series(label: &str, h: &Histogram<u64>) -> Series {
    let mut points: Vec<(f64, f64)> = Vec::new();
    if !h.is_empty() {
        for v in h.iter_quantiles(4) {
            let q = v.quantile_iterated_to();
            let x = if q >= 1.0 {
                NINES_MAX
            } else {
                (-(1.0 - q).log10()).min(NINES_MAX)
            };
            let ms = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
            if points.last().is_none_or(|p| p.0 < x) {
                points.push((x, ms));
            }
        }
    }
    Series {
        label: label.into(),
        points,
    }
}

fn nines_label(x: &f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    match x.round() as i64 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        _ => format!(
            "{}%",
            format!("{q:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
        ),
    }
}

/// Latency by percentile, with the SLO's p95 limit drawn.
pub fn percentiles(
    title: &str,
    series: &[Series],
    limit: Option<(String, f64)>,
) -> anyhow::Result<String> {
    let mut chart = LineChart::new(title, "percentile", "ms (log scale)", series);
    chart.limit_y = limit;
    chart.x_labels = Some(&nines_label);
    chart.x_range = Some((0.0, NINES_MAX));
    chart.log_y = true;
    chart.draw()
}

/// Horizontal bars (errors by code, p95 by endpoint), largest first, with
/// an optional limit line.
pub fn bars(
    title: &str,
    unit: &str,
    items: &[(String, f64)],
    limit: Option<f64>,
) -> anyhow::Result<String> {
    if items.is_empty() {
        return empty(title);
    }
    let mut items: Vec<(String, f64)> = items.to_vec();
    items.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    items.truncate(12);
    let n = items.len();
    let x_top = items.iter().map(|i| i.1).chain(limit).fold(0.0, f64::max);
    let x_max = if x_top <= 0.0 { 1.0 } else { x_top * 1.1 };
    let height = (70 + 30 * n as u32).max(H / 2);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", CAPTION_PX))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(300)
            .build_cartesian_2d(0.0..x_max, 0.0..n as f64)
            .map_err(draw_err)?;
        let names: Vec<String> = items.iter().map(|i| i.0.clone()).collect();
        let label = move |y: &f64| {
            let i = (n as f64 - y - 0.5).round();
            if i >= 0.0 && (y.fract() - 0.5).abs() < 0.01 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .label_style(("sans-serif", LABEL_PX))
            .axis_desc_style(("sans-serif", LABEL_PX))
            .x_desc(unit)
            .y_labels(n * 2 + 1)
            .y_label_formatter(&label)
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
                let top = (n - i) as f64 - 0.15;
                let over = limit.is_some_and(|l| *v > l);
                Rectangle::new(
                    [(0.0, top - 0.7), (*v, top)],
                    if over { RED_ } else { BLUE_ }.filled(),
                )
            }))
            .map_err(draw_err)?;
        if let Some(l) = limit {
            chart
                .draw_series(LineSeries::new([(l, 0.0), (l, n as f64)], RED_))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_series_reaches_the_max_and_rises() {
        let mut h = ticketing_load::record::new_histogram();
        for us in 1..=10_000u64 {
            h.record(us * 100).unwrap();
        }
        let s = percentile_series("x", &h);
        assert!(s.points.len() > 10);
        assert!(
            s.points
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
        let (x_last, y_last) = *s.points.last().unwrap();
        assert!((x_last - NINES_MAX).abs() < 1e-9);
        assert!(
            (y_last - 1000.0).abs() < 1.0,
            "max is 1,000 ms, got {y_last}"
        );
    }

    #[test]
    fn nines_labels_read_as_percentiles() {
        assert_eq!(nines_label(&0.0), "0%");
        assert_eq!(nines_label(&1.0), "90%");
        assert_eq!(nines_label(&3.0), "99.9%");
        assert_eq!(nines_label(&4.0), "99.99%");
    }

    #[test]
    fn charts_are_svg_with_their_data_and_an_empty_chart_says_so() {
        let svg = timeline(
            &[
                Second {
                    requests: 10,
                    errors: 0,
                    p95_ms: None,
                },
                Second {
                    requests: 30,
                    errors: 5,
                    p95_ms: None,
                },
            ],
            Some((500, 1500)),
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"));
        assert!(svg.contains("fault window"));
        let b = bars("Errors by code", "requests", &[("503 X".into(), 3.0)], None).unwrap();
        assert!(b.contains("503 X") && b.contains("<rect"));
        let e = bars("Errors by code", "requests", &[], None).unwrap();
        assert!(e.contains("no data") && !e.contains("503 X"));
    }
}
