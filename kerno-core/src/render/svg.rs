//! Inline SVG charts for the HTML report: a line chart of per-second series (with an
//! optional limit and a dashed projection to it) and a bar chart of a latency histogram.
//! Colours come from the report's CSS (classes), so dark mode and print restyle them.
//! Every chart carries its plotted values as `data-*` attributes, for programs and tests.

use std::fmt::Write as _;

use super::html::{esc, num};
use crate::{Histogram, Series, finding::human_ns};

const W: f64 = 560.0;
const H: f64 = 170.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

/// One line of a chart.
pub(crate) struct Line<'a> {
    /// Legend label.
    pub label: &'a str,
    /// The points.
    pub series: &'a Series,
    /// CSS class of its colour: `s0` (accent), `s1` (second), `bad` (errors).
    pub class: &'static str,
}

/// A line chart of series over the window.
pub(crate) struct LineChart<'a> {
    /// `data-chart`: what it plots (`fd-leak`, `syscall-errors`, ...).
    pub kind: &'a str,
    /// Heading above it.
    pub title: String,
    /// The lines; the first is the one `data-last`, `data-max` and `data-points` describe.
    pub lines: Vec<Line<'a>>,
    /// What the values are: how they read, and how the axis steps.
    pub fmt: Axis,
    /// A limit drawn as a horizontal line, with its label.
    pub limit: Option<(f64, String)>,
    /// Seconds from the first line's last point until it reaches the limit: a dashed line
    /// from that point to the limit.
    pub eta_secs: Option<f64>,
    /// The rule's threshold, drawn as a dotted line with its label (a p99 chart's).
    pub threshold: Option<(f64, String)>,
    /// The window's length in ms (the x axis spans at least that).
    pub window_ms: u64,
    /// Extra `data-*` attributes (name, value).
    pub data: Vec<(&'static str, String)>,
}

/// What a chart's values are.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    /// Counts and rates, in decimal steps.
    Count,
    /// Nanoseconds, in decimal steps.
    Ns,
    /// Bytes, in steps of a binary unit (MiB, GiB).
    Bytes,
}

impl Axis {
    fn fmt(self, v: f64) -> String {
        match self {
            Axis::Count => fmt_count(v),
            Axis::Ns => human_ns(v),
            Axis::Bytes => fmt_bytes(v),
        }
    }

    /// The axis's (bottom, top, step) for values from `lo` to `hi`: from 0, unless `zoom`
    /// (a quantity growing to its limit) and every value sits in the upper half, where the
    /// axis starts at a round value below the lowest so the growth shows.
    fn range(self, lo: f64, hi: f64, zoom: bool) -> (f64, f64, f64) {
        let unit = match self {
            Axis::Bytes => {
                let mut u = 1.0;
                while hi / u >= 1024.0 {
                    u *= 1024.0;
                }
                u
            }
            _ => 1.0,
        };
        let (lo, hi) = (lo / unit, hi / unit);
        // Only towards a limit: a rate or a latency read from a raised floor looks worse
        // than it is.
        let (base, top, step) = if zoom && lo > 0.5 * hi && hi > lo {
            let (_, step) = nice_axis(hi - lo);
            let base = (lo / step).floor() * step;
            let top = base + ((hi - base) / step).ceil().max(1.0) * step;
            (base, top, step)
        } else {
            let (top, step) = nice_axis(hi);
            (0.0, top, step)
        };
        (base * unit, top * unit, step * unit)
    }
}

/// A value as the y axis shows it: plain counts.
pub(crate) fn fmt_count(v: f64) -> String {
    if v >= 10_000.0 {
        crate::finding::thousands(v.round() as u64)
    } else if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Bytes as the y axis shows them.
pub(crate) fn fmt_bytes(v: f64) -> String {
    crate::finding::human_bytes(v.max(0.0) as u64)
}

/// A round top and step for an axis from 0 past `max`, with at most five steps.
fn nice_axis(max: f64) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 0.25);
    }
    let mag = 10f64.powf((max / 5.0).log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0, 20.0] {
        let step = m * mag;
        let n = (max / step).ceil().max(1.0);
        if n <= 5.0 {
            return (n * step, step);
        }
    }
    (max, max / 4.0)
}

