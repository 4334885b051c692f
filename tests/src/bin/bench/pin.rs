//! CPU placement: the load generator on one core, the broker on the other,
//! so each run's broker CPU share is its own.

use rustix::thread::{CpuSet, sched_setaffinity};

/// The CPU the load generator's threads run on when pinning.
pub(crate) const LOAD_CPU: usize = 0;
/// The CPU brokers (and the floor's reader) run on when pinning.
pub(crate) const BROKER_CPU: usize = 1;

/// Pins the calling thread to `cpu` (no-op for `None`).
pub(crate) fn set_current(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    let mut set = CpuSet::new();
    set.set(cpu);
    if let Err(e) = sched_setaffinity(None, &set) {
        eprintln!("bench: cannot pin to cpu {cpu}: {e}");
    }
}

/// Runs `spawn` with the calling thread pinned to `cpu`, so that a child
/// process started inside inherits the placement, then pins the thread back
/// to the load generator's CPU.
pub(crate) fn spawning_on<T>(cpu: Option<usize>, spawn: impl FnOnce() -> T) -> T {
    if cpu.is_none() {
        return spawn();
    }
    set_current(cpu);
    let value = spawn();
    set_current(Some(LOAD_CPU));
    value
}

/// Raises the open-file limit to its hard maximum; children inherit it.
/// The connection-scale scenario needs two descriptors per connection here
/// and one in the broker.
pub(crate) fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        eprintln!("bench: cannot raise the open-file limit: {e}");
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
