//! How the threads that hash passwords share the machine with the threads serving
//! requests (Linux; elsewhere these do nothing).
//!
//! Three measured rules, from `perf sched` traces of a login flood on two cores
//! (Linux 6.18, EEVDF, HZ=250):
//!
//! - **Low priority** (`SCHED_BATCH`, nice 19): hashing takes every cycle nothing else
//!   wants and weighs little against request threads.
//! - **A long slice** (100 ms, `sched_setattr`): a thread that has just been given the CPU
//!   keeps it for its slice unless the waking thread's slice is shorter. With the default
//!   slice a request thread waking on a core where a hash had just resumed waited for the
//!   next tick (4 ms); with a long hashing slice every request thread's slice is the
//!   shorter, so it runs at once.
//! - **One hash a core** (affinity): left free, the kernel sometimes moved both hashes onto
//!   one core and left the other idle for milliseconds, with request threads queued behind
//!   them. Each running hash is pinned to its own core of the process's allowed set, and
//!   unpinned when it ends (the blocking pool serves other work too).

use std::sync::{Arc, Mutex};

/// Lowers the calling thread to `SCHED_BATCH`, nice 19, with a 100 ms slice. Lowering
/// one's own priority needs no privilege. The thread stays so, which suits the blocking
/// pool (hashing, file I/O) and leaves the async workers and SQLite's threads as they are.
#[cfg(target_os = "linux")]
pub fn give_way_to_requests() {
    const SLICE_NS: u64 = 100_000_000;
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_BATCH as u32,
        sched_flags: 0,
        sched_nice: 19,
        sched_priority: 0,
        sched_runtime: SLICE_NS,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: plain syscalls on the calling thread (pid 0), with a valid attribute struct.
    let failed = unsafe {
        libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0u32) != 0 && {
            // Kernels without sched_setattr: the same without the slice.
            let param = libc::sched_param { sched_priority: 0 };
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) != 0
                || libc::setpriority(libc::PRIO_PROCESS, tid, 19) != 0
        }
    };
    if failed {
        tracing::debug!("could not lower the priority of a hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn give_way_to_requests() {}

/// The cores this process may run on, each lent to one hash at a time.
#[derive(Clone)]
pub struct Cores {
    all: Arc<[usize]>,
    free: Arc<Mutex<Vec<usize>>>,
}

impl Cores {
    pub fn new(all: Vec<usize>) -> Cores {
        Cores {
            free: Arc::new(Mutex::new(all.iter().rev().copied().collect())),
            all: all.into(),
        }
    }

    /// The CPUs of the process's affinity mask (none known: no pinning).
    pub fn of_this_process() -> Cores {
        Cores::new(allowed_cpus())
    }

    /// Lends a free core, or `None` when every core is lent (or none is known).
    pub fn lend(&self) -> Option<LentCore> {
        let cpu = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        Some(LentCore {
            cpu,
            cores: self.clone(),
        })
    }
}

/// A core lent to one hash; given back on drop.
pub struct LentCore {
    cpu: usize,
    cores: Cores,
}

impl LentCore {
    #[cfg(test)]
    fn cpu(&self) -> usize {
        self.cpu
    }

    /// Runs `f` on the calling thread pinned to this core, then lets the thread run
    /// anywhere it may again.
    pub fn run_pinned<T>(&self, f: impl FnOnce() -> T) -> T {
        let pinned = set_affinity(&[self.cpu]);
        let out = f();
        if pinned {
            set_affinity(&self.cores.all);
        }
        out
    }
}

impl Drop for LentCore {
    fn drop(&mut self) {
        self.cores
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.cpu);
    }
}

#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

#[cfg(target_os = "linux")]
fn set_affinity(cpus: &[usize]) -> bool {
    // SAFETY: cpu_set_t is plain data; CPU_SET ignores numbers past its size; the
    // syscall reads at most its size and applies to the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn set_affinity(_cpus: &[usize]) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_core_is_lent_to_one_hash_at_a_time_and_comes_back() {
        let cores = Cores::new(vec![3, 5]);
        let first = cores.lend().unwrap();
        let second = cores.lend().unwrap();
        assert_ne!(first.cpu(), second.cpu());
        assert!(cores.lend().is_none(), "both cores are lent");
        let given_back = first.cpu();
        drop(first);
        assert_eq!(cores.lend().unwrap().cpu(), given_back);
    }

    #[test]
    fn no_known_core_means_no_pinning() {
        assert!(Cores::new(Vec::new()).lend().is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_pinned_run_ends_with_the_thread_free_again() {
        let cores = Cores::of_this_process();
        let before = allowed_cpus();
        let lent = cores.lend().expect("this process may run somewhere");
        let during = std::thread::scope(|s| {
            s.spawn(|| {
                let during = lent.run_pinned(allowed_cpus);
                (during, allowed_cpus())
            })
            .join()
            .unwrap()
        });
        assert_eq!(during.0, vec![lent.cpu()]);
        assert_eq!(during.1, before);
    }
}
