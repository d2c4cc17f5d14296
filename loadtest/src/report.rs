//! Results as a terminal table, Markdown, JSON and CSV.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::procwatch::Machine;
use crate::stats::Summary;

/// A whole run: one or more phases, each against one or more targets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) tool: String,
    pub(crate) command: String,
    pub(crate) machine: Machine,
    pub(crate) targets: Vec<TargetInfo>,
    pub(crate) phases: Vec<PhaseReport>,
    pub(crate) checks: Vec<Check>,
    pub(crate) notes: Vec<String>,
}

/// A target as started: what it is and how much memory it holds when idle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TargetInfo {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) idle_rss_bytes: Option<u64>,
    /// The anonymous part of it (heap, stacks); the rest is code mapped from files.
    pub(crate) idle_anon_rss_bytes: Option<u64>,
    pub(crate) idle_rss_after_load_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PhaseReport {
    pub(crate) name: String,
    pub(crate) workload: String,
    pub(crate) load: String,
    pub(crate) results: Vec<TargetResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TargetResult {
    pub(crate) target: String,
    pub(crate) summary: Summary,
}

/// A goal from the issue, with the measured figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) goal: String,
    pub(crate) figure: String,
    /// None when a target needed for it was not run.
    pub(crate) met: Option<bool>,
}

impl PhaseReport {
    pub(crate) fn get(&self, target: &str) -> Option<&Summary> {
        self.results
            .iter()
            .find(|r| r.target == target)
            .map(|r| &r.summary)
    }
}

impl Report {
    pub(crate) fn phase(&self, name: &str) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.name == name)
    }
}

const COLUMNS: [&str; 13] = [
    "target",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p99.9 ms",
    "max ms",
    "TTFB p50 ms",
    "MB/s",
    "errors",
    "peak RSS MiB",
    "CPU s",
    "CPU µs/req",
];

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn row(result: &TargetResult) -> Vec<String> {
    let s = &result.summary;
    let process = s.process;
    vec![
        result.target.clone(),
        format!("{:.0}", s.requests_per_s),
        ms(s.latency_ms.p50),
        ms(s.latency_ms.p90),
        ms(s.latency_ms.p99),
        ms(s.latency_ms.p99_9),
        ms(s.latency_ms.max),
        ms(s.ttfb_ms.p50),
        format!("{:.0}", s.mb_per_s_received + s.mb_per_s_sent),
        s.errors_text(),
        process.map_or_else(|| "-".into(), |p| mb(p.peak_rss_bytes)),
        process.map_or_else(|| "-".into(), |p| format!("{:.2}", p.cpu_s)),
        s.cpu_us_per_request()
            .map_or_else(|| "-".into(), |us| format!("{us:.0}")),
    ]
}

/// Aligned columns: text on the left, numbers on the right. Markdown adds the pipes.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>], markdown: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    // Numbers (and "-") go right, text left.
    let numeric: Vec<bool> = (0..widths.len())
        .map(|i| {
            i > 0
                && rows.iter().all(|row| {
                    row.get(i).is_none_or(|cell| {
                        cell == "-" || cell.trim_end_matches('x').parse::<f64>().is_ok()
                    })
                })
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let width = widths.get(i).copied().unwrap_or(0);
                if numeric.get(i).copied().unwrap_or(false) {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        if markdown {
            let _ = writeln!(out, "| {} |", padded.join(" | "));
        } else {
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        }
    };
    line(&mut out, headers.to_vec());
    if markdown {
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if numeric.get(i).copied().unwrap_or(false) {
                    format!("{}:", "-".repeat(w.saturating_sub(1)))
                } else {
                    "-".repeat(*w)
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", rule.join(" | "));
    } else {
        let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        let _ = writeln!(out, "{}", "-".repeat(total));
    }
    for row in rows {
        line(&mut out, row.iter().map(String::as_str).collect());
    }
    out
}

/// The report for a person: per-phase tables, idle memory, checks, notes.
pub(crate) fn render(report: &Report, markdown: bool) -> String {
    let mut out = String::new();
    let heading = |out: &mut String, text: &str| {
        if markdown {
            let _ = writeln!(out, "\n#### {text}\n");
        } else {
            let _ = writeln!(out, "\n== {text}");
        }
    };
    if !markdown {
        let _ = writeln!(out, "machine: {}", report.machine.describe());
    }
    for phase in &report.phases {
        heading(
            &mut out,
            &format!("{}: {} | {}", phase.name, phase.workload, phase.load),
        );
        let rows: Vec<Vec<String>> = phase.results.iter().map(row).collect();
        out.push_str(&table(&COLUMNS, &rows, markdown));
    }
    if report
        .targets
        .iter()
        .any(|t| t.idle_rss_bytes.is_some() || t.idle_rss_after_load_bytes.is_some())
    {
        heading(&mut out, "idle memory (RSS of the process under test)");
        let rows: Vec<Vec<String>> = report
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.idle_rss_bytes.map_or_else(|| "-".into(), mb),
                    t.idle_anon_rss_bytes.map_or_else(|| "-".into(), mb),
                    t.idle_rss_after_load_bytes.map_or_else(|| "-".into(), mb),
                    t.description.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "target",
                "idle MiB",
                "of it anon MiB",
                "idle after load MiB",
                "what",
            ],
            &rows,
            markdown,
        ));
    }
    if !report.checks.is_empty() {
        heading(&mut out, "targets (sigv4-proxy)");
        let rows: Vec<Vec<String>> = report
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.goal.clone(),
                    c.figure.clone(),
                    match c.met {
                        Some(true) => "met".into(),
                        Some(false) => "MISSED".into(),
                        None => "not measured".into(),
                    },
                ]
            })
            .collect();
        out.push_str(&table(
            &["check", "goal", "measured", "result"],
            &rows,
            markdown,
        ));
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out);
        for note in &report.notes {
            let _ = writeln!(out, "{}{note}", if markdown { "- " } else { "note: " });
        }
    }
    out
}