fn secs_label(ms: f64) -> String {
    let s = ms / 1000.0;
    if s >= 120.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

impl LineChart<'_> {
    /// The chart as a `<figure>` with an inline `<svg>`.
    pub(crate) fn render(&self) -> String {
        let main = self.lines.first().map(|l| l.series);
        let last_pt = main.and_then(|s| s.0.last().copied());
        let eta_end = match (last_pt, self.eta_secs, &self.limit) {
            (Some((t, _)), Some(eta), Some(_)) if eta.is_finite() && eta >= 0.0 => {
                Some(t as f64 + eta * 1000.0)
            }
            _ => None,
        };
        let mut xmax = self.window_ms as f64;
        let mut ymax: f64 = 0.0;
        let mut ymin = f64::MAX;
        for l in &self.lines {
            for (t, v) in &l.series.0 {
                xmax = xmax.max(*t as f64);
                ymax = ymax.max(*v);
                ymin = ymin.min(*v);
            }
        }
        if let Some(e) = eta_end {
            // A far-off limit would squash the window into a sliver: the projection runs to
            // at most four windows ahead and is cut there.
            xmax = xmax.max(e.min(xmax * 5.0));
        }
        for (v, _) in self.limit.iter().chain(&self.threshold) {
            ymax = ymax.max(*v);
            ymin = ymin.min(*v);
        }
        let (ybase, ymax, ystep) = self.fmt.range(ymin.min(ymax), ymax, self.limit.is_some());
        let xmax = xmax.max(1.0);
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let x = |t: f64| LEFT + t / xmax * pw;
        let y = |v: f64| TOP + ph - ((v - ybase) / (ymax - ybase)).clamp(0.0, 1.05) * ph;

        let mut o = String::new();
        let _ = write!(
            o,
            "<figure class=\"chart\" data-chart=\"{}\"",
            esc(self.kind)
        );
        if let Some(s) = main {
            let _ = write!(o, " data-points=\"{}\"", s.len());
            if let Some(v) = s.last() {
                let _ = write!(o, " data-last=\"{}\"", num(v));
            }
            if let Some(v) = s.max() {
                let _ = write!(o, " data-max=\"{}\"", num(v));
            }
        }
        if let Some((lim, _)) = &self.limit {
            let _ = write!(o, " data-limit=\"{}\"", num(*lim));
        }
        if let Some((t, _)) = &self.threshold {
            let _ = write!(o, " data-threshold=\"{}\"", num(*t));
        }
        if let (Some(eta), Some(_)) = (self.eta_secs, eta_end) {
            let _ = write!(o, " data-eta-secs=\"{}\"", num(eta));
        }
        for (k, v) in &self.data {
            let _ = write!(o, " data-{k}=\"{}\"", esc(v));
        }
        let _ = write!(
            o,
            "><figcaption>{}</figcaption><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
            esc(&self.title),
            esc(&self.title)
        );
        // Grid and y labels.
        let steps = ((ymax - ybase) / ystep).round() as usize;
        for i in 0..=steps {
            let v = ybase + ystep * i as f64;
            let yy = y(v);
            let _ = write!(
                o,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                W - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                esc(&self.fmt.fmt(v))
            );
        }
        // x labels: start, end of window, end of projection.
        let _ = write!(
            o,
            "<text class=\"axis\" x=\"{LEFT}\" y=\"{:.1}\">0 s</text>",
            H - 6.0
        );
        let wend = self.window_ms.max(last_pt.map(|p| p.0).unwrap_or(0)) as f64;
        let _ = write!(
            o,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{}\">{}</text>",
            x(wend),
            H - 6.0,
            if eta_end.is_some() { "middle" } else { "end" },
            secs_label(wend)
        );
        if let Some((lim, label)) = &self.limit {
            let yy = y(*lim);
            let _ = write!(
                o,
                "<line class=\"limit\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <text class=\"limit-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                W - RIGHT,
                LEFT + 4.0,
                yy - 4.0,
                esc(label)
            );
        }
        if let Some((th, label)) = &self.threshold {
            let yy = y(*th);
            let _ = write!(
                o,
                "<line class=\"threshold\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <text class=\"threshold-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                W - RIGHT,
                W - RIGHT - 4.0,
                yy + 14.0,
                esc(label)
            );
        }
        if let (Some((t, v)), Some(e), Some((lim, _))) = (last_pt, eta_end, &self.limit) {
            // The projection, cut at the chart's edge when the limit is further off.
            let (ex, ev) = if e <= xmax {
                (e, *lim)
            } else {
                let f = (xmax - t as f64) / (e - t as f64);
                (xmax, v + (lim - v) * f)
            };
            let _ = write!(
                o,
                "<line class=\"eta\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
                x(t as f64),
                y(v),
                x(ex),
                y(ev)
            );
            if e <= xmax {
                let _ = write!(
                    o,
                    "<circle class=\"eta-dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\"/>\
                     <text class=\"eta-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">limit in {}</text>",
                    x(ex),
                    y(ev),
                    x(ex),
                    y(ev) - 8.0,
                    crate::finding::human_secs((e - t as f64) / 1000.0)
                );
            }
        }
        for l in &self.lines {
            if l.series.is_empty() {
                continue;
            }
            let pts: Vec<String> = l
                .series
                .0
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t as f64), y(*v)))
                .collect();
            if pts.len() > 1 {
                let _ = write!(
                    o,
                    "<polyline class=\"line {}\" points=\"{}\"/>",
                    l.class,
                    pts.join(" ")
                );
            }
            if let Some((t, v)) = l.series.0.last() {
                let _ = write!(
                    o,
                    "<circle class=\"pt {}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"><title>{}: {}</title></circle>",
                    l.class,
                    x(*t as f64),
                    y(*v),
                    esc(l.label),
                    esc(&self.fmt.fmt(*v))
                );
            }
        }
        o.push_str("</svg>");
        if !self.lines.is_empty() {
            o.push_str("<div class=\"legend\">");
            for l in &self.lines {
                let _ = write!(
                    o,
                    "<span><i class=\"key {}\"></i>{} <b>{}</b></span>",
                    l.class,
                    esc(l.label),
                    l.series
                        .last()
                        .map(|v| esc(&self.fmt.fmt(v)))
                        .unwrap_or_else(|| "no points".into())
                );
            }
            o.push_str("</div>");
        }
        o.push_str("</figure>");
        o
    }
}

