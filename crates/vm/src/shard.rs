//! Splitting shared state by thread, so threads working at once mostly touch locks and
//! cache lines of their own.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Keeps its contents on cache lines of their own.
#[repr(align(128))]
pub(crate) struct CacheLine<T>(pub(crate) T);

/// How many shards to split at most `limit` things into: as many as this machine runs
/// threads at once.
pub(crate) fn shard_count(limit: usize) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads.min(limit).max(1)
}

/// This thread's home among `shards` shards: threads are numbered as they first ask.
pub(crate) fn home_shard(shards: usize) -> usize {
    thread_local! {
        static HOME: usize = {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            NEXT.fetch_add(1, Ordering::Relaxed)
        };
    }
    HOME.try_with(|h| *h).unwrap_or(0) % shards
}
