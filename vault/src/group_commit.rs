//! The gather pause of the two group-commit writers: the audit log's writer
//! thread ([`crate::audit`]) and the sled flusher
//! ([`crate::storage::SledStorage`]).
//!
//! Both make one sync cover every write queued since their last one. Under
//! load that alone gives small groups: a sync takes ~180 µs on the test
//! machine's disk, the writer starts the next one as soon as the last ends,
//! so a group is what arrived during one sync. Each sync also costs ~45 µs of
//! kernel CPU (measured there: `write` + `fdatasync` of 600 bytes) plus the
//! wake-ups around it, and on the release path the vault is CPU-bound. So a
//! writer that wakes for a new group, when its previous group held more than
//! one write (others are arriving), first sleeps [`GATHER_WINDOW`] counted
//! from when it woke, unless the group is already [`GATHER_FULL`]. A lone
//! writer (previous group of one) never waits: an idle vault answers as
//! fast as before. This is PostgreSQL's `commit_delay` with
//! `commit_siblings`, with the previous group standing in for the count of
//! concurrent transactions.
//!
//! The window was chosen on the release bench: 300 µs took the full
//! attested release from 2,646 to 2,848/s, 600 µs to 3,174/s (audit syncs
//! per iteration 0.90 → 0.25, sled flushes 0.62 → 0.36), and every p99 went
//! down, since less CPU per request means less queueing (docs/benchmarks.md,
//! "Release path"). The cost is up to one window of latency per durable
//! write under load.
//!
//! The pause is a sleep in a dedicated writer thread, bounded and
//! independent of any caller; nothing waits on it for correctness.

use std::time::{Duration, Instant};

/// How long a writer gathers before syncing a group, from its wake-up.
pub(crate) const GATHER_WINDOW: Duration = Duration::from_micros(600);
/// A group this large is synced at once.
pub(crate) const GATHER_FULL: usize = 32;

/// How much longer to gather, `elapsed` after waking: the rest of
/// [`GATHER_WINDOW`] when the previous group had company and the current
/// one is not yet full, else nothing.
pub(crate) fn gather_for(
    previous_group: usize,
    current_group: usize,
    elapsed: Duration,
) -> Duration {
    if previous_group > 1 && current_group < GATHER_FULL {
        GATHER_WINDOW.saturating_sub(elapsed)
    } else {
        Duration::ZERO
    }
}

/// Sleeps for [`gather_for`] since `woke`.
pub(crate) fn pause_to_gather(previous_group: usize, current_group: usize, woke: Instant) {
    let rest = gather_for(previous_group, current_group, woke.elapsed());
    if !rest.is_zero() {
        std::thread::sleep(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_group_with_company_and_room_waits_and_only_the_rest_of_the_window() {
        let none = Duration::ZERO;
        // A lone (or no) previous group: an idle vault never waits.
        assert_eq!(gather_for(0, 1, none), Duration::ZERO);
        assert_eq!(gather_for(1, 1, none), Duration::ZERO);
        // A full group goes at once.
        assert_eq!(gather_for(5, GATHER_FULL, none), Duration::ZERO);
        assert_eq!(gather_for(5, GATHER_FULL + 1, none), Duration::ZERO);
        // With company and room: the rest of the window, never more.
        assert_eq!(gather_for(2, 1, none), GATHER_WINDOW);
        let part = GATHER_WINDOW / 3;
        assert_eq!(gather_for(2, GATHER_FULL - 1, part), GATHER_WINDOW - part);
        assert_eq!(gather_for(2, 1, GATHER_WINDOW * 2), Duration::ZERO);
    }

    #[test]
    fn the_pause_lasts_at_least_what_remains() {
        let woke = Instant::now();
        pause_to_gather(2, 1, woke);
        assert!(woke.elapsed() >= GATHER_WINDOW);
    }
}
