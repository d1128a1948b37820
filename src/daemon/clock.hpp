#pragma once
// The clock daemon code reads: wall time in milliseconds, handed to core as
// `now`. Wall time because LaunchDarkly's reset headers and our persisted
// times are wall time anyway.
//
// The poller takes its clock as a `clock` object, so that its wake-ups follow
// the same time as its `now`: the system clock in the daemon, a virtual clock
// that jumps to the next wake-up in the in-process tests.
#include <chrono>
#include <memory>

#include "core/time.hpp"
#include "net/asio.hpp"

namespace importwatch::daemon {

inline core::sys_ms wall_now() {
    return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

/// A wake-up on some clock: one wait at a time.
class alarm {
public:
    virtual ~alarm() = default;
    /// Completes when the clock reaches `at`, or at once after cancel()
    /// (a cancel() while nothing waits has no effect on the next wait).
    virtual asio::awaitable<void> wait_until(core::sys_ms at) = 0;
    virtual void cancel() = 0;
};

class clock {
public:
    virtual ~clock() = default;
    virtual core::sys_ms now() = 0;
    /// A wake-up following this clock, completing on `ex`.
    virtual std::unique_ptr<alarm> make_alarm(asio::any_io_executor ex) = 0;
};

/// wall_now() and a system timer.
class wall_clock final : public clock {
public:
    core::sys_ms now() override { return wall_now(); }
    std::unique_ptr<alarm> make_alarm(asio::any_io_executor ex) override;
};

} // namespace importwatch::daemon
