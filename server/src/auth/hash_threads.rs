//! The threads that hash passwords, and how they share the machine with the threads
//! serving requests (the scheduling parts are Linux only; elsewhere they do nothing).
//!
//! Hashing has a blocking pool of its own (`spawn_blocking` on a runtime used for nothing
//! else), so what its threads are set to never reaches other blocking work such as the
//! file reads behind static assets. Three measured rules, from `perf sched` traces of a
//! login flood on two cores (Linux 6.18, EEVDF, HZ=250):
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
//!   them. When the pool has one thread per allowed core, each hash runs pinned to a core
//!   no other hash holds.

use std::sync::{Arc, Mutex};
use tokio::{
    runtime::{Handle, Runtime},
    sync::OwnedSemaphorePermit,
    task::JoinHandle,
};

/// A blocking pool for hashing: `threads` threads at most, each lowered by
/// [`give_way_to_requests`] when it starts.
pub struct HashingPool {
    /// Never driven: only its blocking pool is used. Taken when the pool is dropped.
    runtime: Option<Runtime>,
    handle: Handle,
    cores: Cores,
}

impl HashingPool {
    pub fn new(threads: usize) -> std::io::Result<HashingPool> {
        let threads = threads.max(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(threads)
            .thread_name("argon2")
            .on_thread_start(give_way_to_requests)
            .build()?;
        // Pinning spreads hashes over every core only when there is one thread a core.
        let allowed = allowed_cpus();
        let cores = Cores::new(if allowed.len() == threads {
            allowed
        } else {
            Vec::new()
        });
        Ok(HashingPool {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            cores,
        })
    }

    /// Runs `f` on a hashing thread, pinned to a core of its own when one is known, and
    /// holding `permit` until it ends (a caller that gives up does not free it early).
    /// The core is given back before the permit, so whoever gets the permit next finds a
    /// free core: a thread left pinned where it last ran would otherwise hash beside
    /// another on one core.
    pub fn spawn<T: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let core = self.cores.lend();
        self.handle.spawn_blocking(move || {
            if let Some(core) = &core {
                pin_to(core.cpu);
            }
            let out = f();
            drop(core);
            drop(permit);
            out
        })
    }
}

impl Drop for HashingPool {
    fn drop(&mut self) {
        // Dropping a runtime may block, which is refused inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread to `SCHED_BATCH`, nice 19, with a 100 ms slice. Lowering
/// one's own priority needs no privilege (and raising it back would).
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

/// Cores, each lent to one hash at a time.
#[derive(Clone)]
struct Cores {
    free: Arc<Mutex<Vec<usize>>>,
}

impl Cores {
    fn new(all: Vec<usize>) -> Cores {
        Cores {
            free: Arc::new(Mutex::new(all.into_iter().rev().collect())),
        }
    }

    /// A free core, or `None` when every core is lent (or none is known).
    fn lend(&self) -> Option<LentCore> {
        let cpu = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        Some(LentCore {
            cpu,
            cores: self.clone(),
        })
    }
}

/// A core lent to one hash; given back on drop.
struct LentCore {
    cpu: usize,
    cores: Cores,
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

/// Pins the calling thread to `cpu` (a number `allowed_cpus` gave, so below CPU_SETSIZE).
#[cfg(target_os = "linux")]
fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; the syscall reads at most its size and applies to
    // the calling thread (pid 0).
    let failed = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
    };
    if failed {
        tracing::debug!(cpu, "could not pin a hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_cpu: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_core_is_lent_to_one_hash_at_a_time_and_comes_back() {
        let cores = Cores::new(vec![3, 5]);
        let first = cores.lend().unwrap();
        let second = cores.lend().unwrap();
        assert_ne!(first.cpu, second.cpu);
        assert!(cores.lend().is_none(), "both cores are lent");
        let given_back = first.cpu;
        drop(first);
        assert_eq!(cores.lend().unwrap().cpu, given_back);
    }

    #[test]
    fn no_known_core_means_no_pinning() {
        assert!(Cores::new(Vec::new()).lend().is_none());
    }

    fn permit() -> OwnedSemaphorePermit {
        Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .unwrap()
    }

    /// What a hashing thread looks like from inside: its name, its CPUs, its niceness.
    #[cfg(target_os = "linux")]
    fn inside() -> (Option<String>, Vec<usize>, i32) {
        // SAFETY: getpriority on the calling thread's id.
        let nice = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        };
        let name = std::thread::current().name().map(str::to_string);
        (name, allowed_cpus(), nice)
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_on_low_priority_threads_of_their_own_pinned_to_one_core() {
        let all = allowed_cpus();
        let caller_nice = inside().2;
        let pool = HashingPool::new(all.len()).unwrap();
        let (name, cpus, nice) = pool.spawn(permit(), inside).await.unwrap();
        assert_eq!(name.as_deref(), Some("argon2"));
        assert_eq!(cpus.len(), 1, "pinned to one core");
        assert!(all.contains(&cpus[0]));
        assert_eq!(nice, 19);
        // The caller's thread is left as it was.
        assert_eq!(inside().2, caller_nice);
        assert_eq!(allowed_cpus(), all);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn fewer_threads_than_cores_hash_unpinned() {
        let all = allowed_cpus();
        if all.len() < 2 {
            return; // one core: the pool always has a thread a core
        }
        let pool = HashingPool::new(1).unwrap();
        let (_, cpus, _) = pool.spawn(permit(), inside).await.unwrap();
        assert_eq!(cpus, all);
    }
}
