#include "daemon/webhook_dispatcher.hpp"

#include <algorithm>
#include <exception>
#include <map>
#include <random>
#include <set>
#include <string_view>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "core/delivery_policy.hpp"
#include "core/http_headers.hpp"
#include "core/log_throttle.hpp"
#include "core/url.hpp"
#include "core/webhook_headers.hpp"
#include "core/webhook_signature.hpp"
#include "daemon/clock.hpp"
#include "daemon/log_sink.hpp"
#include "net/http_client.hpp"

namespace importwatch::daemon {

namespace {

using namespace std::chrono_literals;
using core::milliseconds;
using core::sys_ms;

// At most this many deliveries in flight per webhook (the size of its
// connection pool), so a slow receiver holds up only itself.
constexpr std::size_t max_in_flight_per_webhook = 4;
// Rows may change behind our back (`importwatch outbox replay` from another
// process): look at the outbox at least this often.
constexpr milliseconds rescan_interval = 5s;
// How soon to retry after the store failed us.
constexpr milliseconds store_retry_interval = 1s;
constexpr auto purge_interval = 1h;
// After abandoning in-flight attempts, how long to wait for them to unwind.
constexpr auto abandon_wait = 1s;

// One configured webhook and its connection pool.
struct endpoint {
    webhook_target target;
    core::url url;
    std::string redacted_url;
    std::shared_ptr<net::http_client> client;
    std::size_t active = 0;      // attempts using this endpoint right now
    bool retired = false;        // replaced or removed by configure()
};

core::expected<std::shared_ptr<endpoint>> make_endpoint(asio::any_io_executor ex, webhook_target target,
                                                        std::string const& user_agent) {
    auto url = core::parse_url(target.config.url);
    if (!url) return core::fail("url is not an absolute http(s) URL");
    auto client = net::make_client(ex, {.origin = *url,
                                        .ca_file = target.config.ca_file,
                                        .proxy = target.config.proxy,
                                        .max_connections = max_in_flight_per_webhook,
                                        .timeout = target.config.timeout,
                                        .user_agent = user_agent});
    if (!client) return core::fail(client.error());
    auto ep = std::make_shared<endpoint>();
    ep->url = *url;
    ep->redacted_url = url->redacted();
    ep->target = std::move(target);
    ep->client = std::move(*client);
    return ep;
}

store::state_store::outcome outcome_of(std::int64_t id, int attempts, core::delivery_verdict const& v, sys_ms at) {
    using outcome = store::state_store::outcome;
    switch (v.kind) {
    case core::delivery_verdict::retry: return outcome::retry(id, attempts, v.next_attempt, v.error);
    case core::delivery_verdict::dead: return outcome::dead(id, attempts, v.error, at);
    case core::delivery_verdict::delivered: break;
    }
    return outcome::delivered(id);
}

} // namespace

struct webhook_dispatcher::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, store::state_store& s, metrics& m, std::string ua)
        : ex(e), store(s), counters(m), user_agent(std::move(ua)), wake(e), stop_timer(e),
          rng(std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32)) {}

    asio::any_io_executor ex;
    store::state_store& store;
    metrics& counters;
    std::string user_agent;

    std::map<std::string, std::shared_ptr<endpoint>> endpoints;   // by webhook name
    std::map<std::string, std::size_t> in_flight_by_webhook;
    std::set<std::int64_t> in_flight_ids;
    std::size_t in_flight_total = 0;
    // Outcomes the store refused, by outbox row id, retried together; their
    // rows stay out of the running until recorded, so nothing is attempted
    // twice for one outcome.
    std::map<std::int64_t, store::state_store::outcome> unrecorded;

    asio::steady_timer wake;          // run() sleeps on it
    asio::steady_timer stop_timer;    // stop() waits on it for in-flight attempts
    bool wake_pending = false;
    bool stopping = false;
    bool abandoned = false;
    bool store_failing = false;

    core::prng rng;
    // A receiver that keeps failing is logged once a minute per webhook and
    // watch, with the count of the attempts held back: a full outbox moves
    // on to a new delivery at every attempt, so per-attempt lines would grow
    // the log with the event rate.
    core::log_throttle failed_attempts;
    milliseconds retention = std::chrono::days(30);
    std::chrono::steady_clock::time_point next_purge{};

    void wake_up() {
        wake_pending = true;
        wake.cancel();
    }

    void store_error(std::string_view what, std::string const& error) {
        if (!store_failing) spdlog::error("webhook dispatcher: {}: {}; retrying", what, error);
        store_failing = true;
    }
    void store_ok() {
        if (store_failing) spdlog::info("webhook dispatcher: the state store works again");
        store_failing = false;
    }

    void maybe_purge() {
        auto const now = std::chrono::steady_clock::now();
        if (now < next_purge) return;
        next_purge = now + purge_interval;
        auto n = store.purge_dead(wall_now() - retention);
        if (!n) spdlog::error("webhook dispatcher: {}", n.error());
        else if (*n > 0) spdlog::info("deleted {} dead letters older than the retention", *n);
    }

    void flush_unrecorded() {
        if (unrecorded.empty()) return;
        std::vector<store::state_store::outcome> outcomes;
        outcomes.reserve(unrecorded.size());
        for (auto const& [id, o] : unrecorded) outcomes.push_back(o);
        if (auto r = store.record(outcomes); !r) {
            store_error("recording delivery outcomes", r.error());
            return;
        }
        unrecorded.clear();
    }

    /// The structured fields of a delivery's log lines (json log format).
    static boost::json::object delivery_fields(store::delivery const& d, endpoint const& ep, int attempts,
                                               std::string const& error) {
        return {{"webhook", d.webhook}, {"url", ep.redacted_url}, {"event_id", d.event_id},
                {"watch", d.watch_name}, {"sequence", d.sequence}, {"attempts", attempts},
                {"error", error}};
    }

    static std::string attempt_key(store::delivery const& d) { return d.webhook + '\x1f' + d.watch_name; }

    void record(store::delivery const& d, endpoint const& ep, core::http_outcome const& outcome) {
        auto const now = wall_now();
        int const attempts = d.attempts + 1;
        auto verdict = core::judge_delivery(outcome, attempts, d.committed, ep.target.config.max_age, now, rng);
        auto& c = counters.webhooks[d.webhook];
        switch (verdict.kind) {
        case core::delivery_verdict::delivered:
            ++c.delivered;
            failed_attempts.clear(attempt_key(d));
            spdlog::debug("webhook {}: delivered event {} ({} #{}) on attempt {}", d.webhook, d.event_id,
                          d.watch_name, d.sequence, attempts);
            break;
        case core::delivery_verdict::retry: {
            ++c.failed;
            auto const held = failed_attempts.admit(attempt_key(d), now);
            if (!held) break;
            auto fields = delivery_fields(d, ep, attempts, verdict.error);
            fields["next_attempt"] = core::format_rfc3339(verdict.next_attempt);
            fields["repeated"] = *held;
            log_fields(core::log_level::warn,
                       fmt::format("webhook {} ({}): event {} attempt {} failed: {}; next attempt at {}{}", d.webhook,
                                   ep.redacted_url, d.event_id, attempts, verdict.error,
                                   core::format_rfc3339(verdict.next_attempt),
                                   *held ? fmt::format(" ({} more failed attempts in the last minute)", *held) : ""),
                       std::move(fields));
            break;
        }
        case core::delivery_verdict::dead:
            ++c.dead;
            log_fields(core::log_level::error,
                       fmt::format("webhook {} ({}): event {} ({} #{}) is a dead letter after {} attempts: {}; "
                                   "replay with `importwatch outbox replay`",
                                   d.webhook, ep.redacted_url, d.event_id, d.watch_name, d.sequence, attempts,
                                   verdict.error),
                       delivery_fields(d, ep, attempts, verdict.error));
            break;
        }
        auto o = outcome_of(d.id, attempts, verdict, now);
        if (auto r = store.record({o}); !r) {
            store_error("recording a delivery outcome", r.error());
            unrecorded[d.id] = std::move(o);
        }
    }

    static asio::awaitable<void> attempt(std::shared_ptr<impl> self, store::delivery d, std::shared_ptr<endpoint> ep) {
        net::client_request request;
        request.method = "POST";
        request.target = ep->url.target;
        auto const timestamp =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        request.headers.emplace_back("Content-Type", d.content_type);
        request.headers.emplace_back("webhook-id", d.event_id);
        request.headers.emplace_back("webhook-timestamp", std::to_string(timestamp));
        if (ep->target.key)
            request.headers.emplace_back("webhook-signature",
                                         core::webhook_signature(*ep->target.key, d.event_id, timestamp, d.body));
        for (auto const& [name, value] : ep->target.config.headers)
            if (!core::is_reserved_webhook_header(name)) request.headers.emplace_back(name, value);
        request.body = d.body;
        request.keep_headers = std::span(&core::retry_after_header, 1);

        auto outcome = co_await ep->client->send(std::move(request));
        // Cut short by our own shutdown: not a failed attempt. The row is
        // untouched, so it is attempted at once after the restart.
        if (self->abandoned) co_return;
        self->record(d, *ep, outcome);
    }

    void finished(std::string const& webhook, std::int64_t id, std::shared_ptr<endpoint> const& ep) {
        if (auto it = in_flight_by_webhook.find(webhook); it != in_flight_by_webhook.end() && it->second > 0)
            --it->second;
        in_flight_ids.erase(id);
        --in_flight_total;
        if (--ep->active == 0 && ep->retired) ep->client->shutdown();
        wake_up();
        if (stopping && in_flight_total == 0) stop_timer.cancel();
    }

    void start(store::delivery d, std::shared_ptr<endpoint> ep) {
        auto const id = d.id;
        auto webhook = d.webhook;
        ++in_flight_by_webhook[webhook];
        in_flight_ids.insert(id);
        ++in_flight_total;
        ++ep->active;
        asio::co_spawn(ex, attempt(shared_from_this(), std::move(d), ep),
                       [self = shared_from_this(), webhook, id, ep](std::exception_ptr e) {
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (std::exception const& x) {
                                   spdlog::error("webhook {}: delivery attempt failed unexpectedly: {}", webhook,
                                                 x.what());
                               }
                           }
                           self->finished(webhook, id, ep);
                       });
    }

    // Starts every due head that may go now; returns how long to sleep.
    // Rows of webhooks not configured (now) are left untouched.
    milliseconds start_due() {
        milliseconds wait = unrecorded.empty() ? rescan_interval : store_retry_interval;
        auto const now = wall_now();
        for (auto const& [name, ep] : endpoints) {
            auto& in_flight = in_flight_by_webhook[name];
            if (in_flight >= max_in_flight_per_webhook) continue;   // full: an attempt finishing wakes us
            // The earliest heads are enough: those in flight or with an
            // unrecorded outcome come back too and are passed over, the
            // rest fill the free places, and one more tells when to wake.
            auto heads = store.delivery_heads(name, max_in_flight_per_webhook + unrecorded.size() + 1);
            if (!heads) {
                store_error("reading the outbox", heads.error());
                return store_retry_interval;
            }
            for (auto& d : *heads) {
                if (in_flight_ids.contains(d.id) || unrecorded.contains(d.id)) continue;
                if (d.next_attempt > now) {
                    wait = std::min(wait, std::chrono::duration_cast<milliseconds>(d.next_attempt - now));
                    break;   // the rest fall due later still
                }
                if (in_flight >= max_in_flight_per_webhook) break;
                start(std::move(d), ep);
            }
        }
        if (unrecorded.empty()) store_ok();
        return wait;
    }

    void retire(std::shared_ptr<endpoint> const& ep) {
        ep->retired = true;
        if (ep->active == 0) ep->client->shutdown();
    }

    void shutdown_clients() {
        for (auto const& [name, ep] : endpoints) ep->client->shutdown();
    }
};

