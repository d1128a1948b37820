#include "daemon/clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace importwatch::daemon {
namespace {

class system_alarm final : public alarm {
public:
    explicit system_alarm(asio::any_io_executor ex) : timer_(std::move(ex)) {}

    asio::awaitable<void> wait_until(core::sys_ms at) override {
        timer_.expires_at(std::chrono::system_clock::time_point(at));
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));   // fired or cancelled: both wake
    }
    void cancel() override { timer_.cancel(); }

private:
    asio::system_timer timer_;
};

} // namespace

std::unique_ptr<alarm> wall_clock::make_alarm(asio::any_io_executor ex) {
    return std::make_unique<system_alarm>(std::move(ex));
}

} // namespace importwatch::daemon
