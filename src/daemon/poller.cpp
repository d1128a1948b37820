#include "daemon/poller.hpp"

#include <random>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "core/backoff.hpp"
#include "core/duration.hpp"
#include "core/log_throttle.hpp"
#include "core/rate_limit_gate.hpp"
#include "core/scheduler.hpp"
#include "core/untrusted_text.hpp"
#include "core/url.hpp"
#include "daemon/log_sink.hpp"
#include "daemon/token_source.hpp"

namespace importwatch::daemon {
namespace {

using namespace std::chrono_literals;
using core::milliseconds;

std::string repeated(std::uint64_t held, char const* tail = "") {
    return held ? fmt::format(" (repeated {} times{})", held, tail) : std::string();
}

/// What the poller says about its polls: log lines (a repeated one at most
/// once a minute per watch and cause, with the count held back) and metrics.
class poll_reporter {
public:
    explicit poll_reporter(metrics& m) : metrics_(m) {}

    /// A 429 or remaining=0 that started or extended the process-wide pause.
    /// Polls in flight during a 429 storm extend the same pause: `new_pause`
    /// is false for those, and only a new pause is logged.
    void paused(int http_status, core::sys_ms until, core::sys_ms now, milliseconds paused_total, bool new_pause) {
        ++metrics_.rate_limit_pauses;
        metrics_.rate_limit_paused = paused_total;
        if (!new_pause) return;
        log_fields(core::log_level::warn,
                   fmt::format("rate limited by LaunchDarkly (HTTP {}): holding every request for {} until {}",
                               http_status, core::format_duration(until - now), core::format_rfc3339(until)),
                   {{"http_status", http_status},
                    {"pause_seconds", std::chrono::duration<double>(until - now).count()},
                    {"until", core::format_rfc3339(until)}});
    }

    void commit_failed(watch_slot const& s, std::string const& error, core::sys_ms now) {
        if (auto held = throttle_.admit(s.config.key.path() + "\x1fstore", now))
            log_fields(core::log_level::error,
                       fmt::format("state store: cannot commit watch {}: {}{}", s.config.name, error, repeated(*held)),
                       {{"watch", s.config.name}, {"error", error}, {"repeated", *held}});
    }

    /// A good poll: the next error of this watch is logged at once.
    /// Every steady-state poll comes here: the key (an allocated path) is
    /// only built when some error is held at all.
    void poll_succeeded(watch_slot const& s) {
        if (!throttle_.empty()) throttle_.clear(s.config.key.path());
    }

    void poll_failed(watch_slot const& s, core::poll_result result, std::string const& error, core::sys_ms now) {
        auto const subject = s.config.key.path();
        if (auto held = throttle_.admit(subject, now))
            log_fields(core::log_level::warn,
                       fmt::format("watch {}: {}{}", s.config.name, error, repeated(*held, " in the last minute")),
                       {{"watch", s.config.name},
                        {"subject", subject},
                        {"result", core::to_string(result)},
                        {"error", error},
                        {"repeated", *held}});
    }

    void warning(watch_slot const& s, std::string const& text) {
        log_fields(core::log_level::warn, fmt::format("watch {}: {}", s.config.name, text),
                   {{"watch", s.config.name}, {"subject", s.config.key.path()}});
    }

    /// Counts the bounds a decision ran into and says so (at most once a
    /// minute per watch and bound). A too-long status is logged as the
    /// invalid response it is.
    void limits(watch_slot const& s, core::limits_hit const& hit, core::sys_ms now) {
        if (hit.status_too_long) metrics_.count_limit("status_bytes");   // logged as an invalid response
        if (hit.text_cut)
            limit(s, "peer_text_bytes", now,
                  fmt::format("LaunchDarkly sent a file name or error message longer than {} bytes; events "
                              "and logs carry it cut",
                              core::max_peer_text));
        if (hit.file_events_omitted > 0)
            limit(s, "file_events_per_poll", now,
                  fmt::format("{} more file changes in one poll than the {} sent as events; they are summed "
                              "up in one event (files_omitted)",
                              hit.file_events_omitted, core::max_file_events_per_poll),
                  {{"files_omitted", hit.file_events_omitted}});
        if (hit.import_bytes > 0)
            limit(s, "event_import_bytes", now,
                  fmt::format("the Import object is {} bytes; events carry it shortened to {} bytes (see "
                              "_importwatch in it)",
                              hit.import_bytes, core::max_event_import_bytes),
                  {{"import_bytes", hit.import_bytes}});
    }

