//! Memory and CPU of the process under test, read from /proc (Linux).
//!
//! Peak RSS is the kernel's own high-water mark (`VmHWM`), reset at the start of each phase
//! through `/proc/<pid>/clear_refs`, so it catches spikes between samples; a 20 ms sampler
//! of `VmRSS` backs it up where the reset is not allowed. For a process with children
//! (nginx's master and workers) the figures are summed over the tree.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::stats::ProcessUsage;

/// `USER_HZ`: the unit of utime/stime in /proc/<pid>/stat. 100 on every Linux ABI in use.
const CLOCK_TICKS_PER_S: f64 = 100.0;
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// Watches a process tree for the length of a phase.
#[derive(Debug)]
pub(crate) struct Watch {
    pids: Vec<u32>,
    cpu_ticks_at_start: u64,
    hwm_reset: bool,
    sampled_peak: Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// Starts watching `pid` and its descendants. Must run inside a tokio runtime.
    pub(crate) fn start(pid: u32) -> Self {
        let pids = tree(pid);
        // "5" resets the peak RSS to the current RSS (Linux ≥ 4.0).
        let hwm_reset = pids
            .iter()
            .all(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok());
        let cpu_ticks_at_start = pids.iter().filter_map(|pid| cpu_ticks(*pid)).sum();
        let sampled_peak = Arc::new(AtomicU64::new(rss_of(&pids)));
        let sampler = tokio::spawn({
            let pids = pids.clone();
            let peak = sampled_peak.clone();
            async move {
                let mut every = tokio::time::interval(SAMPLE_EVERY);
                loop {
                    every.tick().await;
                    peak.fetch_max(rss_of(&pids), Ordering::Relaxed);
                }
            }
        });
        Self {
            pids,
            cpu_ticks_at_start,
            hwm_reset,
            sampled_peak,
            sampler,
        }
    }

    pub(crate) fn finish(self) -> ProcessUsage {
        self.sampler.abort();
        let end_rss = rss_of(&self.pids);
        let mut peak = self.sampled_peak.load(Ordering::Relaxed).max(end_rss);
        if self.hwm_reset {
            let hwm: u64 = self
                .pids
                .iter()
                .filter_map(|pid| status_kb(*pid, "VmHWM:"))
                .sum::<u64>()
                * 1024;
            peak = peak.max(hwm);
        }
        let cpu_ticks_now: u64 = self.pids.iter().filter_map(|pid| cpu_ticks(*pid)).sum();
        ProcessUsage {
            peak_rss_bytes: peak,
            end_rss_bytes: end_rss,
            cpu_s: cpu_ticks_now.saturating_sub(self.cpu_ticks_at_start) as f64 / CLOCK_TICKS_PER_S,
            processes: self.pids.len(),
        }
    }
}

/// Current resident set of a process tree, in bytes.
pub(crate) fn tree_rss(pid: u32) -> u64 {
    rss_of(&tree(pid))
}

/// Current anonymous resident memory (heap, stacks) of a process tree, in bytes: RSS less
/// the pages of the executable and libraries mapped from files.
pub(crate) fn tree_anon_rss(pid: u32) -> u64 {
    tree(pid)
        .iter()
        .filter_map(|pid| status_kb(*pid, "RssAnon:"))
        .sum::<u64>()
        * 1024
}

fn rss_of(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| status_kb(*pid, "VmRSS:"))
        .sum::<u64>()
        * 1024
}

/// User plus system CPU seconds this process has used so far.
pub(crate) fn self_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| parse_stat_cpu_ticks(&text))
        .map_or(0.0, |ticks| ticks as f64 / CLOCK_TICKS_PER_S)
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&text, field)
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A `Name:   1234 kB` line of /proc/<pid>/status.
pub(crate) fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// utime + stime from /proc/<pid>/stat. The command name in parentheses may hold spaces, so
/// fields are counted after the last `)`: state is the 3rd field, utime the 14th.
pub(crate) fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and all its descendants, found by walking every process' parent.
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| parse_stat_ppid(&stat))
            {
                parents.push((child, ppid));
            }
        }
    }
    descendants(pid, &parents)
}

pub(crate) fn descendants(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut out = vec![root];
    let mut index = 0;
    while index < out.len() {
        let parent = out[index];
        out.extend(
            parents
                .iter()
                .filter(|(child, ppid)| *ppid == parent && *child != parent)
                .map(|(child, _)| *child),
        );
        index += 1;
    }
    out
}

/// What the report says about the machine.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) kernel: String,
    pub(crate) memory_gib: f64,
}

impl Machine {
    pub(crate) fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |v| v.trim().to_owned());
        let memory_kb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_status_kb(&text, "MemTotal:"))
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
            memory_gib: memory_kb as f64 / 1024.0 / 1024.0,
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{} CPUs ({}), {:.0} GiB, Linux {}",
            self.cpus, self.cpu_model, self.memory_gib, self.kernel
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_in_kb() {
        let status = "Name:\tsigv4-proxy\nVmHWM:\t   10240 kB\nVmRSS:\t    8192 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS:"), Some(8192));
        assert_eq!(parse_status_kb(status, "VmHWM:"), Some(10240));
        assert_eq!(parse_status_kb(status, "VmSwap:"), None);
    }

    #[test]
    fn stat_cpu_and_parent_survive_odd_command_names() {
        let stat = "4242 (nginx: worker) S 4241 4241 4241 0 -1 4194624 100 0 0 0 \
                    250 75 0 0 20 0 1 0 12345 1000000 300 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_ppid(stat), Some(4241));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn descendants_cover_the_whole_tree_only() {
        let parents = [(2, 1), (3, 2), (4, 2), (5, 9), (1, 0)];
        let mut tree = descendants(1, &parents);
        tree.sort_unstable();
        assert_eq!(tree, [1, 2, 3, 4]);
    }

    #[test]
    fn this_process_is_visible() {
        assert!(tree_rss(std::process::id()) > 0);
        assert!(self_cpu_s() >= 0.0);
    }
}
