#include "common/virtual_clock.hpp"

#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace importwatch::testing {

// A steady_timer that never expires by itself: the clock cancels it when
// virtual time reaches the alarm.
class virtual_clock::virtual_alarm final : public daemon::alarm {
public:
    virtual_alarm(virtual_clock& c, boost::asio::any_io_executor ex) : clock_(c), timer_(std::move(ex)) {
        clock_.alarms_.insert(this);
    }
    ~virtual_alarm() override { clock_.alarms_.erase(this); }

    boost::asio::awaitable<void> wait_until(core::sys_ms at) override {
        at_ = at;
        timer_.expires_at(boost::asio::steady_timer::time_point::max());
        co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    void cancel() override {
        at_.reset();
        timer_.cancel();
    }
    std::optional<core::sys_ms> const& at() const { return at_; }

private:
    virtual_clock& clock_;
    boost::asio::steady_timer timer_;
    std::optional<core::sys_ms> at_;
};

std::unique_ptr<daemon::alarm> virtual_clock::make_alarm(boost::asio::any_io_executor ex) {
    return std::make_unique<virtual_alarm>(*this, std::move(ex));
}

bool virtual_clock::run_until(boost::asio::io_context& ioc, core::sys_ms until, std::function<bool()> const& done) {
    auto finished = [&] { return done && done(); };
    for (;;) {
        ioc.restart();
        while (ioc.poll_one() > 0)
            if (finished()) return true;
        if (finished()) return true;
        std::optional<core::sys_ms> next;
        for (auto* a : alarms_)
            if (a->at() && (!next || *a->at() < *next)) next = a->at();
        if (!next || *next > until) {
            if (now_ < until) now_ = until;
            return finished();
        }
        if (*next > now_) now_ = *next;
        for (auto* a : std::set<virtual_alarm*>(alarms_))
            if (a->at() && *a->at() <= now_) a->cancel();
    }
}

} // namespace importwatch::testing