    void token_rejected(std::size_t failed_watches, bool polling_stops, milliseconds retry) {
        log_fields(core::log_level::error,
                   polling_stops
                       ? std::string("LaunchDarkly rejected the API token (HTTP 401): every watch is marked failed "
                                     "and polling stops")
                       : fmt::format("LaunchDarkly rejected the API token (HTTP 401): every watch is marked failed; "
                                     "polling every {} until a token works",
                                     core::format_duration(retry)),
                   {{"http_status", 401}, {"failed_watches", failed_watches}});
    }

private:
    /// A bound that bit: counted every time, logged at most once a minute per
    /// watch and bound, with the count of the repeats.
    void limit(watch_slot const& s, std::string_view name, core::sys_ms now, std::string const& message,
               boost::json::object fields = {}) {
        metrics_.count_limit(name);
        auto const held = throttle_.admit(s.config.key.path() + "\x1flimit\x1f" + std::string(name), now);
        if (!held) return;
        fields["watch"] = s.config.name;
        fields["limit"] = name;
        fields["repeated"] = *held;
        log_fields(core::log_level::warn, fmt::format("watch {}: {}{}", s.config.name, message, repeated(*held)),
                   std::move(fields));
    }

    metrics& metrics_;
    core::log_throttle throttle_;
};

core::expected<std::shared_ptr<net::transport>> connect_https(asio::any_io_executor ex,
                                                              net::client_settings const& settings) {
    auto client = net::make_client(std::move(ex), settings);
    if (!client) return core::fail(client.error());
    return std::shared_ptr<net::transport>(std::move(*client));
}

} // namespace

struct poller::impl : std::enable_shared_from_this<poller::impl> {
    impl(asio::any_io_executor ex, metrics& m, commit_fn c, publish_fn p, poller_dependencies d)
        : ex_(ex), metrics_(m), commit_(std::move(c)), publish_(std::move(p)), io_(std::move(d)), gate_(0, {}),
          report_(m) {
        if (!io_.connect) io_.connect = [ex](net::client_settings const& s) { return connect_https(ex, s); };
        if (!io_.time) io_.time = std::make_shared<wall_clock>();
        if (!io_.random) io_.random = std::make_shared<core::prng>(std::random_device{}());
        wakeup_ = io_.time->make_alarm(ex_);
    }

    asio::any_io_executor ex_;
    metrics& metrics_;
    commit_fn commit_;
    publish_fn publish_;
    poller_dependencies io_;
    std::unique_ptr<alarm> wakeup_;
    std::function<void()> on_settled_;
    std::function<void(core::sys_ms)> on_pause_;

    poller_settings settings_;                // without the token: tokens_ holds it
    milliseconds coalesce_{0};                // the run loop's shortest sleep (core::coalesce_window)
    std::string target_prefix_;               // base_url path without trailing '/'
    net::client_settings client_settings_;    // what transport_ was built from
    std::shared_ptr<net::transport> transport_;
    core::rate_limit_gate gate_;
    core::scheduler schedule_;                // indices are slots_ indices
    token_source tokens_;
    std::shared_ptr<net::header_block const> poll_headers_;   // for the token version below
    std::uint64_t poll_headers_token_ = 0;
    poll_reporter report_;