webhook_dispatcher::webhook_dispatcher(asio::any_io_executor ex, store::state_store& store, metrics& counters,
                                       std::string user_agent)
    : impl_(std::make_shared<impl>(ex, store, counters, std::move(user_agent))) {}

webhook_dispatcher::~webhook_dispatcher() {
    // Attempts still running (no stop()) are abandoned, never recorded as failed.
    impl_->stopping = true;
    impl_->abandoned = true;
    impl_->wake.cancel();
    impl_->stop_timer.cancel();
    impl_->shutdown_clients();
}

void webhook_dispatcher::configure(std::vector<webhook_target> targets) {
    auto& self = *impl_;
    std::map<std::string, std::shared_ptr<endpoint>> next;
    for (auto& target : targets) {
        auto const name = target.config.name;
        self.counters.webhooks[name];   // every configured webhook shows in /metrics, from 0
        if (auto old = self.endpoints.find(name); old != self.endpoints.end() && old->second->target == target) {
            next.emplace(name, old->second);   // keeps its kept-alive connections
            continue;
        }
        auto ep = make_endpoint(self.ex, std::move(target), self.user_agent);
        if (!ep) {
            spdlog::error("webhook {}: {}; its deliveries wait until the config is fixed", name, ep.error());
            continue;
        }
        next.emplace(name, *ep);
    }
    for (auto const& [name, ep] : self.endpoints) {
        auto it = next.find(name);
        if (it == next.end() || it->second != ep) self.retire(ep);
    }
    self.endpoints = std::move(next);
    self.wake_up();
}

