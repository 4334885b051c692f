//! Resources of a broker process, read from `/proc`: resident and
//! proportional memory, CPU time, threads and open files; and a background
//! sampler that keeps the peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProcSample {
    /// Resident set, KiB (`VmRSS`).
    pub(crate) rss_kib: u64,
    /// Its anonymous part (heap, stacks), KiB (`RssAnon`); the rest is
    /// file-backed: the executable's and the libraries' pages.
    pub(crate) anon_kib: u64,
    /// Proportional set, KiB (`Pss` of `smaps_rollup`): shared library pages
    /// divided among the processes that map them.
    pub(crate) pss_kib: u64,
    pub(crate) threads: u64,
    pub(crate) fds: u64,
    /// User plus system CPU time.
    pub(crate) cpu: Duration,
}

fn kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads `/proc/<pid>`; `None` once the process is gone.
pub(crate) fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // utime and stime are fields 14 and 15; the command name before them is
    // parenthesised and may hold spaces.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = rustix::param::clock_ticks_per_second();
    let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .map(|t| kib_field(&t, "Pss:"))
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Some(ProcSample {
        rss_kib: kib_field(&status, "VmRSS:"),
        anon_kib: kib_field(&status, "RssAnon:"),
        pss_kib: pss,
        threads: kib_field(&status, "Threads:"),
        fds,
        cpu: Duration::from_secs_f64(ticks as f64 / hz as f64),
    })
}

/// CPU time all processes of the machine have used, in ns (`/proc/stat`:
/// everything but idle and iowait).
pub(crate) fn machine_busy_ns() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // already inside user and nice).
    let busy: u64 = ticks.iter().take(8).sum::<u64>()
        - ticks.get(3).copied().unwrap_or(0)
        - ticks.get(4).copied().unwrap_or(0);
    busy * 1_000_000_000 / rustix::param::clock_ticks_per_second()
}

/// What each open file descriptor of a process points to.
pub(crate) fn fd_targets(pid: u32) -> Vec<String> {
    let mut targets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|t| t.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    // Socket inodes differ between samples; compare their kind only.
    for t in &mut targets {
        if t.starts_with("socket:") {
            *t = "socket".to_owned();
        }
    }
    targets.sort();
    targets
}

/// CPU time of a process in ns, from `schedstat` (finer than the clock
/// ticks of `stat`); falls back to `stat`.
pub(crate) fn cpu_ns(pid: u32) -> u64 {
    // /proc/<pid>/schedstat is the main thread only; sum the threads.
    let mut total = 0u64;
    let mut found = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            if let Some(ns) = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok())
            {
                total += ns;
                found = true;
            }
        }
    }
    if found {
        return total;
    }
    sample(pid).map_or(0, |s| u64::try_from(s.cpu.as_nanos()).unwrap_or(u64::MAX))
}

/// Samples a process's RSS in the background and keeps the peak.
#[derive(Debug)]
pub(crate) struct PeakSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl PeakSampler {
    pub(crate) fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(s) = sample(pid) {
                        peak.fetch_max(s.rss_kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(every);
                }
            })
        };
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the peak RSS in KiB.
    pub(crate) fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
