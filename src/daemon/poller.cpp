#include "daemon/poller.hpp"

#include <deque>
#include <queue>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "core/backoff.hpp"
#include "core/duration.hpp"
#include "core/log_throttle.hpp"
#include "core/rate_limit_gate.hpp"
#include "core/untrusted_text.hpp"
#include "core/url.hpp"
#include "daemon/config_loader.hpp"
#include "daemon/log_sink.hpp"
#include "net/http_client.hpp"

namespace importwatch::daemon {
namespace {

using namespace std::chrono_literals;

struct due_entry {
    core::sys_ms due;
    std::uint32_t index;
    std::uint32_t generation;
    bool operator>(due_entry const& o) const { return due > o.due; }
};

bool same_client(core::launchdarkly_config const& a, core::launchdarkly_config const& b) {
    return a.base_url == b.base_url && a.ca_file == b.ca_file && a.max_connections == b.max_connections &&
           a.request_timeout == b.request_timeout && a.proxy == b.proxy;
}

} // namespace

struct poller::impl : std::enable_shared_from_this<poller::impl> {
    impl(asio::any_io_executor ex, metrics& m, commit_fn c, publish_fn p)
        : ex_(ex), metrics_(m), commit_(std::move(c)), publish_(std::move(p)), wakeup_(ex),
          gate_(0, {}), rng_(std::random_device{}()) {}

    asio::any_io_executor ex_;
    metrics& metrics_;
    commit_fn commit_;
    publish_fn publish_;
    std::function<void()> on_settled_;
    std::function<void(core::sys_ms)> on_pause_;

    poller_settings settings_;
    std::string target_prefix_;               // base_url path without trailing '/'
    std::shared_ptr<net::http_client> client_;
    asio::system_timer wakeup_;
    core::rate_limit_gate gate_;
    core::prng rng_;

    std::deque<watch_slot> slots_;            // stable addresses: polls hold references
    std::priority_queue<due_entry, std::vector<due_entry>, std::greater<>> heap_;
    std::size_t in_flight_ = 0;
    bool stopping_ = false;
    bool token_rejected_ = false;             // a 401 was seen and not yet followed by success
    bool commit_failing_ = false;
    core::log_throttle throttle_;

    core::watch_view view(watch_slot const& s) const {
        return {s.config, settings_.polling, settings_.launchdarkly.base_url};
    }

    void wake() { wakeup_.cancel(); }

    void schedule(std::uint32_t index, std::optional<core::sys_ms> due) {
        auto& s = slots_[index];
        s.next_poll = due;
        ++s.generation;
        if (due) heap_.push({*due, index, s.generation});
    }

    bool settled(watch_slot const& s) const { return s.removed || (!s.next_poll && !s.in_flight); }

    core::expected<void> configure(poller_settings settings, std::vector<core::watch_config> const& watches,
                                   std::map<std::string, core::watch_state> const& stored) {
        auto base = core::parse_url(settings.launchdarkly.base_url);
        if (!base) return core::fail("launchdarkly.base_url: not a valid http(s) URL");
        if (!client_ || !same_client(settings_.launchdarkly, settings.launchdarkly)) {
            auto tls = net::make_client_context(settings.launchdarkly.ca_file);
            if (!tls) return core::fail(tls.error());
            net::client_options o;
            o.origin = *base;
            o.tls = *tls;
            o.max_connections = static_cast<std::size_t>(settings.launchdarkly.max_connections);
            o.timeout = settings.launchdarkly.request_timeout;
            o.user_agent = std::string("importwatch/") + IMPORTWATCH_VERSION;
            auto proxy = net::proxy_for(*base, settings.launchdarkly.proxy);
            if (!proxy) return core::fail("launchdarkly." + proxy.error());
            o.proxy = *proxy;
            // Polls in flight keep the old pool alive until they finish.
            client_ = std::make_shared<net::http_client>(ex_, std::move(o));
        }
        target_prefix_ = base->target;
        while (!target_prefix_.empty() && target_prefix_.back() == '/') target_prefix_.pop_back();
        gate_.reconfigure(settings.launchdarkly.max_requests_per_second, settings.polling.backoff);
        settings_ = std::move(settings);

        std::map<std::string, std::uint32_t> existing;
        for (std::uint32_t i = 0; i < slots_.size(); ++i)
            if (!slots_[i].removed) existing.emplace(slots_[i].config.key.path(), i);

        auto const now = wall_now();
        std::vector<bool> keep(slots_.size(), false);
        for (auto const& w : watches) {
            auto key = w.key.path();
            if (auto it = existing.find(key); it != existing.end()) {
                keep[it->second] = true;
                slots_[it->second].config = w;   // a rename keeps state and schedule
                continue;
            }
            watch_slot s;
            s.config = w;
            if (auto st = stored.find(key); st != stored.end()) s.state = st->second;
            slots_.push_back(std::move(s));
            keep.push_back(true);
            auto index = static_cast<std::uint32_t>(slots_.size() - 1);
            bool done = slots_[index].state.terminal() ||
                        (settings_.stop_failed_watches && slots_[index].state.failure);
            schedule(index, done ? std::nullopt : std::optional(now));
        }
        for (std::uint32_t i = 0; i < slots_.size(); ++i) {
            if (!keep[i] && !slots_[i].removed) {
                slots_[i].removed = true;
                slots_[i].next_poll.reset();
            }
        }
        wake();
        return {};
    }

