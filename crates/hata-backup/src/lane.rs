//! The backup lane: a backup taken while hata serves, on a thread of its own at a lower CPU
//! priority and paced, so that serving and admin writes keep the machine and the backup gets
//! what they leave.
//!
//! A backup is mostly CPU and memory: reading every row (sqlx), writing the export as JSON,
//! zstd. On the server's runtime that work competed with requests as an equal: with 10,000
//! flags and 1,000,000 evaluation-count rows on a 2-vCPU machine, OFREP throughput fell to
//! 39 % of before during a backup (docs/operations.md). Here it runs on one thread with its
//! own single-threaded runtime, its own connections to the store (`Store::connect_again`) and
//! its own destination client (`Destination::reopened`), so that nothing of it is scheduled
//! on the server's workers (81-87 %). On Linux the thread is lowered to nice 10 first; the
//! threads it starts (SQLite's connection worker, the blocking pool that compresses) inherit
//! that. Nice alone could not do more (nice 19 measured the same): the CPUs were not all
//! busy, and two threads on one small machine share caches and memory bandwidth whatever
//! their priority. So the lane also paces itself (`PACE`): 93 %.

use hata_store::Store;

use crate::manifest::{Kind, Manifest};
use crate::take::take_paced;
use crate::{BackupError, BackupResult};

/// The lane's nice value: a CFS weight of 110 against 1,024 for a normal thread, about a tenth
/// of a CPU when every CPU is contended, so a backup still ends under a load that takes every
/// CPU (nice 19, a weight of 15, would leave it barely 1 %).
pub const NICE: i32 = 10;

/// How the lane paces a backup's two long parts, reading the evaluation counts and writing
/// the JSON: after each stretch of work it pauses as long again, so that half the time it
/// leaves the machine to serving (a backup takes about twice as long).
pub const PACE: f64 = 1.0;

/// Takes a backup like `take`, on the lane. `store` and `dest` are only opened again there.
pub async fn take_beside(
    store: &Store,
    dest: &crate::Destination,
    kind: Kind,
) -> BackupResult<Manifest> {
    let store = store.clone();
    let dest = dest.clone();
    let shown = dest.to_string();
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hata-backup".into())
        .spawn(move || {
            lower_priority();
            let _ = done.send(run(&store, &dest, kind));
        })
        .map_err(|e| BackupError::Destination {
            destination: shown.clone(),
            message: format!("cannot start the backup thread: {e}"),
        })?;
    result.await.map_err(|_| BackupError::Destination {
        destination: shown,
        message: "the backup thread stopped without an answer".into(),
    })?
}

fn run(store: &Store, dest: &crate::Destination, kind: Kind) -> BackupResult<Manifest> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BackupError::Destination {
            destination: dest.to_string(),
            message: format!("cannot start the backup's runtime: {e}"),
        })?;
    runtime.block_on(async {
        let own = store.connect_again(1, PACE).await?;
        let dest = dest.reopened()?;
        let taken = take_paced(&own, &dest, kind, PACE).await;
        own.close().await;
        taken
    })
}

/// Lowers the calling thread's CPU priority to `NICE`, unless it is lower already (Linux:
/// `setpriority` on the thread's id). Elsewhere, or if refused, the backup runs at the
/// caller's priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; getpriority and setpriority only read their
        // arguments. (A failed getpriority answers -1, below NICE: setpriority then decides.)
        let result = unsafe {
            let tid = libc::gettid() as libc::id_t;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            if now >= NICE {
                0
            } else {
                libc::setpriority(libc::PRIO_PROCESS, tid, NICE)
            }
        };
        if result != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(),
                "could not lower the backup thread's priority; it runs at normal priority");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    fn nice() -> i32 {
        // SAFETY: as in `lower_priority`.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    /// The lane's thread runs at `NICE` (or lower), threads it starts inherit that, and the
    /// thread that started the lane keeps its own.
    #[test]
    fn the_lane_thread_and_its_children_are_niced() {
        let before = nice();
        let (own, child) = std::thread::spawn(move || {
            super::lower_priority();
            let child = std::thread::spawn(nice).join().expect("child");
            (nice(), child)
        })
        .join()
        .expect("lane");
        assert_eq!(own, before.max(super::NICE));
        assert_eq!(child, own);
        assert_eq!(nice(), before, "the caller's thread is untouched");
    }
}