void webhook_dispatcher::set_dead_letter_retention(std::chrono::milliseconds retention) {
    impl_->retention = retention;
    impl_->next_purge = {};
    impl_->wake_up();
}

asio::awaitable<void> webhook_dispatcher::run() {
    auto self = impl_;
    while (!self->stopping) {
        self->wake_pending = false;
        self->flush_unrecorded();
        self->maybe_purge();
        auto wait = self->start_due();
        if (self->stopping) break;
        if (self->wake_pending) continue;
        self->wake.expires_after(wait);
        co_await self->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void webhook_dispatcher::notify() { impl_->wake_up(); }

asio::awaitable<void> webhook_dispatcher::stop(std::chrono::milliseconds grace) {
    auto self = impl_;
    self->stopping = true;
    self->wake.cancel();
    if (self->in_flight_total > 0) {
        self->stop_timer.expires_after(grace);
        co_await self->stop_timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (self->in_flight_total > 0)
        spdlog::info("abandoning {} webhook deliveries in flight; they are retried at the next start",
                     self->in_flight_total);
    self->abandoned = true;
    self->shutdown_clients();
    // Let the abandoned attempts unwind (shutdown makes their sends finish).
    if (self->in_flight_total > 0) {
        self->stop_timer.expires_after(abandon_wait);
        co_await self->stop_timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // Outcomes the store refused so far: one last try, else they are retried after the restart.
    self->flush_unrecorded();
}

std::size_t webhook_dispatcher::in_flight() const { return impl_->in_flight_total; }

} // namespace importwatch::daemon