/// Upper bounds of the histogram chart's bars, ns: 1-3-10 steps from 1 µs to 10 s.
const BARS_NS: [u64; 22] = [
    1_000,
    3_000,
    10_000,
    30_000,
    100_000,
    300_000,
    1_000_000,
    3_000_000,
    10_000_000,
    30_000_000,
    100_000_000,
    300_000_000,
    1_000_000_000,
    3_000_000_000,
    10_000_000_000,
    30_000_000_000,
    100_000_000_000,
    300_000_000_000,
    1_000_000_000_000,
    3_000_000_000_000,
    10_000_000_000_000,
    30_000_000_000_000,
];

fn short_ns(ns: u64) -> String {
    match ns {
        n if n >= 1_000_000_000 => format!("{}s", n / 1_000_000_000),
        n if n >= 1_000_000 => format!("{}ms", n / 1_000_000),
        n => format!("{}µs", n / 1_000),
    }
}

/// A latency histogram as bars (1-3-10 buckets, the empty ones at either end left out),
/// the bar holding the p99 marked.
pub(crate) fn histogram_chart(kind: &str, title: &str, h: &Histogram) -> String {
    let counts = h.regroup(&BARS_NS);
    let p99 = h.percentile(99.0);
    let mut o = String::new();
    let _ = write!(
        o,
        "<figure class=\"chart hist\" data-chart=\"{}\" data-count=\"{}\"",
        esc(kind),
        h.count()
    );
    if let Some(p) = p99 {
        let _ = write!(o, " data-p99-ns=\"{p}\"");
    }
    let _ = write!(o, "><figcaption>{}", esc(title));
    if let Some(p) = p99 {
        let _ = write!(
            o,
            " <span class=\"muted\">{} samples, p99 {}</span>",
            crate::finding::thousands(h.count()),
            esc(&human_ns(p as f64))
        );
    }
    o.push_str("</figcaption>");
    let (Some(lo), Some(hi)) = (
        counts.iter().position(|c| *c > 0),
        counts.iter().rposition(|c| *c > 0),
    ) else {
        o.push_str("<p class=\"muted\">no samples</p></figure>");
        return o;
    };
    let p99_bar = p99.map(|p| BARS_NS.iter().position(|b| p < *b).unwrap_or(BARS_NS.len()));
    // At least 8 bars, so one full bucket does not fill the chart.
    let (mut lo, mut hi) = (lo, hi);
    while hi - lo < 7 && (lo > 0 || hi + 1 < counts.len()) {
        if hi + 1 < counts.len() {
            hi += 1;
        }
        if hi - lo < 7 && lo > 0 {
            lo -= 1;
        }
    }
    let bars = &counts[lo..=hi];
    let max = *bars.iter().max().unwrap_or(&1) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let bw = pw / bars.len() as f64;
    let _ = write!(
        o,
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for i in 0..=2 {
        let yy = TOP + ph - ph * i as f64 / 2.0;
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            fmt_count(max * i as f64 / 2.0)
        );
    }
    for (j, c) in bars.iter().enumerate() {
        let i = lo + j;
        let bh = if *c > 0 {
            (*c as f64 / max * ph).max(1.5)
        } else {
            0.0
        };
        let label = match i {
            0 => format!("<{}", short_ns(BARS_NS[0])),
            i if i >= BARS_NS.len() => format!(">{}", short_ns(BARS_NS[BARS_NS.len() - 1])),
            i => short_ns(BARS_NS[i]),
        };
        let class = if Some(i) == p99_bar { "bar p99" } else { "bar" };
        let bx = LEFT + j as f64 * bw;
        let _ = write!(
            o,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" data-le-ns=\"{}\" data-count=\"{c}\"><title>{} samples ≤ {}</title></rect>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bx + 1.5,
            TOP + ph - bh,
            (bw - 3.0).max(1.0),
            BARS_NS.get(i).copied().unwrap_or(u64::MAX),
            crate::finding::thousands(*c),
            esc(&label),
            bx + bw / 2.0,
            H - 6.0,
            esc(&label)
        );
    }
    o.push_str("</svg></figure>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_axis(900.0), (1000.0, 200.0));
        assert_eq!(nice_axis(1024.0), (1250.0, 250.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
        assert_eq!(nice_axis(3.2), (4.0, 1.0));
        assert_eq!(nice_axis(65_536.0), (80_000.0, 20_000.0));
    }

    #[test]
    fn a_line_chart_carries_its_values_and_its_projection() {
        let s = Series::from_points([(0, 100.0), (1000, 500.0), (2000, 900.0)]);
        let c = LineChart {
            kind: "fd-leak",
            title: "descriptors".into(),
            lines: vec![Line {
                label: "open",
                series: &s,
                class: "s0",
            }],
            fmt: Axis::Count,
            limit: Some((1024.0, "limit 1024".into())),
            eta_secs: Some(0.31),
            threshold: None,
            window_ms: 2000,
            data: vec![("pid", "42".into())],
        }
        .render();
        for want in [
            "data-chart=\"fd-leak\"",
            "data-points=\"3\"",
            "data-last=\"900\"",
            "data-limit=\"1024\"",
            "data-eta-secs=\"0.31\"",
            "data-pid=\"42\"",
            "class=\"eta\"",
            "<polyline class=\"line s0\"",
        ] {
            assert!(c.contains(want), "{want} in {c}");
        }
    }

    #[test]
    fn memory_near_its_limit_is_zoomed_in_binary_steps() {
        const MIB: f64 = 1048576.0;
        assert_eq!(
            Axis::Bytes.range(470.0 * MIB, 512.0 * MIB, true),
            (470.0 * MIB, 520.0 * MIB, 10.0 * MIB)
        );
        assert_eq!(Axis::Count.range(0.0, 1024.0, true), (0.0, 1250.0, 250.0));
        assert_eq!(
            Axis::Ns.range(8e6, 10e6, false),
            (0.0, 10e6, 2e6),
            "latency from 0"
        );
        assert_eq!(
            Axis::Bytes.range(0.0, 16.0 * 1024.0 * MIB, true).2,
            5.0 * 1024.0 * MIB
        );
    }

    #[test]
    fn a_histogram_marks_its_p99_bar() {
        let mut h = Histogram::new();
        h.record_n(50_000, 990);
        h.record_n(20_000_000, 10);
        let c = histogram_chart("x", "lat", &h);
        assert!(c.contains("data-count=\"1000\""), "{c}");
        assert_eq!(c.matches("class=\"bar p99\"").count(), 1, "{c}");
        assert!(
            c.contains("class=\"bar p99\"") && c.contains("data-le-ns=\"30000000\""),
            "{c}"
        );
        assert!(histogram_chart("x", "none", &Histogram::new()).contains("no samples"));
    }
}
