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

/// An SVG bar chart of every ratio, with 1.0 marked.
pub(crate) fn svg(rows: &[Row], title: &str) -> String {
    let bars: Vec<(String, f64, bool)> = rows
        .iter()
        .flat_map(|r| {
            r.ratios
                .iter()
                .map(move |(n, v)| (format!("{} {n}", r.workload), *v, r.higher_is_better))
        })
        .collect();
    let max = bars.iter().map(|b| b.1).fold(1.5f64, f64::max).min(20.0);
    let (w, bar_h, left) = (900.0, 22.0, 260.0);
    let h = 60.0 + bars.len() as f64 * (bar_h + 6.0);
    let scale = (w - left - 80.0) / max;
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
        r##"<text x="10" y="38" fill="#555">ratio ours / peer; green is better for us (higher throughput, lower latency)</text>"##
    );
    for (i, (label, v, higher)) in bars.iter().enumerate() {
        let y = 50.0 + i as f64 * (bar_h + 6.0);
        let good = if *higher { *v >= 1.0 } else { *v <= 1.0 };
        let color = if good { "#3a9a4a" } else { "#c8553d" };
        let len = v.min(max) * scale;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#,
            left - 8.0,
            y + 15.0
        );
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{y}" width="{len:.1}" height="{bar_h}" fill="{color}"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}">{v:.2}</text>"#,
            left + len + 4.0,
            y + 15.0
        );
    }
    let one = left + scale;
    let _ = writeln!(
        s,
        r#"<line x1="{one:.1}" y1="44" x2="{one:.1}" y2="{}" stroke="black" stroke-dasharray="4 3"/>"#,
        h - 4.0
    );
    s.push_str("</svg>\n");
    s
}
