//! The memory limit of `GreengrassContainer` functions
//! (`containerParams.memorySize`).
//!
//! Each worker gets its own memory cgroup where the broker may create one:
//! cgroup v2 `memory.max` when the broker's cgroup hands the memory
//! controller to its children, else cgroup v1 `memory.limit_in_bytes`
//! (what the Greengrass Lambda launcher itself uses). Otherwise the limit is
//! applied as `RLIMIT_AS`, which bounds address space rather than resident
//! memory: shared libraries count, so a Python worker needs a few tens of MB
//! of it just to start. The launcher logs which method is in force; the
//! limit is never left out silently. `GGIPC_LAMBDA_CGROUPS=off` in the
//! broker's environment skips cgroups (hosts where the broker must not
//! create them).
//!
//! The worker is placed in its cgroup before it runs any Python: it starts
//! as `sh -c 'read -r _ && exec "$@"'`, the broker writes its pid to
//! `cgroup.procs` and then sends the newline `read` waits for. With
//! `RLIMIT_AS`, `sh` runs `ulimit -v` before the `exec`. Both keep the
//! broker free of `pre_exec` closures.
//!
//! A broker killed with SIGKILL leaves its workers' cgroups behind
//! (`ggipc-<broker pid>-…` under the broker's own cgroup); the next launcher
//! start removes those of brokers that are gone, once they are empty.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a worker's memory is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MemoryLimit {
    /// `NoContainer`: not bounded.
    Unlimited,
    /// A cgroup per worker under `parent`.
    Cgroup {
        /// The broker's own cgroup folder.
        parent: PathBuf,
        /// 1 or 2.
        version: u8,
        /// KB.
        kb: u64,
    },
    /// `RLIMIT_AS` of `kb` KB.
    AddressSpace {
        /// KB.
        kb: u64,
    },
}

impl MemoryLimit {
    /// The method for a `kb` KB limit on this host, and why it was chosen
    /// (for the component log).
    pub(crate) fn choose(kb: u64) -> (Self, String) {
        let off = std::env::var("GGIPC_LAMBDA_CGROUPS")
            .is_ok_and(|v| matches!(v.as_str(), "off" | "0" | "false" | "no"));
        if off {
            return (
                Self::AddressSpace { kb },
                format!(
                    "memory limit {kb} KB applied as RLIMIT_AS (address space): cgroups are \
                     turned off by GGIPC_LAMBDA_CGROUPS{}",
                    small_address_space(kb)
                ),
            );
        }
        let mut why_not = Vec::new();
        for version in [2u8, 1] {
            match usable_cgroup(version) {
                Ok(parent) => {
                    sweep_stale(&parent);
                    let file = if version == 2 {
                        "memory.max"
                    } else {
                        "memory.limit_in_bytes"
                    };
                    let reason = format!(
                        "memory limit {kb} KB applied through cgroup v{version} {file}, one \
                         cgroup per worker under {}",
                        parent.display()
                    );
                    return (
                        Self::Cgroup {
                            parent,
                            version,
                            kb,
                        },
                        reason,
                    );
                }
                Err(e) => why_not.push(format!("cgroup v{version}: {e}")),
            }
        }
        (
            Self::AddressSpace { kb },
            format!(
                "memory limit {kb} KB applied as RLIMIT_AS (address space, which counts shared \
                 libraries too) because no memory cgroup can be created ({}){}",
                why_not.join("; "),
                small_address_space(kb)
            ),
        )
    }
}

/// A warning for address-space limits a Python worker may not start in:
/// the interpreter with the shim's imports maps about 20 MB (measured with
/// CPython 3.11 on x86-64), before any of the function's own imports.
fn small_address_space(kb: u64) -> &'static str {
    if kb < 64 * 1024 {
        "; a Python worker needs about 20 MB of address space before the function's own \
         imports, so a limit under 64 MB may keep it from starting"
    } else {
        ""
    }
}

/// One line of `/proc/self/mountinfo`: mount root, mount point, file
/// system type and super options.
struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    options: String,
}

fn mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root point options [optional…] - type source super
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                root: unescape(left.get(3)?),
                point: PathBuf::from(unescape(left.get(4)?)),
                fstype: (*right.first()?).to_owned(),
                options: right.get(2).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(v) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The broker's own cgroup folder for `version` (2, or 1 with the memory