    std::string target_of(core::watch_key const& k) const {
        std::string t;
        t.reserve(target_prefix_.size() + 32 + k.project.size() + k.environment.size() + k.segment.size() +
                  k.import_id.size());
        t += target_prefix_;
        t += "/api/v2/segments/";
        t += k.project;
        t += '/';
        t += k.environment;
        t += '/';
        t += k.segment;
        t += "/imports/";
        t += k.import_id;
        return t;
    }

    asio::awaitable<void> run() {
        auto self = shared_from_this();
        while (!stopping_) {
            auto const now = wall_now();
            core::sys_ms wake_at = now + 1h;
            while (!heap_.empty()) {
                auto top = heap_.top();
                auto& s = slots_[top.index];
                if (top.generation != s.generation || s.removed || !s.next_poll || s.in_flight) {
                    heap_.pop();
                    continue;
                }
                if (top.due > now) {
                    wake_at = top.due;
                    break;
                }
                if (in_flight_ >= static_cast<std::size_t>(settings_.launchdarkly.max_connections))
                    break;   // a finishing poll wakes us
                auto permit = gate_.acquire(now, rng_);
                if (permit > now) {
                    wake_at = permit;
                    break;
                }
                heap_.pop();
                launch(top.index);
            }
            wakeup_.expires_at(std::chrono::system_clock::time_point(wake_at));
            co_await wakeup_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    void launch(std::uint32_t index) {
        auto& s = slots_[index];
        s.in_flight = true;
        s.next_poll.reset();
        ++in_flight_;
        asio::co_spawn(ex_, poll(index), [self = shared_from_this(), index](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (std::exception const& ex) {
                    spdlog::error("poll of watch {} failed unexpectedly: {}", self->slots_[index].config.name,
                                  ex.what());
                }
                auto& s = self->slots_[index];
                if (s.in_flight) {
                    s.in_flight = false;
                    --self->in_flight_;
                    if (!self->stopping_ && !s.removed)
                        self->schedule(index, wall_now() + self->settings_.polling.backoff.max);
                }
            }
            self->wake();
        });
    }

    asio::awaitable<void> poll(std::uint32_t index) {
        auto self = shared_from_this();
        auto client = client_;
        net::client_request request;
        std::string const token = settings_.token;   // the token this request carries
        {
            auto const& s = slots_[index];
            request.target = target_of(s.config.key);
            request.headers = {{"Authorization", token},
                               {"LD-API-Version", settings_.launchdarkly.api_version},
                               {"Accept", "application/json"}};
        }
        auto const started = std::chrono::steady_clock::now();
        auto outcome = co_await client->send(std::move(request));
        auto& s = slots_[index];
        s.in_flight = false;
        --in_flight_;
        if (stopping_) co_return;   // abandoned: nothing of it is committed
        metrics_.poll_duration.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

        auto const now = wall_now();
        if (outcome) observe_limits(*outcome, now);
        if (s.removed) co_return;
        if (outcome && outcome->status == 401 && token != settings_.token) {
            // Sent with a token that has been replaced since (re-read after
            // another 401, or a reload): it says nothing about the new one.
            // Judging it would fail every watch again after they recovered.
            schedule(index, now);
            co_return;
        }
        auto decision = core::decide(view(s), s.state, outcome, now, rng_);
        bool const unauthorized = decision.unauthorized;
        if (decision.result == core::poll_result::ok) token_rejected_ = false;
        apply(index, std::move(decision), now);
        if (unauthorized) on_unauthorized(index, now);
    }

    void observe_limits(core::http_reply const& reply, core::sys_ms now) {
        auto const before = gate_.paused_until();
        auto verdict = gate_.observe(reply, now, rng_);
        if (!verdict.paused) return;
        ++metrics_.rate_limit_pauses;
        metrics_.rate_limit_paused = gate_.paused_total();
        if (on_pause_ && verdict.until > before) on_pause_(verdict.until);
        // Polls in flight during a 429 storm extend the same pause: log once per pause.
        if (before <= now) {
            log_fields(core::log_level::warn,
                       fmt::format("rate limited by LaunchDarkly (HTTP {}): holding every request for {} until {}",
                                   reply.status, core::format_duration(verdict.until - now),
                                   core::format_rfc3339(verdict.until)),
                       {{"http_status", reply.status},
                        {"pause_seconds", std::chrono::duration<double>(verdict.until - now).count()},
                        {"until", core::format_rfc3339(verdict.until)}});
        }
    }

    /// `polled`: the decision judges a poll of this watch (not a 401 of another).
    void apply(std::uint32_t index, core::poll_decision d, core::sys_ms now, bool polled = true) {
        auto& s = slots_[index];
        if (polled) {
            metrics_.count_poll(d.result);
            s.last_poll = now;
        }
        std::string const throttle_key = s.config.key.path();
        if (d.persist && commit_) {
            auto committed = commit_(s, d.state, d.events);
            if (!committed) {
                // Nothing of it is published; the watch keeps its old state.
                commit_failing_ = true;
                s.last_error = "state store: " + committed.error();
                if (auto held = throttle_.admit(throttle_key + "\x1fstore", now))
                    log_fields(core::log_level::error,
                               fmt::format("state store: cannot commit watch {}: {}{}", s.config.name,
                                           committed.error(), *held ? fmt::format(" (repeated {} times)", *held) : ""),
                               {{"watch", s.config.name}, {"error", committed.error()}, {"repeated", *held}});
                schedule(index, now + core::full_jitter(settings_.polling.backoff, 0, rng_) + 1s);
                return;
            }
            commit_failing_ = false;
        }
        s.state = std::move(d.state);
        if (d.result == core::poll_result::ok) {
            metrics_.last_successful_poll = now;
            s.last_error.reset();
            throttle_.clear(throttle_key);
        }
        for (auto const& e : d.events)
            if (e.type == core::status_changed_type && s.state.status)
                ++metrics_.transitions[static_cast<std::size_t>(core::classify_status(*s.state.status))];
        if (d.limits.any()) report_limits(s, d.limits, now);
        if (!d.events.empty() && publish_) publish_(s, d.events);
        if (d.warning)
            log_fields(core::log_level::warn, fmt::format("watch {}: {}", s.config.name, *d.warning),
                       {{"watch", s.config.name}, {"subject", throttle_key}});
        if (d.error) {
            s.last_error = d.error;
            // A 429 is logged by the gate once per pause, a 401 by
            // on_unauthorized once until a token works: not once per poll.
            if (d.result != core::poll_result::rate_limited && !d.unauthorized) {
                if (auto held = throttle_.admit(throttle_key, now))
                    log_fields(core::log_level::warn,
                               fmt::format("watch {}: {}{}", s.config.name, *d.error,
                                           *held ? fmt::format(" (repeated {} times in the last minute)", *held) : ""),
                               {{"watch", s.config.name},
                                {"subject", throttle_key},
                                {"result", core::to_string(d.result)},
                                {"error", *d.error},
                                {"repeated", *held}});
            }
        }
        bool done = !d.next_poll || (settings_.stop_failed_watches && s.state.failure);
        schedule(index, done ? std::nullopt : d.next_poll);
        if (done && on_settled_) on_settled_();
    }

    /// Counts the bounds a decision ran into and says so (at most once a
    /// minute per watch and bound). A too-long status is logged as the
    /// invalid response it is.
    void report_limits(watch_slot const& s, core::limits_hit const& hit, core::sys_ms now) {
        if (hit.status_too_long) metrics_.count_limit("status_bytes");   // logged as an invalid response
        if (hit.text_cut)
            report_limit(s, "peer_text_bytes", now,
                         fmt::format("LaunchDarkly sent a file name or error message longer than {} bytes; events "
                                     "and logs carry it cut",
                                     core::max_peer_text));
        if (hit.file_events_omitted > 0)
            report_limit(s, "file_events_per_poll", now,
                         fmt::format("{} more file changes in one poll than the {} sent as events; they are summed "
                                     "up in one event (files_omitted)",
                                     hit.file_events_omitted, core::max_file_events_per_poll),
                         {{"files_omitted", hit.file_events_omitted}});
        if (hit.import_bytes > 0)
            report_limit(s, "event_import_bytes", now,
                         fmt::format("the Import object is {} bytes; events carry it shortened to {} bytes (see "
                                     "_importwatch in it)",
                                     hit.import_bytes, core::max_event_import_bytes),
                         {{"import_bytes", hit.import_bytes}});
    }

    /// A bound that bit: counted every time, logged at most once a minute per
    /// watch and bound, with the count of the repeats.
    void report_limit(watch_slot const& s, std::string_view limit, core::sys_ms now, std::string const& message,
                      boost::json::object fields = {}) {
        metrics_.count_limit(limit);
        auto const held = throttle_.admit(s.config.key.path() + "\x1flimit\x1f" + std::string(limit), now);
        if (!held) return;
        fields["watch"] = s.config.name;
        fields["limit"] = limit;
        fields["repeated"] = *held;
        log_fields(core::log_level::warn,
                   fmt::format("watch {}: {}{}", s.config.name, message,
                               *held ? fmt::format(" (repeated {} times)", *held) : ""),
                   std::move(fields));
    }

    void on_unauthorized(std::uint32_t origin, core::sys_ms now) {
        // A rotated token in token_file recovers without a restart.
        if (auto token = read_api_token(settings_.launchdarkly)) {
            if (*token != settings_.token) {
                settings_.token = *token;
                spdlog::info("re-read the API token after HTTP 401");
            }
        }
        if (token_rejected_) return;   // the other watches were failed already
        token_rejected_ = true;
        std::size_t failed = 0;
        core::watch_failure failure{"unauthorized", 401, "Invalid access token"};
        for (std::uint32_t i = 0; i < slots_.size(); ++i) {
            auto& s = slots_[i];
            if (i == origin || s.removed || s.in_flight || s.state.terminal()) continue;
            if (!s.next_poll) continue;
            apply(i, core::fail_watch(view(s), s.state, failure, now, rng_), now, /*polled=*/false);
            ++failed;
        }
        // wait stops at a failed watch; run goes on polling so that a fixed token recovers.
        log_fields(core::log_level::error,
                   settings_.stop_failed_watches
                       ? std::string("LaunchDarkly rejected the API token (HTTP 401): every watch is marked failed "
                                     "and polling stops")
                       : fmt::format("LaunchDarkly rejected the API token (HTTP 401): every watch is marked failed; "
                                     "polling every {} until a token works",
                                     core::format_duration(settings_.polling.backoff.max)),
                   {{"http_status", 401}, {"failed_watches", failed + 1}});
    }

    void stop() {
        stopping_ = true;
        wake();
        if (client_) client_->shutdown();
    }
};

poller::poller(asio::any_io_executor ex, metrics& counters, commit_fn commit, publish_fn publish)
    : impl_(std::make_shared<impl>(ex, counters, std::move(commit), std::move(publish))) {}

poller::~poller() { impl_->stop(); }

core::expected<void> poller::configure(poller_settings settings, std::vector<core::watch_config> const& watches,
                                       std::map<std::string, core::watch_state> const& stored) {
    return impl_->configure(std::move(settings), watches, stored);
}

asio::awaitable<void> poller::run() { return impl_->run(); }
void poller::stop() { impl_->stop(); }
std::deque<watch_slot> const& poller::watches() const { return impl_->slots_; }

bool poller::settled() const {
    for (auto const& s : impl_->slots_)
        if (!impl_->settled(s)) return false;
    return true;
}

void poller::on_settled(std::function<void()> f) { impl_->on_settled_ = std::move(f); }

std::chrono::milliseconds poller::scheduler_lag(core::sys_ms now) const {
    std::chrono::milliseconds lag{0};
    for (auto const& s : impl_->slots_)
        if (!s.removed && !s.in_flight && s.next_poll && *s.next_poll < now) lag = std::max(lag, now - *s.next_poll);
    return lag;
}

bool poller::commit_failing() const { return impl_->commit_failing_; }

std::optional<core::sys_ms> poller::paused_until(core::sys_ms now) const {
    auto const until = impl_->gate_.paused_until();
    if (until <= now) return std::nullopt;
    return until;
}

void poller::on_pause(std::function<void(core::sys_ms)> f) { impl_->on_pause_ = std::move(f); }

} // namespace importwatch::daemon