    std::deque<watch_slot> slots_;            // stable addresses: polls hold references
    std::size_t in_flight_ = 0;
    bool stopping_ = false;
    bool commit_failing_ = false;

    core::sys_ms now() { return io_.time->now(); }
    core::random_source& rng() { return *io_.random; }

    core::watch_view view(watch_slot const& s) const {
        return {s.config, settings_.polling, settings_.launchdarkly.base_url};
    }

    bool settled(watch_slot const& s) const {
        return s.removed || (!schedule_.due(s.index) && !s.in_flight && !s.committing);
    }

    // ---- configuration -------------------------------------------------

    /// The running (not removed) watches by key; keys point into slots_.
    using running_index = std::unordered_map<core::watch_key_ref, std::uint32_t, core::watch_key_ref::hasher>;
    running_index running() const {
        running_index out;
        out.reserve(slots_.size());
        for (auto const& s : slots_)
            if (!s.removed) out.emplace(core::watch_key_ref(s.config.key), s.index);
        return out;
    }

    core::expected<void> configure(poller_settings settings, std::vector<core::watch_config> watches,
                                   poller::state_loader const& load) {
        auto const& ld = settings.launchdarkly;
        auto base = core::parse_url(ld.base_url);
        if (!base) return core::fail("launchdarkly.base_url: not a valid http(s) URL");
        net::client_settings wanted{.origin = *base,
                                    .ca_file = ld.ca_file,
                                    .proxy = ld.proxy,
                                    .max_connections = static_cast<std::size_t>(ld.max_connections),
                                    .timeout = ld.request_timeout};
        std::shared_ptr<net::transport> transport;
        if (!transport_ || wanted != client_settings_) {
            auto connected = io_.connect(wanted);
            if (!connected) return core::fail("launchdarkly." + connected.error());
            transport = std::move(*connected);
        }

        // Which watches run already (by slot), and the stored states of the new ones.
        auto const existing = running();
        std::vector<std::optional<std::uint32_t>> slot_of;
        slot_of.reserve(watches.size());
        std::vector<std::string> new_keys;
        for (auto const& w : watches) {
            auto const it = existing.find(core::watch_key_ref(w.key));
            slot_of.push_back(it == existing.end() ? std::nullopt : std::optional(it->second));
            if (it == existing.end()) new_keys.push_back(w.key.path());
        }
        auto stored = load(new_keys);
        if (!stored) return core::fail(stored.error());

        // Nothing can fail from here on.
        if (transport) {
            // Polls in flight keep the old pool alive until they finish.
            transport_ = std::move(transport);
            client_settings_ = std::move(wanted);
        }
        target_prefix_ = base->target;
        while (!target_prefix_.empty() && target_prefix_.back() == '/') target_prefix_.pop_back();
        gate_.reconfigure(ld.max_requests_per_second, settings.polling.backoff);
        tokens_.configure(ld, std::move(settings.token));
        settings.token.clear();
        poll_headers_.reset();   // the token or the API version may have changed
        settings_ = std::move(settings);
        coalesce_ = core::coalesce_window(settings_.polling);

        auto const at = now();
        std::vector<bool> keep(slots_.size(), false);
        auto new_key = new_keys.begin();   // the new watches' keys, in order
        for (std::size_t i = 0; i < watches.size(); ++i) {
            if (slot_of[i]) {
                keep[*slot_of[i]] = true;
                slots_[*slot_of[i]].config = std::move(watches[i]);   // a rename keeps state and schedule
                continue;
            }
            auto& s = slots_.emplace_back();
            s.config = std::move(watches[i]);
            s.index = schedule_.add();
            if (auto st = stored->find(*new_key++); st != stored->end()) s.state = std::move(st->second);
            keep.push_back(true);
            bool done = s.state.terminal() || (settings_.stop_failed_watches && s.state.failure);
            schedule_.schedule(s.index, done ? std::nullopt : std::optional(at));
        }
        for (auto& s : slots_) {
            if (!keep[s.index] && !s.removed) {
                s.removed = true;
                schedule_.schedule(s.index, std::nullopt);
            }
        }
        wakeup_->cancel();
        return {};
    }

