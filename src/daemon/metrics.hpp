#pragma once
// Counters kept in memory for the admin server's /metrics (docs/operations.md). Plain
// data updated on the event loop thread; rendering is separate.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/import_status.hpp"
#include "core/poll_decision.hpp"
#include "core/time.hpp"

namespace importwatch::daemon {

struct histogram {
    std::vector<double> bounds;               // upper bounds, ascending (seconds)
    std::vector<std::uint64_t> counts;        // per bound, not cumulative; last = +Inf
    double sum = 0;
    std::uint64_t count = 0;
    explicit histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1) {}
    void observe(double v);
};

struct webhook_counters {
    std::uint64_t delivered = 0;
    std::uint64_t failed = 0;                 // attempts that will be retried
    std::uint64_t dead = 0;
};

/// The `limit` label values of importwatch_limit_reached_total, each a row
/// of the README's Limits table; every one is exposed from 0.
inline constexpr char const* limit_names[] = {
    "status_bytes",            // a status longer than core::max_status_bytes: invalid response
    "peer_text_bytes",         // a file name or error message over core::max_peer_text: cut
    "file_events_per_poll",    // file changes past core::max_file_events_per_poll: one summary event
    "event_import_bytes",      // an Import over core::max_event_import_bytes: events carry it shortened
    "outbox_pending",          // a webhook's pending deliveries: the oldest become dead letters
    "outbox_dead_letters",     // a webhook's dead letters: the oldest are deleted
    "state_database_bytes",    // the state database is full: commits fail until space is freed
    "watched_directories",     // reload.auto: directories past max_watched_directories are not watched
    "inotify_queue",           // reload.auto: the kernel's event queue overflowed (one reload covers it)
};

struct metrics {
    std::array<std::uint64_t, 6> polls{};     // by core::poll_result
    histogram poll_duration{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
    std::array<std::uint64_t, core::import_status_count> transitions{};   // by core::import_status (never server text)
    /// Times a bound against bad input was reached, by limit (limit_names).
    std::map<std::string, std::uint64_t, std::less<>> limits_reached;
    std::uint64_t rate_limit_pauses = 0;
    core::milliseconds rate_limit_paused{0};
    std::map<std::string, webhook_counters> webhooks;     // by webhook name
    core::sys_ms last_successful_poll{};
    bool config_last_reload_successful = true;
    std::uint64_t reload_requests_coalesced = 0;

    void count_poll(core::poll_result r) { ++polls[static_cast<std::size_t>(r)]; }
    void count_limit(std::string_view limit) { ++limits_reached[std::string(limit)]; }
};

} // namespace importwatch::daemon
