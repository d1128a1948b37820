#pragma once
// The event loop's own tick (docs/operations.md, "Readiness"): a timer due
// every few seconds that records when it ran and how late. It keeps moving
// when every import is terminal and nothing else wakes the loop, so it is
// the daemon's liveness signal in /metrics; its lateness says whether the
// loop keeps time (/readyz).
#include <chrono>
#include <memory>

#include "core/time.hpp"
#include "net/asio.hpp"

namespace importwatch::daemon {

/// How often the loop ticks: rare enough to cost nothing, often enough for a
/// scrape interval.
inline constexpr std::chrono::seconds heartbeat_period{5};
/// The event loop is late when a tick runs more than this after it was due
/// (something blocked the one thread), or none has run for this long past
/// its due time.
inline constexpr std::chrono::seconds max_loop_lag{10};

class heartbeat {
public:
    explicit heartbeat(asio::any_io_executor ex);
    ~heartbeat();
    heartbeat(heartbeat const&) = delete;
    heartbeat& operator=(heartbeat const&) = delete;

    /// Ticks at once, then every heartbeat_period, until stop().
    asio::awaitable<void> run();
    void stop();

    /// Wall time of the last tick (the epoch before the first).
    core::sys_ms last_tick() const;
    /// How late the last tick ran.
    std::chrono::milliseconds lag() const;
    /// Whether the loop keeps time at `now`: the last tick ran at most
    /// max_loop_lag late, and the next one is not overdue by more than that.
    bool on_time(std::chrono::steady_clock::time_point now) const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace importwatch::daemon
