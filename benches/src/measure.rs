//! Timing and process statistics shared by the benchmark binaries.

use std::time::{Duration, Instant};

/// Per-iteration time of a benchmark over several rounds, in nanoseconds.
#[derive(Copy, Clone, Debug)]
pub struct Rounds {
    /// The median round's mean time per iteration: the number to report.
    pub median_ns: f64,
    /// The fastest round's mean.
    pub min_ns: f64,
    /// The slowest round's mean.
    pub max_ns: f64,
}

impl Rounds {
    /// Summarizes per-iteration means, one per round.
    ///
    /// # Panics
    /// Panics if `means` is empty.
    pub fn from_means(mut means: Vec<f64>) -> Rounds {
        assert!(!means.is_empty(), "at least one round");
        means.sort_by(f64::total_cmp);
        Rounds {
            median_ns: means[means.len() / 2],
            min_ns: means[0],
            max_ns: means[means.len() - 1],
        }
    }

    /// How far the rounds spread around the median, in percent of it.
    pub fn spread_percent(&self) -> f64 {
        100.0 * (self.max_ns - self.min_ns) / self.median_ns
    }
}

/// Runs `f` `warmup` times untimed, then `rounds` rounds of `iters` timed calls, and
/// returns the mean time per call of each round, summarized.
///
/// # Errors
/// Returns the first error `f` returns.
pub fn per_iteration<E>(
    warmup: u32,
    iters: u32,
    rounds: u32,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Rounds, E> {
    for _ in 0..warmup {
        f()?;
    }
    let mut means = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iters {
            f()?;
        }
        means.push(nanos(start.elapsed()) / f64::from(iters));
    }
    Ok(Rounds::from_means(means))
}

/// `d` in nanoseconds, as a float.
pub fn nanos(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

/// How many mappings the process has: the number of lines of `/proc/self/maps`.
///
/// # Panics
/// Panics if `/proc/self/maps` cannot be read (the benchmarks need Linux).
pub fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("reading /proc/self/maps")
        .lines()
        .count()
}

/// `strata / wasmtime`, or `None` when either side was not measured.
pub fn ratio(strata: Option<f64>, wasmtime: Option<f64>) -> Option<f64> {
    Some(strata? / wasmtime?)
}

/// Formats an optional number with `decimals` decimals, or `n/a`.
pub fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) => format!("{v:.decimals$}"),
        None => "n/a".to_string(),
    }
}

/// One row of a strata-against-wasmtime table: its name, both figures, and how many
/// decimals they are shown with.
pub type Row = (String, Option<f64>, Option<f64>, usize);

/// Prints `rows` as a table with a `strata/wasmtime` column.
pub fn print_comparison(rows: &[Row]) {
    println!(
        "{:<34} {:>10} {:>10} {:>16}",
        "benchmark", "strata", "wasmtime", "strata/wasmtime"
    );
    for (name, s, w, decimals) in rows {
        println!(
            "{:<34} {:>10} {:>10} {:>16}",
            name,
            fmt_opt(*s, *decimals),
            fmt_opt(*w, *decimals),
            fmt_opt(ratio(*s, *w), 2)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_rounds() {
        let r = Rounds::from_means(vec![3.0, 1.0, 2.0]);
        assert_eq!((r.median_ns, r.min_ns, r.max_ns), (2.0, 1.0, 3.0));
        assert_eq!(r.spread_percent(), 100.0);
    }

    #[test]
    fn counts_calls() {
        let mut calls = 0;
        per_iteration::<()>(2, 5, 3, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 2 + 5 * 3);
    }

    #[test]
    fn maps_are_counted() {
        assert!(mapping_count() > 0);
    }
}

/// Polls `future` with a waker that does nothing until it is ready; returns its output
/// and how often it was pending. For async calls whose futures need no executor.
pub fn poll_to_end<F: std::future::Future>(future: F) -> (F::Output, usize) {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut pending = 0;
    loop {
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => return (output, pending),
            std::task::Poll::Pending => pending += 1,
        }
    }
}

/// A future that is pending once, then ready: the least an async host function can
/// wait.
#[derive(Default)]
pub struct PendingOnce(bool);

impl std::future::Future for PendingOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}
