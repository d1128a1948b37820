#include "daemon/reload_coalescer.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "daemon/spawn.hpp"

namespace importwatch::daemon {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using steady = std::chrono::steady_clock;
/// Distinct triggers kept for one reload's log line; more are counted, not named.
constexpr std::size_t max_named_triggers = 4;
} // namespace

struct reload_coalescer::impl : std::enable_shared_from_this<reload_coalescer::impl> {
    impl(asio::any_io_executor ex, metrics& counters, reload_fn reload, std::chrono::milliseconds spacing)
        : counters_(counters), reload_(std::move(reload)), spacing_(spacing), wake_(ex), done_(ex) {
        wake_.expires_at(steady::time_point::max());
        done_.expires_at(steady::time_point::max());
    }

    metrics& counters_;
    reload_fn reload_;
    std::chrono::milliseconds spacing_;
    asio::steady_timer wake_;          // the worker sleeps on it
    asio::steady_timer done_;          // waiters sleep on it; cancelled after each reload
    bool idle_ = true;                 // the worker waits for a request (not for the spacing)
    bool stopped_ = false;
    std::uint64_t requests_ = 0;       // requests since the last reload started
    std::vector<std::string> triggers_;   // their distinct triggers (at most max_named_triggers)
    bool more_triggers_ = false;          // ... and others were left out
    std::uint64_t started_ = 0;        // reloads started
    std::uint64_t finished_ = 0;       // reloads finished
    core::expected<void> last_{};
    std::optional<steady::time_point> last_end_;

    void request(std::string trigger) {
        if (stopped_) return;
        if (requests_++ > 0) ++counters_.reload_requests_coalesced;
        if (std::find(triggers_.begin(), triggers_.end(), trigger) == triggers_.end()) {
            if (triggers_.size() < max_named_triggers) triggers_.push_back(std::move(trigger));
            else more_triggers_ = true;
        }
        // During the spacing the worker wakes by itself: a storm costs no
        // timer churn.
        if (idle_) wake_.cancel();
    }

    static asio::awaitable<void> run(std::shared_ptr<impl> self) {
        while (!self->stopped_) {
            if (self->requests_ == 0) {
                self->idle_ = true;
                self->wake_.expires_at(steady::time_point::max());
                co_await self->wake_.async_wait(use_tuple);
                self->idle_ = false;
                continue;
            }
            if (self->last_end_ && steady::now() < *self->last_end_ + self->spacing_) {
                self->wake_.expires_at(*self->last_end_ + self->spacing_);
                co_await self->wake_.async_wait(use_tuple);
                continue;
            }
            auto const folded = self->requests_;
            self->requests_ = 0;
            std::string triggers;
            for (auto const& t : self->triggers_) triggers += (triggers.empty() ? "" : ", ") + t;
            if (self->more_triggers_) triggers += ", …";
            self->triggers_.clear();
            self->more_triggers_ = false;
            ++self->started_;
            if (folded > 1) spdlog::info("{} reload requests coalesced into one reload", folded);
            self->last_ = self->reload_(triggers);
            self->last_end_ = steady::now();
            ++self->finished_;
            self->done_.cancel();
        }
    }

    void stop() {
        stopped_ = true;
        wake_.cancel();
        done_.cancel();
    }
};

reload_coalescer::reload_coalescer(asio::any_io_executor ex, metrics& counters, reload_fn reload,
                                   std::chrono::milliseconds min_spacing)
    : impl_(std::make_shared<impl>(ex, counters, std::move(reload), min_spacing)) {
    asio::co_spawn(ex, impl::run(impl_), log_on_failure("reload handling"));
}

reload_coalescer::~reload_coalescer() { impl_->stop(); }

void reload_coalescer::request(std::string trigger) { impl_->request(std::move(trigger)); }

asio::awaitable<core::expected<void>> reload_coalescer::request_and_wait(std::string trigger) {
    auto self = impl_;
    // The next reload to start covers this request.
    auto const ticket = self->started_ + 1;
    self->request(std::move(trigger));
    // done_ never expires (resetting its expiry would cancel the other
    // waiters): each finished reload cancels the waits.
    while (!self->stopped_ && self->finished_ < ticket) co_await self->done_.async_wait(use_tuple);
    if (self->finished_ < ticket) co_return core::fail("shutting down");
    co_return self->last_;
}

void reload_coalescer::stop() { impl_->stop(); }

} // namespace importwatch::daemon
