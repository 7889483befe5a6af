//! SVG bar charts of the page: vertical (histograms, stacked by split; shard sizes with the
//! size limit as a line) and horizontal (long category names), with round axis steps.

use std::fmt::Write as _;

use super::display::{escape, short_count};
use crate::text::thousands as group;

/// Tick step and axis top for values up to `max`: steps of 1, 2 or 5 × 10^k, about five
/// ticks; at least `min_step`.
fn nice_axis(max: f64, min_step: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        mag
    } else if norm <= 2.0 {
        2.0 * mag
    } else if norm <= 5.0 {
        5.0 * mag
    } else {
        10.0 * mag
    };
    let step = step.max(min_step);
    (step, (max / step).ceil() * step)
}

/// Okabe–Ito colours: distinguishable with common colour-vision deficiencies.
pub(crate) const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
];
const GREY: &str = "#8c8c8c";

/// One stacked series (a split).
pub(crate) struct Series<'a> {
    pub(crate) name: &'a str,
    pub(crate) color: &'a str,
    pub(crate) values: Vec<u64>,
}

/// A vertical bar chart.
pub(crate) struct VChart<'a> {
    /// Accessible name of the figure.
    pub(crate) title: &'a str,
    pub(crate) x_title: &'a str,
    pub(crate) y_title: &'a str,
    /// One per bar.
    pub(crate) bars: Vec<Bar>,
    pub(crate) series: Vec<Series<'a>>,
    /// Axis label of a value.
    pub(crate) y_fmt: fn(f64) -> String,
    /// Tooltip text of a value.
    pub(crate) value_fmt: fn(u64) -> String,
    /// A dashed horizontal line at this value, with this label.
    pub(crate) limit: Option<(u64, String)>,
    pub(crate) min_step: f64,
    /// Labels at the bars' left edges (histograms: a bin's lower edge) instead of centred;
    /// `special` bars keep theirs centred.
    pub(crate) edge_labels: bool,
}

/// One bar of a [`VChart`].
pub(crate) struct Bar {
    /// Label under the bar (`None`: no label).
    pub(crate) label: Option<String>,
    /// Tooltip heading.
    pub(crate) tip: String,
    /// Drawn grey (a null or out-of-range bar).
    pub(crate) special: bool,
}

/// Width of every chart; left and right margins of a vertical chart's plot area.
const W: f64 = 640.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;

fn svg_open(out: &mut String, title: &str, h: f64) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h}\" role=\"img\" \
         aria-label=\"{}\" class=\"chart\">",
        escape(title)
    );
}

fn legend(out: &mut String, series: &[Series<'_>], y: f64) {
    if series.len() < 2 {
        return;
    }
    let mut x = W - RIGHT;
    for s in series.iter().rev() {
        let w = 22.0 + 7.0 * s.name.chars().count() as f64;
        x -= w;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"lg\">{}</text>",
            y - 9.0,
            s.color,
            x + 14.0,
            y,
            escape(s.name)
        );
    }
}

/// Where a vertical chart draws: the plot area and the value scale.
struct VFrame {
    top: f64,
    h: f64,
    /// Plot width and height.
    pw: f64,
    ph: f64,
    /// Tick step and top of the value axis.
    step: f64,
    ymax: f64,
    /// Width of a bar's band and of the bar in it.
    band: f64,
    bw: f64,
}

impl VFrame {
    /// The y coordinate of value `v`.
    fn y(&self, v: f64) -> f64 {
        self.top + self.ph - v / self.ymax * self.ph
    }
}