    // ---- the run loop --------------------------------------------------

    asio::awaitable<void> run() {
        auto self = shared_from_this();
        while (!stopping_) {
            auto const at = now();
            core::sys_ms wake_at = at + 1h;
            while (auto next = schedule_.earliest()) {
                if (next->due > at) {
                    // Due times closer than a wake-up apart wait for each
                    // other: 1,000 watches at 30 s wake the loop a few times a
                    // second, not once a poll. Late, never early (a due time
                    // may be a server's Retry-After).
                    wake_at = std::max(next->due, at + coalesce_);
                    break;
                }
                if (in_flight_ >= client_settings_.max_connections) break;   // a finishing poll wakes us
                auto permit = gate_.acquire(at, rng());
                if (permit > at) {
                    wake_at = permit;
                    break;
                }
                schedule_.take_earliest();
                launch(next->watch);
            }
            co_await wakeup_->wait_until(wake_at);
        }
    }

    void launch(std::uint32_t index) {
        slots_[index].in_flight = true;
        ++in_flight_;
        asio::co_spawn(ex_, poll(index), [self = shared_from_this(), index](std::exception_ptr e) {
            if (e) self->poll_threw(index, e);
            self->wakeup_->cancel();
        });
    }

    void poll_threw(std::uint32_t index, std::exception_ptr e) {
        auto& s = slots_[index];
        try {
            std::rethrow_exception(e);
        } catch (std::exception const& ex) {
            spdlog::error("poll of watch {} failed unexpectedly: {}", s.config.name, ex.what());
        }
        if (s.in_flight) {
            s.in_flight = false;
            --in_flight_;
        }
        s.committing = false;
        // Thrown before or after the reply came back: either way the watch
        // is not on the schedule any more, and must not drop off it.
        if (!stopping_ && !s.removed && !s.state.terminal() && !schedule_.due(index))
            schedule_.schedule(index, core::unexpected_error_retry_time(settings_.polling.backoff, now()));
    }

    // ---- the poll pipeline: request → decide → commit → publish ----------

    /// The fields every poll carries, serialized once per token and
    /// configuration (configure drops them) rather than once per poll.
    std::shared_ptr<net::header_block const> const& poll_headers() {
        if (!poll_headers_ || poll_headers_token_ != tokens_.version()) {
            poll_headers_ = std::make_shared<net::header_block const>(std::vector<std::pair<std::string, std::string>>{
                {"Authorization", tokens_.current()},
                {"LD-API-Version", settings_.launchdarkly.api_version},
                {"Accept", "application/json"}});
            poll_headers_token_ = tokens_.version();
        }
        return poll_headers_;
    }

    net::client_request request_for(watch_slot const& s) {
        net::client_request request;
        request.target = core::import_path(s.config.key, target_prefix_);
        request.common_headers = poll_headers();
        request.keep_headers = core::rate_limit_headers;
        return request;
    }

    asio::awaitable<void> poll(std::uint32_t index) {
        auto self = shared_from_this();
        auto transport = transport_;   // a reload may replace the pool while this poll is in flight
        auto const token_version = tokens_.version();
        auto request = request_for(slots_[index]);
        auto const started = std::chrono::steady_clock::now();
        auto outcome = co_await transport->send(std::move(request));
        auto& s = slots_[index];
        s.in_flight = false;
        --in_flight_;
        if (stopping_) co_return;   // abandoned: nothing of it is committed
        metrics_.poll_duration.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

        auto const at = now();
        if (outcome) observe_limits(*outcome, at);
        if (s.removed) co_return;
        if (outcome && outcome->status == 401 && !tokens_.is_current(token_version)) {
            // Sent with a token that has been replaced since (read again
            // after another 401, or a reload): it says nothing about the new
            // one. Judging it would fail every watch again after they recovered.
            schedule_.schedule(index, at);
            co_return;
        }
        auto decision = core::decide(view(s), s.state, outcome, at, rng());
        bool const unauthorized = decision.unauthorized;
        if (decision.result == core::poll_result::ok) tokens_.accepted();
        // The watch's own poll was judged: it counts as a poll of it.
        metrics_.count_poll(decision.result);
        s.last_poll = at;
        // A steady-state poll (nothing to persist) takes no coroutine frame more.
        if (must_commit(decision)) co_await commit_and_publish(index, std::move(decision), at);
        else if (carry_import(index, decision, at)) publish(index, std::move(decision), at);
        if (unauthorized) token_rejected(index, at);
    }