pub(crate) const CSV_HEADER: &str = "phase,target,requests,ok,errors,errors_by_kind,elapsed_s,\
requests_per_s,p50_ms,p90_ms,p99_ms,p99_9_ms,max_ms,mean_ms,ttfb_p50_ms,ttfb_p99_ms,\
mb_per_s_received,mb_per_s_sent,bytes_sent,bytes_received,peak_rss_bytes,end_rss_bytes,cpu_s,cpu_us_per_request";

/// One line per phase and target.
pub(crate) fn csv(report: &Report) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for phase in &report.phases {
        for result in &phase.results {
            let s = &result.summary;
            let p = s.process;
            let fields = [
                csv_field(&phase.name),
                csv_field(&result.target),
                s.requests.to_string(),
                s.ok.to_string(),
                s.errors.to_string(),
                csv_field(&s.errors_text()),
                format!("{:.3}", s.elapsed_s),
                format!("{:.1}", s.requests_per_s),
                format!("{:.4}", s.latency_ms.p50),
                format!("{:.4}", s.latency_ms.p90),
                format!("{:.4}", s.latency_ms.p99),
                format!("{:.4}", s.latency_ms.p99_9),
                format!("{:.4}", s.latency_ms.max),
                format!("{:.4}", s.latency_ms.mean),
                format!("{:.4}", s.ttfb_ms.p50),
                format!("{:.4}", s.ttfb_ms.p99),
                format!("{:.2}", s.mb_per_s_received),
                format!("{:.2}", s.mb_per_s_sent),
                s.bytes_sent.to_string(),
                s.bytes_received.to_string(),
                p.map(|p| p.peak_rss_bytes.to_string()).unwrap_or_default(),
                p.map(|p| p.end_rss_bytes.to_string()).unwrap_or_default(),
                p.map(|p| format!("{:.3}", p.cpu_s)).unwrap_or_default(),
                s.cpu_us_per_request()
                    .map(|us| format!("{us:.1}"))
                    .unwrap_or_default(),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

pub(crate) fn write_json(report: &Report, path: &Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub(crate) fn write_csv(report: &Report, path: &Path) -> Result<(), String> {
    std::fs::write(path, csv(report)).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Percentiles, ProcessUsage};

    fn sample() -> Report {
        let summary = Summary {
            requests: 100,
            ok: 99,
            errors: 1,
            errors_by_kind: [("status_502".to_owned(), 1)].into(),
            elapsed_s: 1.0,
            requests_per_s: 99.0,
            latency_ms: Percentiles {
                p50: 0.25,
                p90: 0.5,
                p99: 1.5,
                p99_9: 12.5,
                max: 150.0,
                mean: 0.3,
            },
            process: Some(ProcessUsage {
                peak_rss_bytes: 8 << 20,
                end_rss_bytes: 7 << 20,
                cpu_s: 0.0099,
                processes: 1,
            }),
            ..Summary::default()
        };
        Report {
            tool: "loadtest".into(),
            command: "loadtest run".into(),
            machine: Machine::read(),
            targets: vec![TargetInfo {
                name: "sigv4-proxy".into(),
                description: "release build".into(),
                idle_rss_bytes: Some(5 << 20),
                idle_anon_rss_bytes: Some(1 << 20),
                idle_rss_after_load_bytes: None,
            }],
            phases: vec![PhaseReport {
                name: "query".into(),
                workload: "mix".into(),
                load: "32 connections".into(),
                results: vec![TargetResult {
                    target: "sigv4-proxy".into(),
                    summary,
                }],
            }],
            checks: vec![Check {
                name: "query throughput".into(),
                goal: ">= 1.0x nginx".into(),
                figure: "1.10x".into(),
                met: Some(true),
            }],
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn table_aligns_columns() {
        let text = table(
            &["target", "req/s"],
            &[
                vec!["a".into(), "1".into()],
                vec!["long-name".into(), "12345".into()],
            ],
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "target     req/s");
        assert_eq!(lines[2], "a              1");
        assert_eq!(lines[3], "long-name  12345");
        let md = table(&["target", "req/s"], &[vec!["a".into(), "1".into()]], true);
        assert_eq!(md.lines().nth(1), Some("| ------ | ----: |"));
    }

    #[test]
    fn render_shows_every_section() {
        let text = render(&sample(), false);
        assert!(text.contains("== query: mix | 32 connections"), "{text}");
        assert!(text.contains("status_502=1"), "{text}");
        assert!(text.contains("100"), "cpu µs per request: {text}");
        assert!(text.contains("idle memory"), "{text}");
        assert!(text.contains("met"), "{text}");
        assert!(text.contains("note: a note"), "{text}");
        assert!(render(&sample(), true).contains("#### query"));
    }

    #[test]
    fn csv_has_a_row_per_result_with_every_column() {
        let text = csv(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let columns = CSV_HEADER.split(',').count();
        assert_eq!(lines[1].split(',').count(), columns, "{}", lines[1]);
        assert!(lines[1].starts_with("query,sigv4-proxy,100,99,1,status_502=1,"));
        assert!(lines[1].ends_with(",100.0"), "{}", lines[1]);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    fn json_round_trips_through_serde() {
        let value = serde_json::to_value(sample()).expect("serialises");
        assert_eq!(value["phases"][0]["results"][0]["summary"]["ok"], 99);
        assert_eq!(value["checks"][0]["met"], true);
    }
}
