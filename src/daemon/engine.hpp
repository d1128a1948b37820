#pragma once
// The daemon's moving parts around one io_context: the poller, the state
// store it commits to, and the webhook dispatcher that drains the outbox.
// `run` wraps it with signals, the admin server and sd_notify; `demo` runs it
// against the built-in simulator.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/config.hpp"
#include "core/expected.hpp"
#include "core/log_throttle.hpp"
#include "daemon/config_loader.hpp"
#include "daemon/group_commit.hpp"
#include "daemon/heartbeat.hpp"
#include "daemon/metrics.hpp"
#include "daemon/poller.hpp"
#include "daemon/webhook_dispatcher.hpp"
#include "net/asio.hpp"
#include "store/state_store.hpp"

namespace importwatch::daemon {

class engine {
public:
    engine(asio::any_io_executor ex, std::unique_ptr<store::state_store> store);
    ~engine();

    /// Loads the stored watch states and starts polling, delivering and the
    /// loop's heartbeat. The poller takes the watches over; the rest of `cfg`
    /// is current_config() from then on.
    core::expected<void> start(core::config cfg, secrets s);
    /// Applies a new config (reload), as start() takes it; the old one stays
    /// on error.
    core::expected<void> reload(core::config cfg, secrets s);
    /// Stops polling at once, gives deliveries in flight `grace`, then returns.
    asio::awaitable<void> shutdown(std::chrono::milliseconds grace);

    daemon::poller& poller() { return *poller_; }
    store::state_store& state() { return *store_; }
    metrics& counters() { return metrics_; }
    heartbeat const& loop() const { return heartbeat_; }
    /// The running config, without its watches (the poller holds those).
    core::config const& current_config() const { return config_; }
    std::size_t watch_count() const { return watch_count_; }
    bool started() const { return started_; }

private:
    /// What start and reload share: the poller takes the watches (states of
    /// new ones from `load`), the rest becomes current_config().
    core::expected<void> apply(core::config cfg, secrets const& s, poller::state_loader const& load);
    /// Logs (at most once a minute per webhook and bound) and counts what a
    /// commit did to keep a webhook's outbox within its bounds.
    void report_overflow(store::outbox_overflow const& o, core::sys_ms now);
    poller_settings settings_for(core::config const& cfg, secrets const& s) const;
    std::vector<webhook_target> targets_for(core::config const& cfg, secrets const& s) const;

    asio::any_io_executor ex_;
    std::unique_ptr<store::state_store> store_;
    metrics metrics_;
    core::config config_;
    std::size_t watch_count_ = 0;
    std::unique_ptr<group_commit> group_;     // before poller_: polls in flight commit through it
    std::unique_ptr<daemon::poller> poller_;
    std::unique_ptr<webhook_dispatcher> dispatcher_;
    heartbeat heartbeat_;
    bool started_ = false;
    core::log_throttle outbox_throttle_;
};

} // namespace importwatch::daemon