    void observe_limits(core::http_reply const& reply, core::sys_ms at) {
        auto const before = gate_.paused_until();
        auto verdict = gate_.observe(reply, at, rng());
        if (!verdict.paused) return;
        if (on_pause_ && verdict.until > before) on_pause_(verdict.until);
        report_.paused(reply.status, verdict.until, at, gate_.paused_total(), before <= at);
    }

    /// The watch is marked failed without a poll of its own (another watch's
    /// 401 said the token is bad). It leaves the schedule while that commits.
    void apply_unpolled_failure(std::uint32_t index, core::watch_failure const& failure, core::sys_ms at) {
        auto& s = slots_[index];
        auto d = core::fail_watch(view(s), s.state, failure, at, rng());
        if (!must_commit(d)) {
            if (carry_import(index, d, at)) publish(index, std::move(d), at);
            return;
        }
        schedule_.schedule(index, std::nullopt);
        s.committing = true;
        asio::co_spawn(ex_, commit_and_publish(index, std::move(d), at),
                       [self = shared_from_this(), index](std::exception_ptr e) {
                           if (e) self->poll_threw(index, e);
                           self->wakeup_->cancel();   // its next poll may be sooner than the loop's wake-up
                       });
    }

    /// The store failed the decision: nothing of it is published, the
    /// watch keeps its old state and is polled again later.
    void store_failed(std::uint32_t index, std::string const& error, core::sys_ms at) {
        auto& s = slots_[index];
        commit_failing_ = true;
        s.last_error = "state store: " + error;
        report_.commit_failed(s, error, at);
        if (s.removed) return;   // dropped by a reload meanwhile
        schedule_.schedule(index, core::commit_retry_time(settings_.polling.backoff, at, rng()));
    }

    bool must_commit(core::poll_decision const& d) const { return d.persist && commit_; }

    /// An event that carries the stored Import (a watch.failed) gets it
    /// here; false when it cannot be read (handled as a failed commit).
    bool carry_import(std::uint32_t index, core::poll_decision& d, core::sys_ms at) {
        if (!d.carries_stored_import || !io_.stored_import) return true;
        auto stored = io_.stored_import(slots_[index]);
        if (!stored) {
            store_failed(index, stored.error(), at);
            return false;
        }
        core::carry_stored_import(d, *stored);
        return true;
    }

    /// Commit, then publish: the watch's new state, its log lines and the
    /// dispatcher's wake-up all wait until the decision is durable, and so
    /// does its next poll (it is off the schedule meanwhile).
    asio::awaitable<void> commit_and_publish(std::uint32_t index, core::poll_decision d, core::sys_ms at) {
        auto self = shared_from_this();
        auto& s = slots_[index];
        s.committing = true;
        if (!carry_import(index, d, at)) {
            s.committing = false;
            co_return;
        }
        auto committed = co_await commit_(s, d);
        s.committing = false;
        if (!committed) co_return store_failed(index, committed.error(), at);
        commit_failing_ = false;
        publish(index, std::move(d), at);
    }

