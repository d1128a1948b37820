#pragma once
// A clock for the poller's in-process tests: time stands still while handlers
// run and jumps to the next wake-up when the io_context has nothing left to
// do, so minutes of polling, backoff and rate-limit pauses pass in
// milliseconds, and every instant is exact.
#include <chrono>
#include <functional>
#include <memory>
#include <set>

#include <boost/asio/io_context.hpp>

#include "daemon/clock.hpp"

namespace importwatch::testing {

class virtual_clock final : public daemon::clock {
public:
    explicit virtual_clock(core::sys_ms start) : now_(start) {}

    core::sys_ms now() override { return now_; }
    std::unique_ptr<daemon::alarm> make_alarm(boost::asio::any_io_executor ex) override;

    /// Runs `ioc` on virtual time until `done()` holds (checked after every
    /// handler) or the clock would pass `until` (it then stops at `until`).
    /// Returns done().
    bool run_until(boost::asio::io_context& ioc, core::sys_ms until, std::function<bool()> const& done = {});
    bool run_for(boost::asio::io_context& ioc, std::chrono::milliseconds d, std::function<bool()> const& done = {}) {
        return run_until(ioc, now_ + d, done);
    }

private:
    class virtual_alarm;
    core::sys_ms now_;
    std::set<virtual_alarm*> alarms_;
};

} // namespace importwatch::testing
