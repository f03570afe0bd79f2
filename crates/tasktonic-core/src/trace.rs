//! Sparkle traces: what the [`Distiller`](crate::Distiller) records, and its Markdown report.

use std::fmt::Write as _;
use std::time::Duration;

use crate::{Lifecycle, TonicId};

/// One executed sparkle (or hook) in a [`Trace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// Virtual time since the Distiller started.
    pub at: Duration,
    /// The tonic it ran on.
    pub tonic: TonicId,
    /// That tonic's name.
    pub tonic_name: String,
    /// The sparkle's name: `on_start`, `timer`, a message type, or a name given with
    /// [`Handle::sparkle_named`](crate::Handle::sparkle_named).
    pub sparkle: &'static str,
    /// The tonic that sent it; `None` for timers, system work and sends from outside tonics.
    pub from: Option<TonicId>,
    /// The state (`Debug`) before it ran.
    pub state_before: String,
    /// The state after it and the transitions it queued ran.
    pub state_after: String,
    /// The tonic's lifecycle after it ran.
    pub lifecycle: Lifecycle,
}

/// Collects trace entries while a Distiller runs.
#[derive(Debug, Default)]
pub(crate) struct Tracer {
    pub(crate) entries: Vec<TraceEntry>,
}

impl Tracer {
    pub(crate) fn record(&mut self, entry: TraceEntry) {
        self.entries.push(entry);
    }
}

/// Every sparkle the Distiller ran, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The entries, in execution order.
    pub entries: Vec<TraceEntry>,
}

impl Trace {
    /// The entries of one tonic.
    pub fn of(&self, tonic: TonicId) -> impl Iterator<Item = &TraceEntry> {
        self.entries.iter().filter(move |e| e.tonic == tonic)
    }

    /// The sparkle names, in order (handy in assertions).
    pub fn sparkles(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.sparkle).collect()
    }

    /// The sequence of distinct states `tonic` went through, starting with its first.
    pub fn states_of(&self, tonic: TonicId) -> Vec<String> {
        let mut states: Vec<String> = Vec::new();
        for e in self.of(tonic) {
            for s in [&e.state_before, &e.state_after] {
                if states.last() != Some(s) {
                    states.push(s.clone());
                }
            }
        }
        states
    }

    /// A Markdown report: a table of every sparkle and a Mermaid sequence diagram of who
    /// sparkled whom.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasktonic_core::Trace;
    ///
    /// let md = Trace::default().to_markdown();
    /// assert!(md.contains("```mermaid"));
    /// ```
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        md.push_str("# Distiller trace\n\n");
        md.push_str("| # | time | tonic | sparkle | from | state before | state after |\n");
        md.push_str("|---|---|---|---|---|---|---|\n");
        let name_of = |id: TonicId| {
            self.entries
                .iter()
                .find(|e| e.tonic == id)
                .map_or_else(|| id.to_string(), |e| e.tonic_name.clone())
        };
        for (i, e) in self.entries.iter().enumerate() {
            let from = e.from.map_or_else(|| "-".to_string(), name_of);
            let _ = writeln!(
                md,
                "| {} | {:?} | {} | {} | {} | {} | {} |",
                i + 1,
                e.at,
                cell(&e.tonic_name),
                cell(e.sparkle),
                cell(&from),
                cell(&e.state_before),
                cell(&e.state_after)
            );
        }
        md.push_str("\n```mermaid\nsequenceDiagram\n");
        let mut seen: Vec<TonicId> = Vec::new();
        for e in &self.entries {
            for id in std::iter::once(e.tonic).chain(e.from) {
                if !seen.contains(&id) {
                    seen.push(id);
                    let _ = writeln!(
                        md,
                        "    participant T{} as {}",
                        id.as_u64(),
                        mermaid(&name_of(id))
                    );
                }
            }
        }
        for e in &self.entries {
            let to = e.tonic.as_u64();
            let from = e.from.map_or(to, TonicId::as_u64);
            let _ = writeln!(md, "    T{from}->>T{to}: {}", mermaid(e.sparkle));
            if e.state_before != e.state_after {
                let _ = writeln!(
                    md,
                    "    Note over T{to}: {} → {}",
                    mermaid(&e.state_before),
                    mermaid(&e.state_after)
                );
            }
        }
        md.push_str("```\n");
        md
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn mermaid(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ';' | '#' | ':' | '\n' | '<' | '>' => ' ',
            c => c,
        })
        .collect()
}