    /// A decision that is durable (or needed no commit) takes effect: the
    /// watch's state, metrics, log lines, the publish and its next poll.
    void publish(std::uint32_t index, core::poll_decision d, core::sys_ms at) {
        auto& s = slots_[index];
        s.state = std::move(d.state);
        if (d.result == core::poll_result::ok) {
            metrics_.last_successful_poll = at;
            s.last_error.reset();
            report_.poll_succeeded(s);
        }
        for (auto const& e : d.events)
            if (e.type == core::status_changed_type && s.state.status)
                ++metrics_.transitions[static_cast<std::size_t>(core::classify_status(*s.state.status))];
        if (d.limits.any()) report_.limits(s, d.limits, at);
        if (!d.events.empty() && publish_) publish_(s, d.events);
        if (d.warning) report_.warning(s, *d.warning);
        if (d.error) {
            s.last_error = d.error;
            // A 429 is logged by the gate once per pause, a 401 by
            // token_rejected once until a token works: not once per poll.
            if (d.result != core::poll_result::rate_limited && !d.unauthorized)
                report_.poll_failed(s, d.result, *d.error, at);
        }
        if (s.removed) return;   // dropped by a reload while its decision committed: not polled again
        bool done = !d.next_poll || (settings_.stop_failed_watches && s.state.failure);
        schedule_.schedule(index, done ? std::nullopt : d.next_poll);
        if (done && on_settled_) on_settled_();
    }

    /// A 401 for the current token: it is read again, and the first time
    /// since it last worked every other watch is marked failed at once.
    void token_rejected(std::uint32_t origin, core::sys_ms at) {
        if (!tokens_.reject()) return;   // the other watches were failed already
        std::size_t failed = 0;
        core::watch_failure const failure{"unauthorized", 401, "Invalid access token"};
        for (auto const& s : slots_) {
            if (s.index == origin || s.removed || s.in_flight || s.committing || s.state.terminal()) continue;
            if (!schedule_.due(s.index)) continue;
            apply_unpolled_failure(s.index, failure, at);
            ++failed;
        }
        // wait stops at a failed watch; run goes on polling so that a fixed token recovers.
        report_.token_rejected(failed + 1, settings_.stop_failed_watches, settings_.polling.backoff.max);
    }

    void stop() {
        stopping_ = true;
        wakeup_->cancel();
        if (transport_) transport_->shutdown();
    }
};

poller::poller(asio::any_io_executor ex, metrics& counters, commit_fn commit, publish_fn publish,
               poller_dependencies dependencies)
    : impl_(std::make_shared<impl>(ex, counters, std::move(commit), std::move(publish), std::move(dependencies))) {}

poller::~poller() { impl_->stop(); }

core::expected<void> poller::configure(poller_settings settings, std::vector<core::watch_config> watches,
                                       state_loader const& load) {
    return impl_->configure(std::move(settings), std::move(watches), load);
}

asio::awaitable<void> poller::run() { return impl_->run(); }
void poller::stop() { impl_->stop(); }
std::deque<watch_slot> const& poller::watches() const { return impl_->slots_; }

std::optional<core::sys_ms> poller::next_poll(watch_slot const& watch) const {
    return impl_->schedule_.due(watch.index);
}

bool poller::settled() const {
    for (auto const& s : impl_->slots_)
        if (!impl_->settled(s)) return false;
    return true;
}

void poller::on_settled(std::function<void()> f) { impl_->on_settled_ = std::move(f); }

std::chrono::milliseconds poller::scheduler_lag(core::sys_ms now) const { return impl_->schedule_.lag(now); }

bool poller::commit_failing() const { return impl_->commit_failing_; }
bool poller::token_rejected() const { return impl_->tokens_.rejected(); }

std::optional<core::sys_ms> poller::paused_until(core::sys_ms now) const {
    auto const until = impl_->gate_.paused_until();
    if (until <= now) return std::nullopt;
    return until;
}

void poller::on_pause(std::function<void(core::sys_ms)> f) { impl_->on_pause_ = std::move(f); }

} // namespace importwatch::daemon
