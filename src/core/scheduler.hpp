#pragma once
// The poll schedule: when each watch is due next, as one min-heap of due
// times for every watch (no timer per watch). Pure: the caller passes `now`
// and decides what to do with a due watch.
//
// Watches are dense indices (the poller's table). Rescheduling a watch out of
// turn (a reload, a 401 that fails every watch) leaves its old heap entry
// behind; a generation per watch marks such entries stale, and they are
// dropped when they surface or when stale entries outnumber live ones.
#include <cstdint>
#include <optional>
#include <vector>

#include "core/config.hpp"
#include "core/time.hpp"

namespace importwatch::core {

/// How late a poll may start so that polls due close together start on one
/// wake-up of the daemon: 1 % of the shortest interval `polling` asks for
/// (interval, status_intervals), at most 100 ms; 0 (no waiting for company)
/// when one of them is 0. Never early: a due time may be a server's
/// Retry-After. (Backoff delays are random anyway, full jitter.)
milliseconds coalesce_window(polling_config const& polling);

class scheduler {
public:
    using watch_index = std::uint32_t;

    struct due_watch {
        sys_ms due;
        watch_index watch;
    };

    /// Adds a watch, not scheduled yet; returns its index (0, 1, 2, …).
    watch_index add();
    /// How many watches were added.
    std::size_t size() const { return due_.size(); }

    /// The watch is due at `due`, replacing any time it had; nullopt takes it
    /// off the schedule (terminal, removed, or being polled).
    void schedule(watch_index watch, std::optional<sys_ms> due);
    /// When the watch is due; nullopt when it is not scheduled.
    std::optional<sys_ms> due(watch_index watch) const { return due_[watch]; }

    /// The scheduled watch due first (ties: any); nullopt when none is.
    std::optional<due_watch> earliest();
    /// Takes the watch earliest() returned off the schedule: it is being
    /// polled, and the caller schedules it again when the poll is done.
    void take_earliest();

    /// How late the most overdue scheduled watch is at `now` (0 when none is).
    milliseconds lag(sys_ms now) const;

    /// Heap entries held, stale ones included (bounded: tests).
    std::size_t entries() const { return heap_.size(); }

private:
    struct entry {
        sys_ms due;
        watch_index watch;
        std::uint32_t generation;
    };
    bool live(entry const& e) const { return e.generation == generation_[e.watch]; }
    void drop_stale_entries();

    std::vector<std::optional<sys_ms>> due_;      // by watch
    std::vector<std::uint32_t> generation_;       // by watch: bumped by every schedule()
    std::vector<entry> heap_;                     // min-heap on due
    std::size_t scheduled_ = 0;                   // watches with a due time
};

} // namespace importwatch::core