/// controller).
fn own_cgroup(version: u8) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let path = text
        .lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = if version == 2 {
                id == "0" && controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == "memory")
            };
            wanted.then(|| path.to_owned())
        })
        .ok_or_else(|| "the broker is in no such hierarchy".to_owned())?;
    let mount = mounts()
        .into_iter()
        .find(|m| {
            if version == 2 {
                m.fstype == "cgroup2"
            } else {
                m.fstype == "cgroup" && m.options.split(',').any(|o| o == "memory")
            }
        })
        .ok_or_else(|| "not mounted".to_owned())?;
    // The mount may show a subtree (a container's cgroup namespace): the
    // broker's path is then relative to the mount's root.
    let relative = path
        .strip_prefix(mount.root.trim_end_matches('/'))
        .unwrap_or(&path)
        .trim_start_matches('/');
    Ok(mount.point.join(relative))
}

/// The broker's cgroup if a child with a memory limit can be made in it.
fn usable_cgroup(version: u8) -> Result<PathBuf, String> {
    let parent = own_cgroup(version)?;
    if version == 2 {
        let control = parent.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control)
            .map_err(|e| format!("cannot read {}: {e}", control.display()))?;
        if !enabled.split_whitespace().any(|c| c == "memory") {
            // Fails (EBUSY) when the broker's cgroup holds processes, the
            // broker's own included, unless it is the root: cgroup v2 lets
            // only leaves hold processes.
            std::fs::write(&control, "+memory").map_err(|e| {
                format!(
                    "the memory controller is not enabled for children of {} and cannot be \
                     ({e})",
                    parent.display()
                )
            })?;
        }
    }
    let probe = parent.join(format!("ggipc-{}-probe", std::process::id()));
    std::fs::create_dir(&probe)
        .map_err(|e| format!("cannot create a cgroup in {}: {e}", parent.display()))?;
    let file = if version == 2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let has_limit = probe.join(file).exists();
    let _ = std::fs::remove_dir(&probe);
    if has_limit {
        Ok(parent)
    } else {
        Err(format!(
            "a new cgroup in {} has no {file}",
            parent.display()
        ))
    }
}

/// Removes the empty worker cgroups of brokers that are gone (killed with
/// SIGKILL, so they could not remove their own). A cgroup whose broker
/// still runs is left alone, and one with processes in it cannot be
/// removed anyway.
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("ggipc-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// One worker's cgroup, removed when the worker is gone.
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    dir: PathBuf,
    version: u8,
}

impl WorkerCgroup {
    /// Creates `<parent>/<name>` with a limit of `kb` KB.
    pub(crate) fn create(parent: &Path, version: u8, name: &str, kb: u64) -> Result<Self, String> {
        let dir = parent.join(name);
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot create the cgroup {}: {e}", dir.display()))?;
        let this = Self { dir, version };
        let bytes = (kb.saturating_mul(1024)).to_string();
        let (limit, swap) = if version == 2 {
            ("memory.max", "memory.swap.max")
        } else {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        };
        std::fs::write(this.dir.join(limit), &bytes)
            .map_err(|e| format!("cannot write {}/{limit}: {e}", this.dir.display()))?;
        // Swap must not extend the limit. Hosts without swap accounting
        // have no such file; the limit then applies to memory alone.
        let swap_value = if version == 2 { "0" } else { bytes.as_str() };
        let _ = std::fs::write(this.dir.join(swap), swap_value);
        Ok(this)
    }

    /// The file a process id is written to, to move it in.
    pub(crate) fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Whether the kernel killed a process here for exceeding the limit.
    pub(crate) fn oom_killed(&self) -> bool {
        let file = if self.version == 2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("oom_kill "))
            .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
    }

    /// Removes the cgroup once its processes are gone (they were killed;
    /// the kernel may take a moment to let go of them).
    pub(crate) async fn remove(self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(cgroup = %self.dir.display(), "cannot remove a Lambda worker's cgroup");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_read() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\"), r"/end\");
    }

    #[test]
    fn only_empty_cgroups_of_gone_brokers_are_swept() {
        let parent = tempfile::tempdir().unwrap();
        // Above any kernel's pid_max: no such process.
        let gone = parent.path().join("ggipc-4000000000-com.example.A-1");
        let busy = parent.path().join("ggipc-4000000001-com.example.A-2");
        let ours = parent
            .path()
            .join(format!("ggipc-{}-com.example.A-1", std::process::id()));
        let other = parent.path().join("system.slice");
        for dir in [&gone, &busy, &ours, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(busy.join("cgroup.procs"), "1").unwrap();
        sweep_stale(parent.path());
        assert!(!gone.exists());
        assert!(busy.exists() && ours.exists() && other.exists());
    }

    #[test]
    fn a_method_is_always_chosen_and_said() {
        let (limit, reason) = MemoryLimit::choose(16384);
        match limit {
            MemoryLimit::Cgroup { kb, .. } | MemoryLimit::AddressSpace { kb } => {
                assert_eq!(kb, 16384);
            }
            MemoryLimit::Unlimited => panic!("a limit was asked for"),
        }
        assert!(reason.contains("16384 KB"), "{reason}");
    }
}
