#pragma once
// Delivers committed events to webhooks (docs/events.md). The outbox in the state
// store is the queue: the dispatcher attempts, per (webhook, watch), only the
// oldest pending delivery, so event N+1 never overtakes event N, while other
// watches and other webhooks flow independently. Retry timing comes from the
// pure core::judge_delivery.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/time.hpp"
#include "daemon/metrics.hpp"
#include "net/asio.hpp"
#include "store/state_store.hpp"

namespace importwatch::daemon {

struct webhook_target {
    core::webhook_config config;
    std::optional<std::string> key;            // decoded HMAC key; nullopt: no signature
    /// Equal targets keep their endpoint (and its kept-alive connections) on reload.
    bool operator==(webhook_target const&) const = default;
};

class webhook_dispatcher {
public:
    webhook_dispatcher(asio::any_io_executor ex, store::state_store& store, metrics& counters,
                       std::string user_agent);
    ~webhook_dispatcher();

    /// Sets (or replaces, on reload) the webhooks. Deliveries for a webhook
    /// that no longer exists stay in the outbox untouched.
    void configure(std::vector<webhook_target> targets);

    /// Dead letters older than this are deleted (state.dead_letter_retention):
    /// at the start of run() and hourly after. Default 30 days.
    void set_dead_letter_retention(std::chrono::milliseconds retention);

    /// Runs until stop(): attempts due deliveries, sleeps until the next one
    /// is due or notify() is called.
    asio::awaitable<void> run();

    /// New outbox rows were committed.
    void notify();

    /// Stops starting attempts; lets in-flight ones finish for up to `grace`,
    /// then abandons them (they are retried at once after a restart).
    asio::awaitable<void> stop(std::chrono::milliseconds grace);

    /// Deliveries in flight right now (tests).
    std::size_t in_flight() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace importwatch::daemon
