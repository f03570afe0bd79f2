//! Results: the table, the machine-readable `RESULT` lines, and an SVG chart.

use std::fmt::Write as _;

/// One workload's medians and its ratios (ours / peer, in the row's unit).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) workload: String,
    pub(crate) unit: &'static str,
    pub(crate) higher_is_better: bool,
    pub(crate) figures: Vec<(String, f64)>,
    pub(crate) ratios: Vec<(String, f64)>,
    /// Extra key=value pairs for the RESULT line.
    pub(crate) extra: Vec<(String, String)>,
}

impl Row {
    pub(crate) fn new(workload: &str, unit: &'static str, higher_is_better: bool) -> Row {
        Row {
            workload: workload.into(),
            unit,
            higher_is_better,
            figures: Vec::new(),
            ratios: Vec::new(),
            extra: Vec::new(),
        }
    }

    pub(crate) fn figure(&mut self, name: &str, value: f64) -> &mut Row {
        self.figures.push((name.into(), value));
        self
    }

    pub(crate) fn value(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Add `ratio_<label>` = ours / peer.
    pub(crate) fn ratio(&mut self, label: &str, ours: &str, peer: &str) -> &mut Row {
        if let (Some(a), Some(b)) = (self.value(ours), self.value(peer))
            && b > 0.0
        {
            self.ratios.push((label.into(), a / b));
        }
        self
    }

    /// Parse a `RESULT …` line back (for re-rendering saved runs).
    pub(crate) fn parse(line: &str) -> Option<Row> {
        let rest = line.strip_prefix("RESULT ")?;
        let mut workload = None;
        let mut unit: Option<&'static str> = None;
        let mut figures = Vec::new();
        let mut ratios = Vec::new();
        for pair in rest.split_whitespace() {
            let (k, v) = pair.split_once('=')?;
            match k {
                "workload" => workload = Some(v.to_string()),
                "unit" => {
                    unit = Some(match v {
                        "msgs_per_s" => "msgs_per_s",
                        "ns_per_rt" => "ns_per_rt",
                        "us_p50" => "us_p50",
                        "us_p99" => "us_p99",
                        "us_p99_9" => "us_p99_9",
                        "bytes_per_conn" => "bytes_per_conn",
                        "bytes_per_session" => "bytes_per_session",
                        "ms" => "ms",
                        _ => "ns",
                    })
                }
                k if k.starts_with("ratio_") => {
                    ratios.push((k["ratio_".len()..].to_string(), v.parse().ok()?))
                }
                k => {
                    if let Ok(n) = v.parse() {
                        figures.push((k.to_string(), n));
                    }
                }
            }
        }
        let unit = unit?;
        Some(Row {
            workload: workload?,
            unit,
            higher_is_better: unit == "msgs_per_s",
            figures,
            ratios,
            extra: Vec::new(),
        })
    }

    pub(crate) fn result_line(&self) -> String {
        let mut line = format!("RESULT workload={} unit={}", self.workload, self.unit);
        for (n, v) in &self.figures {
            let _ = write!(line, " {n}={}", fmt(*v));
        }
        for (n, v) in &self.ratios {
            let _ = write!(line, " ratio_{n}={v:.3}");
        }
        for (k, v) in &self.extra {
            let _ = write!(line, " {k}={v}");
        }
        line
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// A plain-text table of all rows.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<8} {:<14} {:<60} ratios (ours / peer)",
        "workload", "unit", "medians"
    );
    for r in rows {
        let figures: Vec<String> = r
            .figures
            .iter()
            .map(|(n, v)| format!("{n}={}", fmt(*v)))
            .collect();
        let ratios: Vec<String> = r
            .ratios
            .iter()
            .map(|(n, v)| format!("{n}={v:.2}"))
            .collect();
        let _ = writeln!(
            t,
            "{:<8} {:<14} {:<60} {}{}",
            r.workload,
            r.unit,
            figures.join(" "),
            ratios.join(" "),
            if r.higher_is_better {
                ""
            } else {
                "  (lower is better)"
            }
        );
    }
    t
}

/// An SVG bar chart of every ratio on a log scale, bars diverging from 1.0.
pub(crate) fn svg(rows: &[Row], title: &str) -> String {
    let bars: Vec<(String, f64, bool)> = rows
        .iter()
        .flat_map(|r| {
            r.ratios
                .iter()
                .map(move |(n, v)| (format!("{} {n}", r.workload), *v, r.higher_is_better))
        })
        .collect();
    let (w, bar_h, left) = (900.0, 20.0, 230.0);
    let h = 70.0 + bars.len() as f64 * (bar_h + 6.0);
    // log2 scale from 1/32 to 32, 1.0 in the middle.
    let span = 5.0;
    let unit = (w - left - 60.0) / (2.0 * span);
    let center = left + span * unit;
    let x = |v: f64| center + v.max(1e-9).log2().clamp(-span, span) * unit;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="15">{title}</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="38" fill="#555">ratio ours / peer, log scale; green is better for us (higher throughput, lower latency or memory)</text>"##
    );
    for tick in [1.0 / 16.0, 0.25, 1.0, 4.0, 16.0] {
        let tx = x(tick);
        let label = if tick < 1.0 {
            format!("1/{}", (1.0 / tick) as u32)
        } else {
            format!("{tick}")
        };
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="50" x2="{tx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{label}×</text>"##,
            h - 16.0,
            h - 4.0
        );
    }
    for (i, (label, v, higher)) in bars.iter().enumerate() {
        let y = 54.0 + i as f64 * (bar_h + 6.0);
        let good = if *higher { *v >= 1.0 } else { *v <= 1.0 };
        let color = if good { "#3a9a4a" } else { "#c8553d" };
        let (a, b) = (center.min(x(*v)), center.max(x(*v)));
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#,
            left - 8.0,
            y + 14.0
        );
        let _ = writeln!(
            s,
            r#"<rect x="{a:.1}" y="{y}" width="{:.1}" height="{bar_h}" fill="{color}"/>"#,
            (b - a).max(1.0)
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}">{v:.2}</text>"#,
            b + 4.0,
            y + 14.0
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{center:.1}" y1="48" x2="{center:.1}" y2="{:.1}" stroke="black"/>"#,
        h - 16.0
    );
    s.push_str("</svg>\n");
    s
}
