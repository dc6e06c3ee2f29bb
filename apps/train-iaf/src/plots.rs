//! `curves.png`: a run's learning curves in labelled panels (plotters, with an embedded
//! font so that no system font is needed).

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// One line of a panel.
pub struct Series {
    /// The legend's text.
    pub label: String,
    /// `(epoch, value)`; non-finite values are left out.
    pub points: Vec<(f64, f64)>,
}

/// A final figure drawn across a panel: a dashed line at `value` with a band of `± error`.
pub struct Marker {
    /// The legend's text.
    pub label: String,
    /// Where the line lies.
    pub value: f64,
    /// Half the band's height (a standard error).
    pub error: f64,
}

/// How a panel's y axis is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Logarithmic when every value is positive and they span a factor of ten or more
    /// (a learning-rate schedule over decades), linear otherwise.
    LogIfDecades,
}

/// One panel: its title, the y axis's description and what it shows.
pub struct Panel {
    /// Above the panel.
    pub title: String,
    /// The y axis's description, with units.
    pub y_label: String,
    /// The y axis's scale.
    pub scale: Scale,
    /// The lines.
    pub series: Vec<Series>,
    /// The final figures.
    pub markers: Vec<Marker>,
}

/// Series colours, in order: blue, red, green, orange, purple, brown.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Registers DejaVu Sans as plotters' `sans-serif` once.
fn font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("cannot load the embedded DejaVu Sans font"))
    }
}

impl Panel {
    fn finite_points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }

    fn x_range(&self) -> Range<f64> {
        let (lo, hi) = self
            .finite_points()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
                (a.min(x), b.max(x))
            });
        if !lo.is_finite() {
            return 0.0..1.0;
        }
        if hi - lo < 1.0 {
            return (lo - 0.5)..(hi + 0.5);
        }
        lo..hi
    }

    /// The y range with 5 % headroom, the markers' bands included; whether it should be
    /// logarithmic (all values positive, spanning a factor of ten or more).
    fn y_range(&self) -> (Range<f64>, bool) {
        let values: Vec<f64> = self
            .finite_points()
            .map(|(_, y)| y)
            .chain(
                self.markers
                    .iter()
                    .filter(|m| m.value.is_finite())
                    .flat_map(|m| {
                        let e = if m.error.is_finite() { m.error } else { 0.0 };
                        [m.value - e, m.value + e]
                    }),
            )
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return (0.0..1.0, false);
        }
        if self.scale == Scale::LogIfDecades && lo > 0.0 && hi / lo >= 10.0 {
            return ((lo / 1.2)..(hi * 1.2), true);
        }
        let pad = ((hi - lo) * 0.05).max(hi.abs().max(1e-12) * 1e-3);
        ((lo - pad)..(hi + pad), false)
    }
}

/// Draws `panels` in a grid of two columns under `title` into a `width × height` RGB
/// buffer.
pub fn render(title: &str, panels: &[Panel], width: u32, height: u32) -> Result<Vec<u8>> {
    font()?;
    let mut buffer = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let root = root
            .titled(title, ("sans-serif", 22).into_font().color(&BLACK))
            .map_err(plot_error)?;
        let rows = panels.len().div_ceil(2).max(1);
        let cols = if panels.len() > 1 { 2 } else { 1 };
        for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
            let x = panel.x_range();
            match panel.y_range() {
                (y, true) => draw_panel(area, panel, x, y.log_scale(), f64::NAN)?,
                (y, false) => {
                    let span = y.end - y.start;
                    draw_panel(area, panel, x, y, span)?
                }
            }
        }
        root.present().map_err(plot_error)?;
    }
    Ok(buffer)
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the curves failed: {e:?}")
}

fn draw_panel<DB, Y>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    x: Range<f64>,
    y: Y,
    y_span: f64,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let (x0, x1) = (x.start, x.end);
    // Whole epochs only, at most ten labels.
    let x_labels = ((x1 - x0).round() as usize + 1).clamp(2, 10);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.y_label.as_str())
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .x_labels(x_labels)
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-6 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| tick(*v, y_span))
        .draw()
        .map_err(plot_error)?;
    let mut colours = PALETTE.iter().cycle();
    for series in &panel.series {
        let colour = *colours.next().unwrap_or(&BLACK);
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if points.is_empty() {
            continue;
        }
        let few = points.len() <= 40;
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(plot_error)?
            .label(series.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], colour.stroke_width(2))
            });
        if few {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(plot_error)?;
        }
    }
    for marker in &panel.markers {
        if !marker.value.is_finite() {
            continue;
        }
        let colour = *colours.next().unwrap_or(&BLACK);
        let e = if marker.error.is_finite() {
            marker.error
        } else {
            0.0
        };
        if e > 0.0 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, marker.value - e), (x1, marker.value + e)],
                    colour.mix(0.2).filled(),
                )))
                .map_err(plot_error)?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, marker.value), (x1, marker.value)],
                8,
                5,
                colour.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(marker.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// A y tick's text on an axis spanning `span` (NaN for a log axis): scientific for small
/// magnitudes (learning rates), else with the decimals that tell ticks a tenth of the span
/// apart.
fn tick(v: f64, span: f64) -> String {
    let a = v.abs();
    if a != 0.0 && a < 0.01 {
        return format!("{v:.1e}");
    }
    let decimals = if span.is_finite() && span > 0.0 {
        (-(span / 10.0).log10()).ceil().clamp(0.0, 6.0) as usize
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Renders the panels and writes them as a PNG file (atomically).
pub fn write_png(
    path: &Path,
    title: &str,
    panels: &[Panel],
    width: u32,
    height: u32,
) -> Result<()> {
    let rgb = render(title, panels, width, height)?;
    crate::images::write_png(path, width, height, png::ColorType::Rgb, &rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(values: &[f64]) -> Panel {
        Panel {
            title: "t".into(),
            y_label: "nats".into(),
            scale: Scale::LogIfDecades,
            series: vec![Series {
                label: "a".into(),
                points: values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64 + 1.0, *v))
                    .collect(),
            }],
            markers: vec![],
        }
    }

    #[test]
    fn quantities_spanning_decades_get_a_log_axis() {
        assert!(panel(&[1e-3, 1e-4]).y_range().1);
        assert!(!panel(&[150.0, 100.0]).y_range().1);
        assert!(!panel(&[-1.0, 100.0]).y_range().1);
        let (r, _) = panel(&[5.0]).y_range();
        assert!(r.start < 5.0 && r.end > 5.0);
    }

    #[test]
    fn ticks_read_as_numbers() {
        assert_eq!(tick(1e-3, 1e-3), "1.0e-3");
        assert_eq!(tick(7.2e-4, f64::NAN), "7.2e-4");
        assert_eq!(tick(150.0, 60.0), "150");
        assert_eq!(tick(2.5, 3.0), "2.5");
        assert_eq!(tick(0.0, 3.0), "0");
        // Close ticks keep the digits that tell them apart.
        assert_eq!(tick(0.02412, 0.0004), "0.02412");
        assert_eq!(tick(0.02415, 0.0004), "0.02415");
    }

    #[test]
    fn a_single_epoch_gets_a_window_around_it() {
        assert_eq!(panel(&[5.0]).x_range(), 0.5..1.5);
    }
}
