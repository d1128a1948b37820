#include "daemon/heartbeat.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "daemon/clock.hpp"

namespace importwatch::daemon {

struct heartbeat::impl {
    explicit impl(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    core::sys_ms last_tick{};
    std::chrono::steady_clock::time_point ticked;   // steady time of the last tick
    std::chrono::milliseconds lag{0};
    bool stopping = false;
};

heartbeat::heartbeat(asio::any_io_executor ex) : impl_(std::make_shared<impl>(ex)) {}

heartbeat::~heartbeat() { stop(); }

asio::awaitable<void> heartbeat::run() {
    auto self = impl_;   // the loop may outlive this object by one cancelled wait
    auto due = std::chrono::steady_clock::now();
    while (!self->stopping) {
        auto const now = std::chrono::steady_clock::now();
        self->lag = std::max(std::chrono::milliseconds(0), std::chrono::floor<std::chrono::milliseconds>(now - due));
        self->ticked = now;
        self->last_tick = wall_now();
        due = now + heartbeat_period;
        self->timer.expires_at(due);
        co_await self->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void heartbeat::stop() {
    impl_->stopping = true;
    impl_->timer.cancel();
}

core::sys_ms heartbeat::last_tick() const { return impl_->last_tick; }

std::chrono::milliseconds heartbeat::lag() const { return impl_->lag; }

bool heartbeat::on_time(std::chrono::steady_clock::time_point now) const {
    if (impl_->last_tick == core::sys_ms{}) return false;   // not started
    return impl_->lag <= max_loop_lag && now - impl_->ticked <= heartbeat_period + max_loop_lag;
}

} // namespace importwatch::daemon
