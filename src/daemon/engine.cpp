#include "daemon/engine.hpp"

#include <deque>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "core/webhook_body.hpp"
#include "daemon/log_sink.hpp"
#include "daemon/spawn.hpp"

namespace importwatch::daemon {
engine::engine(asio::any_io_executor ex, std::unique_ptr<store::state_store> store)
    : ex_(ex), store_(std::move(store)), heartbeat_(ex) {
    dispatcher_ = std::make_unique<webhook_dispatcher>(ex_, *store_, metrics_,
                                                       std::string("importwatch/") + IMPORTWATCH_VERSION);
    group_ = std::make_unique<group_commit>(ex_, *store_);
    auto commit = [this](watch_slot const& slot,
                         core::poll_decision const& decision) -> asio::awaitable<core::expected<void>> {
        auto const& events = decision.events;
        std::vector<store::routed_event> routed;
        routed.reserve(events.size());
        std::deque<std::string> rendered;   // stable addresses: the payloads view them
        for (auto const& e : events) {
            store::routed_event r{&e, {}};
            // Made now, once: every attempt sends and signs these bytes. A
            // CloudEvent body is the event's own bytes, not a copy.
            for (auto const& w : config_.webhooks) {
                if (!w.accepts(e.type, slot.config.name)) continue;
                std::string_view body = e.body;
                if (w.format != core::webhook_format::cloudevents)
                    body = rendered.emplace_back(core::webhook_body(w, e, config_.launchdarkly.base_url));
                r.payloads.push_back({w.name, core::content_type(w.format), body});
            }
            routed.push_back(std::move(r));
        }
        // Copies: a reload may rename the watch while its group is gathered.
        auto const key = slot.config.key.path();
        auto const name = slot.config.name;
        store::commit_request const request{key, name, &decision.state, &routed, &decision.import};
        auto report = co_await group_->commit(request);
        if (!report) {
            if (store_->at_size_limit()) metrics_.count_limit("state_database_bytes");
            co_return core::fail(report.error());
        }
        auto const now = wall_now();
        for (auto const& o : report->overflows) report_overflow(o, now);
        co_return core::expected<void>{};
    };
    auto publish = [this](watch_slot const&, std::vector<core::event> const& events) {
        for (auto const& e : events) log_event(e);
        dispatcher_->notify();
    };
    poller_dependencies io;
    io.stored_import = [this](watch_slot const& slot) { return store_->load_import(slot.config.key.path()); };
    poller_ = std::make_unique<daemon::poller>(ex_, metrics_, commit, publish, std::move(io));
}

engine::~engine() = default;

void engine::report_overflow(store::outbox_overflow const& o, core::sys_ms now) {
    auto const& l = store_->limits();
    auto& c = metrics_.webhooks[o.webhook];
    if (o.dead_lettered > 0) {
        metrics_.count_limit("outbox_pending");
        c.dead += o.dead_lettered;
        if (auto held = outbox_throttle_.admit(o.webhook + "\x1f" "pending", now))
            log_fields(core::log_level::error,
                       fmt::format("webhook {}: outbox full ({} pending deliveries or {} MiB): the {} oldest became "
                                   "dead letters (`importwatch outbox replay` sends them again){}",
                                   o.webhook, l.pending_rows, l.pending_bytes >> 20, o.dead_lettered,
                                   *held ? fmt::format(" (repeated {} times)", *held) : ""),
                       {{"webhook", o.webhook},
                        {"limit", "outbox_pending"},
                        {"dead_lettered", o.dead_lettered},
                        {"repeated", *held}});
    }
    if (o.dropped > 0) {
        metrics_.count_limit("outbox_dead_letters");
        if (auto held = outbox_throttle_.admit(o.webhook + "\x1f" "dead", now))
            log_fields(core::log_level::error,
                       fmt::format("webhook {}: too many dead letters ({} or {} MiB): deleted the {} oldest{}",
                                   o.webhook, l.dead_rows, l.dead_bytes >> 20, o.dropped,
                                   *held ? fmt::format(" (repeated {} times)", *held) : ""),
                       {{"webhook", o.webhook},
                        {"limit", "outbox_dead_letters"},
                        {"deleted", o.dropped},
                        {"repeated", *held}});
    }
}

poller_settings engine::settings_for(core::config const& cfg, secrets const& s) const {
    poller_settings p;
    p.launchdarkly = cfg.launchdarkly;
    p.polling = cfg.polling;
    p.token = s.api_token;
    return p;
}

std::vector<webhook_target> engine::targets_for(core::config const& cfg, secrets const& s) const {
    std::vector<webhook_target> targets;
    for (auto const& w : cfg.webhooks) {
        auto it = s.webhook_keys.find(w.name);
        targets.push_back({w, it == s.webhook_keys.end() ? std::nullopt : it->second});
    }
    return targets;
}

core::expected<void> engine::apply(core::config cfg, secrets const& s, poller::state_loader const& load) {
    auto const watches = cfg.watches.size();
    auto configured = poller_->configure(settings_for(cfg, s), std::move(cfg.watches), load);
    if (!configured) return configured;
    watch_count_ = watches;
    // The poller owns the watches; a second copy here would cost ~0.5 KiB a watch.
    cfg.watches.clear();
    cfg.watches.shrink_to_fit();
    config_ = std::move(cfg);
    dispatcher_->set_dead_letter_retention(config_.state.dead_letter_retention);
    dispatcher_->configure(targets_for(config_, s));
    return {};
}

core::expected<void> engine::start(core::config cfg, secrets s) {
    // Every stored state at once: one scan, not a lookup per watch.
    auto const load_all = [this](std::vector<std::string> const&) { return store_->load_watches(); };
    if (auto applied = apply(std::move(cfg), s, load_all); !applied) return applied;
    asio::co_spawn(ex_, poller_->run(), log_on_failure("poller"));
    asio::co_spawn(ex_, dispatcher_->run(), log_on_failure("webhook dispatcher"));
    asio::co_spawn(ex_, heartbeat_.run(), log_on_failure("heartbeat"));
    started_ = true;
    return {};
}

core::expected<void> engine::reload(core::config cfg, secrets s) {
    // Kept watches keep the state they run with: only new ones are read,
    // after the decisions gathered so far are written (a watch removed and
    // added back must start from its last decision, not the one before).
    return apply(std::move(cfg), s, [this](std::vector<std::string> const& keys) {
        group_->flush();
        return store_->load_watches(keys);
    });
}

asio::awaitable<void> engine::shutdown(std::chrono::milliseconds grace) {
    poller_->stop();
    // Decisions gathered and not yet written are written now, whole: a
    // stop never leaves one half-applied.
    group_->flush();
    co_await dispatcher_->stop(grace);
    heartbeat_.stop();
}

} // namespace importwatch::daemon