impl VChart<'_> {
    pub(crate) fn render(&self) -> String {
        let totals: Vec<u64> = (0..self.bars.len())
            .map(|i| self.series.iter().map(|s| s.values[i]).sum())
            .collect();
        let data_max = totals.iter().copied().max().unwrap_or(0);
        let f = self.frame(data_max);
        let mut out = String::new();
        svg_open(&mut out, self.title, f.h);
        legend(&mut out, &self.series, 14.0);
        self.grid(&mut out, &f);
        // Bars, stacked by series.
        for (i, bar) in self.bars.iter().enumerate() {
            self.bar(&mut out, &f, i, bar, totals[i]);
        }
        if data_max == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"empty\">no data</text>",
                LEFT + f.pw / 2.0,
                f.top + f.ph / 2.0
            );
        }
        self.limit_line(&mut out, &f);
        self.axes(&mut out, &f);
        out
    }

    /// The plot area and a value axis that holds `data_max` and the limit line.
    fn frame(&self, data_max: u64) -> VFrame {
        let (top, bottom, h) = (28.0, 52.0, 320.0);
        let pw = W - LEFT - RIGHT;
        let ph = h - top - bottom;
        let n = self.bars.len().max(1);
        let line_max = self.limit.as_ref().map_or(0, |l| l.0);
        let (step, ymax) = nice_axis(data_max.max(line_max) as f64 * 1.02, self.min_step);
        let band = pw / n as f64;
        let bw = (band * 0.84).max(0.6);
        VFrame {
            top,
            h,
            pw,
            ph,
            step,
            ymax,
            band,
            bw,
        }
    }

    /// Grid lines and y ticks.
    fn grid(&self, out: &mut String, f: &VFrame) {
        let mut t = 0.0;
        while t <= f.ymax + f.step * 1e-9 {
            let yy = f.y(t);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"gl\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"yt\">{}</text>",
                W - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                escape(&(self.y_fmt)(t))
            );
            t += f.step;
        }
    }

    /// Bar `i`: a rectangle per series, stacked, then its label; `total` over all series.
    fn bar(&self, out: &mut String, f: &VFrame, i: usize, bar: &Bar, total: u64) {
        let (band, bw) = (f.band, f.bw);
        let x = LEFT + i as f64 * band + (band - bw) / 2.0;
        let mut base = 0u64;
        for s in &self.series {
            let v = s.values[i];
            if v == 0 {
                continue;
            }
            let (y0, y1) = (f.y(base as f64), f.y((base + v) as f64));
            let color = if bar.special { GREY } else { s.color };
            let tip = if self.series.len() > 1 {
                format!(
                    "{}\n{}: {} (all splits: {})",
                    bar.tip,
                    s.name,
                    (self.value_fmt)(v),
                    (self.value_fmt)(total)
                )
            } else {
                format!("{}: {}", bar.tip, (self.value_fmt)(v))
            };
            let _ = write!(
                out,
                "<rect x=\"{x:.2}\" y=\"{y1:.2}\" width=\"{bw:.2}\" height=\"{:.2}\" \
                 fill=\"{color}\"><title>{}</title></rect>",
                (y0 - y1).max(0.5),
                escape(&tip)
            );
            base += v;
        }
        if let Some(label) = &bar.label {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xt\">{}</text>",
                if self.edge_labels && !bar.special {
                    LEFT + i as f64 * band
                } else {
                    LEFT + (i as f64 + 0.5) * band
                },
                f.top + f.ph + 14.0,
                escape(label)
            );
        }
    }

    /// The dashed limit line and its label, if any.
    fn limit_line(&self, out: &mut String, f: &VFrame) {
        if let Some((v, label)) = &self.limit {
            let yy = f.y(*v as f64);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"limit\">\
                 <title>{}</title></line>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"limitlabel\">{}</text>",
                W - RIGHT,
                escape(label),
                W - RIGHT - 4.0,
                yy - 5.0,
                escape(label)
            );
        }
    }

    /// Axes and their titles; closes the `<svg>`.
    fn axes(&self, out: &mut String, f: &VFrame) {
        let (top, ph) = (f.top, f.ph);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{top}\" y2=\"{:.1}\" class=\"axis\"/>\
             <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"at\">{}</text>\
             <text transform=\"translate(14 {:.1}) rotate(-90)\" class=\"at\">{}</text></svg>",
            top + ph,
            W - RIGHT,
            top + ph,
            top + ph,
            LEFT + f.pw / 2.0,
            f.h - 10.0,
            escape(self.x_title),
            top + ph / 2.0,
            escape(self.y_title)
        );
    }
}

/// A horizontal bar chart (long category names).
pub(crate) struct HChart<'a> {
    pub(crate) title: &'a str,
    pub(crate) x_title: &'a str,
    pub(crate) rows: Vec<(String, u64, String)>,
    pub(crate) colors: Vec<&'a str>,
}

impl HChart<'_> {
    pub(crate) fn render(&self) -> String {
        let (left, right, top, row_h, bottom) = (170.0, 110.0, 12.0, 24.0, 44.0);
        let n = self.rows.len().max(1);
        let h = top + n as f64 * row_h + bottom;
        let pw = W - left - right;
        let max = self.rows.iter().map(|r| r.1).max().unwrap_or(0);
        let (step, xmax) = nice_axis(max as f64, 1.0);
        let x = |v: f64| left + v / xmax * pw;
        let mut out = String::new();
        svg_open(&mut out, self.title, h);
        let bottom_y = top + n as f64 * row_h;
        let mut t = 0.0;
        while t <= xmax + step * 1e-9 {
            let xx = x(t);
            let _ = write!(
                out,
                "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{bottom_y:.1}\" class=\"gl\"/>\
                 <text x=\"{xx:.1}\" y=\"{:.1}\" class=\"xt\">{}</text>",
                bottom_y + 14.0,
                short_count(t)
            );
            t += step;
        }
        for (i, (name, v, tip)) in self.rows.iter().enumerate() {
            let yy = top + i as f64 * row_h;
            let color = self.colors.get(i).copied().unwrap_or(PALETTE[0]);
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"yl\">{}</text>\
                 <rect x=\"{left}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{color}\">\
                 <title>{}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"val\">{}</text>",
                left - 8.0,
                yy + row_h / 2.0 + 4.0,
                escape(name),
                yy + 3.0,
                (x(*v as f64) - left).max(if *v > 0 { 1.0 } else { 0.0 }),
                row_h - 6.0,
                escape(tip),
                x(*v as f64) + 5.0,
                yy + row_h / 2.0 + 4.0,
                group(*v)
            );
        }
        if self.rows.is_empty() {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"empty\">no data</text>",
                left + pw / 2.0,
                top + row_h / 2.0 + 4.0
            );
        }
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{bottom_y:.1}\" class=\"axis\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"at\">{}</text></svg>",
            left + pw / 2.0,
            h - 8.0,
            escape(self.x_title)
        );
        out
    }
}

// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(nice_axis(0.0, 1.0), (1.0, 1.0));
        assert_eq!(nice_axis(3.0, 1.0), (1.0, 3.0));
        assert_eq!(nice_axis(97.0, 1.0), (20.0, 100.0));
        assert_eq!(nice_axis(1234.0, 1.0), (500.0, 1500.0));
    }
}
