// The poller in-process: a scripted LaunchDarkly behind a fake transport and
// a virtual clock, so what the end-to-end tests saw through the binary in real
// time (failure classes, backoff, 401 handling, rate-limit storms, commit
// failures) is asserted to the millisecond and runs in milliseconds.
// poll_failures and rate_limits keep one end-to-end case per family for the
// wiring (sockets, TLS, the request deadline, token_file, the binary's logs).
#define BOOST_TEST_MODULE poller
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "common/scripted_random.hpp"
#include "common/simulated_launchdarkly.hpp"
#include "common/log_capture.hpp"
#include "common/testing.hpp"
#include "common/virtual_clock.hpp"
#include "core/backoff.hpp"
#include "core/rate_limit_gate.hpp"
#include "daemon/poller.hpp"
#include "daemon/spawn.hpp"

using namespace importwatch;
using namespace importwatch::testing;
using core::milliseconds;
using core::sys_ms;

namespace {

sys_ms const t0 = sys_ms{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}} + 19h;

// ---- what LaunchDarkly answers ---------------------------------------------

core::http_outcome import_reply(std::string const& id, std::string const& status) {
    boost::json::object o{{"id", id}, {"segmentKey", "s"}, {"creationTime", 1764356400000},
                          {"mode", "merge"}, {"status", status}};
    core::http_reply r;
    r.status = 200;
    r.body = boost::json::serialize(o);
    return r;
}

core::http_outcome error_reply(int status, std::string const& code, std::string const& message) {
    core::http_reply r;
    r.status = status;
    r.body = boost::json::serialize(boost::json::object{{"code", code}, {"message", message}});
    return r;
}

/// A response header, as the transport keeps it for the rate gate.
void set_header(core::http_outcome& o, std::string const& name, std::string value) {
    o->headers.push_back({name, std::move(value)});
}

std::string epoch_ms(sys_ms t) { return std::to_string(t.time_since_epoch().count()); }

core::http_outcome too_many_requests() {
    return error_reply(429, "rate_limited", "You've exceeded the API rate limit. Try again later.");
}

core::http_outcome failure(core::failure_kind kind, std::string message) {
    return core::unexpected<core::request_failure>{{kind, std::move(message)}};
}

// ---- the fake transport ----------------------------------------------------

struct request_seen {
    sys_ms at;
    std::string import_id;
    std::string token;
    int status = 0;          // what it was answered (0: a request failure)
};

/// LaunchDarkly as a function of each request; records what it was sent.
/// With `latency`, answers after that much virtual time (polls overlap).
class fake_launchdarkly final : public net::transport {
public:
    fake_launchdarkly(virtual_clock& clock, asio::any_io_executor ex) : clock_(clock), ex_(std::move(ex)) {}

    std::function<core::http_outcome(request_seen const&)> answer;
    milliseconds latency{0};
    std::vector<request_seen> requests;
    std::size_t in_flight = 0, most_in_flight = 0;

    asio::awaitable<core::http_outcome> send(net::client_request r) override {
        request_seen seen{clock_.now(), r.target.substr(r.target.rfind('/') + 1), {}};
        auto read = [&](auto const& fields) {
            for (auto const& [name, value] : fields)
                if (name == "Authorization") seen.token = value;
        };
        if (r.common_headers) read(r.common_headers->fields());
        read(r.headers);
        auto const n = requests.size();
        requests.push_back(seen);
        most_in_flight = std::max(most_in_flight, ++in_flight);
        if (latency > milliseconds{0}) {
            auto alarm = clock_.make_alarm(ex_);
            co_await alarm->wait_until(clock_.now() + latency);
        }
        --in_flight;
        auto outcome = answer(seen);
        requests[n].status = outcome ? outcome->status : 0;
        // Like net::http_client: a reply holds only the headers the request asked for.
        if (outcome)
            std::erase_if(outcome->headers, [&](core::header_field const& h) {
                return std::none_of(r.keep_headers.begin(), r.keep_headers.end(),
                                    [&](std::string_view k) { return core::same_header_name(k, h.name); });
            });
        co_return outcome;
    }
    void shutdown() override {}

    std::vector<request_seen> for_import(std::string const& id) const {
        std::vector<request_seen> out;
        for (auto const& r : requests)
            if (r.import_id == id) out.push_back(r);
        return out;
    }

private:
    virtual_clock& clock_;
    asio::any_io_executor ex_;
};

std::size_t count_status(std::vector<request_seen> const& reqs, int status) {
    return static_cast<std::size_t>(
        std::count_if(reqs.begin(), reqs.end(), [&](auto const& r) { return r.status == status; }));
}

/// Requests in [from, until) after t0.
std::size_t count_between(std::vector<request_seen> const& reqs, milliseconds from, milliseconds until) {
    return static_cast<std::size_t>(std::count_if(reqs.begin(), reqs.end(), [&](auto const& r) {
        return r.at >= t0 + from && r.at < t0 + until;
    }));
}


// ---- the poller on virtual time ----------------------------------------------

struct poller_harness {
    asio::io_context ioc;
    std::shared_ptr<virtual_clock> clock = std::make_shared<virtual_clock>(t0);
    std::shared_ptr<fake_launchdarkly> ld = std::make_shared<fake_launchdarkly>(*clock, ioc.get_executor());
    log_capture logs{spdlog::level::trace};
    daemon::metrics counters;
    std::vector<core::event> events;
    /// What the state store answers (null: every commit succeeds).
    std::function<core::expected<void>(daemon::watch_slot const&)> store;
    /// Commits wait until release_commits() (import ids in `held`, in order).
    bool hold_commits = false;
    std::vector<std::string> held;
    std::vector<asio::steady_timer*> releases;
    /// Completes every commit held so far (each then answers as `store` says).
    void release_commits() {
        for (auto* r : std::vector(releases)) r->cancel();
    }
    std::vector<std::string> committed;       // event summaries committed, in order
    /// The Import the store holds per watch (key path): the last one committed.
    std::map<std::string, std::string> imports;
    /// What reading a stored Import answers (null: `imports`).
    std::function<core::expected<std::string>(daemon::watch_slot const&)> read_import;
    std::vector<net::client_settings> connects;
    daemon::poller_settings settings;
    std::unique_ptr<daemon::poller> poller;

    poller_harness() {
        settings.launchdarkly.base_url = "https://ld.test";
        settings.launchdarkly.max_connections = 4;
        settings.launchdarkly.max_requests_per_second = 0;
        settings.polling.interval = 100ms;
        settings.polling.jitter = 0;
        settings.polling.backoff = {100ms, 1s, 2.0};
        settings.token = "api-good";
        daemon::poller_dependencies d;
        d.connect = [this](net::client_settings const& s) -> core::expected<std::shared_ptr<net::transport>> {
            connects.push_back(s);
            return std::shared_ptr<net::transport>(ld);
        };
        d.time = clock;
        d.random = std::make_shared<core::prng>(7);
        auto commit = [this](daemon::watch_slot const& slot,
                             core::poll_decision const& decision) -> asio::awaitable<core::expected<void>> {
            if (hold_commits) {
                // Like the state store's group commit: held until released.
                held.push_back(slot.config.key.import_id);
                asio::steady_timer release(ioc, asio::steady_timer::time_point::max());
                releases.push_back(&release);
                co_await release.async_wait(asio::as_tuple(asio::use_awaitable));
                std::erase(releases, &release);
            }
            if (store)
                if (auto r = store(slot); !r) co_return r;
            for (auto const& e : decision.events) committed.push_back(e.summary);
            if (decision.import) imports[slot.config.key.path()] = *decision.import;
            co_return core::expected<void>{};
        };
        d.stored_import = [this](daemon::watch_slot const& slot) -> core::expected<std::string> {
            if (read_import) return read_import(slot);
            auto it = imports.find(slot.config.key.path());
            return it == imports.end() ? std::string() : it->second;
        };
        auto publish = [this](daemon::watch_slot const&, std::vector<core::event> const& evs) {
            for (auto const& e : evs) {
                events.push_back(e);
                logs.out << "event " << e.summary << "\n";
            }
        };
        poller = std::make_unique<daemon::poller>(ioc.get_executor(), counters, commit, publish, d);
    }

    ~poller_harness() {
        poller->stop();
        clock->run_for(ioc, 1h);
        poller.reset();
        clock->run_for(ioc, 1h);
    }

    static std::vector<core::watch_config> watches_for(std::vector<std::string> const& ids) {
        std::vector<core::watch_config> out;
        for (auto const& id : ids) {
            core::watch_config w;
            w.key = {"p", "e", "s", id};
            w.name = id;
            out.push_back(std::move(w));
        }
        return out;
    }

    core::expected<void> configure(std::vector<std::string> const& ids,
                                   std::map<std::string, core::watch_state> const& stored = {}) {
        return poller->configure(settings, watches_for(ids), [&](std::vector<std::string> const&) { return stored; });
    }

    void start(std::vector<std::string> const& ids) {
        auto r = configure(ids);
        BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error()));
        asio::co_spawn(ioc, poller->run(), daemon::log_on_failure("poller"));
    }

    bool run_for(milliseconds d, std::function<bool()> const& done = {}) { return clock->run_for(ioc, d, done); }
    std::string log() const { return logs.out.str(); }
    daemon::watch_slot const& watch(std::string const& id) const {
        auto const& all = poller->watches();
        auto it = std::find_if(all.begin(), all.end(), [&](auto const& s) { return s.config.key.import_id == id; });
        BOOST_TEST_REQUIRE((it != all.end()), "no watch " << id);
        return *it;
    }
};

bool during(request_seen const& r, milliseconds from, milliseconds until) {
    return r.at >= t0 + from && r.at < t0 + until;
}

} // namespace

// ---- failure classes and backoff ----------------------------------------------

// 5xx: that watch alone backs off (full jitter, growing up to backoff.max), is
// never failed, and its first good poll carries on where it was. The repeated
// error is logged once (the throttle allows one line a minute).
BOOST_AUTO_TEST_CASE(server_errors_back_off_that_watch_only_and_recover) {
    poller_harness h;
    h.settings.polling.backoff = {200ms, 2s, 2.0};
    h.ld->answer = [](request_seen const& r) {
        if (r.import_id == "healthy") return import_reply("healthy", "in_progress");
        if (during(r, 1s, 5s)) return error_reply(503, "internal_server_error", "Simulated server error");
        auto const status = r.at < t0 + 1s ? "preparing" : r.at < t0 + 6500ms ? "in_progress" : "complete";
        return import_reply("sick", status);
    };
    h.start({"sick", "healthy"});
    BOOST_TEST(h.run_for(30s, [&] { return h.poller->settled() || h.watch("sick").state.terminal(); }));
    auto const log = h.log();
    BOOST_TEST_INFO(log);

    auto const sick = h.ld->for_import("sick");
    auto const errors = count_status(sick, 503);
    BOOST_TEST_MESSAGE("sick: " << errors << " x 503, " << count_between(sick, 1s, 5s) << " requests in the 4 s window");
    BOOST_TEST(errors >= 3u);
    // Each wait after the n-th 503 in a row is within that step's ceiling:
    // 200, 400, 800, 1600, 2000, 2000… ms.
    int streak = 0;
    for (std::size_t i = 0; i + 1 < sick.size(); ++i) {
        if (sick[i].status != 503) {
            streak = 0;
            BOOST_TEST((sick[i + 1].at - sick[i].at).count() == 100);   // the interval
            continue;
        }
        auto const ceiling = core::backoff_ceiling(h.settings.polling.backoff, streak++);
        BOOST_TEST_CONTEXT("after 503 #" << streak) BOOST_TEST((sick[i + 1].at - sick[i].at) <= ceiling);
    }
    // Polling every 100 ms would make ~40 requests in those 4 s.
    BOOST_TEST(count_between(sick, 1s, 5s) <= 20u);
    // The other watch is not held back: every 100 ms throughout.
    BOOST_TEST(count_between(h.ld->for_import("healthy"), 1s, 5s) == 40u);

    BOOST_TEST(count_lines(log, "watch sick: HTTP 503 from LaunchDarkly") == 1u);
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
    BOOST_TEST(count_lines(log, " recovered ") == 0u);
    BOOST_TEST(count_lines(log, "sick status none -> preparing") == 1u);
    BOOST_TEST(count_lines(log, "sick status preparing -> in_progress") == 1u);
    BOOST_TEST(count_lines(log, "sick status in_progress -> complete") == 1u);
    // Terminal: the last request answered `complete`, and no more come.
    BOOST_TEST(sick.back().status == 200);
    BOOST_TEST(!h.poller->next_poll(h.watch("sick")).has_value());
    BOOST_TEST(h.counters.polls[static_cast<std::size_t>(core::poll_result::server_error)] == errors);
}

// 403, 404 and 400 fail just that watch (one watch.failed each), which is then
// polled at backoff.max and recovers on its own on the next good poll.
BOOST_AUTO_TEST_CASE(client_errors_fail_only_that_watch_and_it_recovers) {
    poller_harness h;
    struct expectation {
        char const* id;
        int status;
        char const* code;
        char const* reason;
    };
    std::vector<expectation> const cases{{"forbidden", 403, "forbidden", "forbidden"},
                                         {"missing", 404, "not_found", "not_found"},
                                         {"bad", 400, "invalid_request", "invalid_request"}};
    h.ld->answer = [&](request_seen const& r) {
        for (auto const& c : cases)
            if (r.import_id == c.id && during(r, 1s, 4s)) return error_reply(c.status, c.code, "Simulated");
        return import_reply(r.import_id, "in_progress");
    };
    h.start({"forbidden", "missing", "bad", "fine"});
    BOOST_TEST(h.run_for(30s, [&] { return count_lines(h.log(), " recovered (") >= 3; }));
    auto const log = h.log();
    BOOST_TEST_INFO(log);

    for (auto const& c : cases) {
        std::string const id = c.id;
        BOOST_TEST_CONTEXT(id) {
            auto const reqs = h.ld->for_import(id);
            BOOST_TEST(count_lines(log, id + " failed: " + c.reason + " (HTTP " + std::to_string(c.status)) == 1u);
            BOOST_TEST(count_lines(log, id + " failed: ") == 1u);
            BOOST_TEST(count_lines(log, id + " recovered (") == 1u);
            // Failed, it is polled at backoff.max (1 s): the 3 s window sees 3 or 4 polls, not 30.
            auto const rejected = count_status(reqs, c.status);
            BOOST_TEST((rejected >= 3u && rejected <= 4u), rejected << " rejected polls");
            for (std::size_t i = 0; i + 1 < reqs.size(); ++i)
                if (reqs[i].status == c.status) BOOST_TEST((reqs[i + 1].at - reqs[i].at).count() == 1000);
            auto const failed_at = log.find(id + " failed: ");
            auto const recovered_at = log.find(id + " recovered (");
            BOOST_TEST((failed_at != std::string::npos && recovered_at != std::string::npos && failed_at < recovered_at));
            BOOST_TEST(!h.watch(id).state.failure.has_value());
        }
    }
    BOOST_TEST(count_lines(log, "fine failed") == 0u);
    BOOST_TEST(count_status(h.ld->for_import("fine"), 200) == h.ld->for_import("fine").size());
    BOOST_TEST(count_lines(log, "rejected the API token") == 0u);
    BOOST_TEST(!h.poller->token_rejected());
}

// The poller keeps no Import text: a watch.failed carries the watch's last
// Import as the store gives it, read for that event only. A read that fails
// is a failed commit: nothing is published, and the next poll tries again.
BOOST_AUTO_TEST_CASE(a_failure_carries_the_import_read_from_the_store) {
    poller_harness h;
    h.ld->answer = [](request_seen const& r) {
        if (r.import_id == "gone" && r.at >= t0 + 1s) return error_reply(404, "not_found", "Simulated");
        return import_reply(r.import_id, "in_progress");
    };
    std::vector<std::string> reads;
    h.read_import = [&](daemon::watch_slot const& s) -> core::expected<std::string> {
        reads.push_back(s.config.name);
        if (reads.size() == 1) return core::fail("database is locked");
        return h.imports.at(s.config.key.path());
    };
    h.start({"gone", "fine"});
    BOOST_TEST(h.run_for(10s, [&] { return count_lines(h.log(), "gone failed") > 0; }));
    h.run_for(3s);
    BOOST_TEST_INFO(h.log());

    BOOST_TEST(reads == (std::vector<std::string>{"gone", "gone"}));
    BOOST_TEST(count_lines(h.log(), "state store: cannot commit watch gone: database is locked") == 1u);
    std::vector<core::event const*> gone;
    for (auto const& e : h.events)
        if (e.summary.starts_with("gone ")) gone.push_back(&e);
    BOOST_TEST_REQUIRE(gone.size() == 2u);   // status_changed, then watch.failed once
    BOOST_TEST(gone[1]->type == core::watch_failed_type);
    auto const tail = ",\"import\":" + h.imports.at("p/e/s/gone") + "}}";
    BOOST_TEST(gone[0]->body.ends_with(tail), gone[0]->body);
    BOOST_TEST(gone[1]->body.ends_with(tail), gone[1]->body);
    BOOST_TEST(h.watch("gone").state.failure.has_value());
    BOOST_TEST(h.watch("gone").state.has_import);
}

// Network errors and timeouts are backed off, logged once each (the kind said
// once: "timeout: reading response"), and never fail a watch.
BOOST_AUTO_TEST_CASE(network_errors_and_timeouts_back_off_and_never_fail) {
    poller_harness h;
    h.settings.polling.backoff = {100ms, 500ms, 2.0};
    std::map<std::string, int> left{{"often", 6}, {"slow", 2}};
    h.ld->answer = [&](request_seen const& r) -> core::http_outcome {
        if (r.at >= t0 + 1500ms && left[r.import_id] > 0) {
            --left[r.import_id];
            if (r.import_id == "often") return failure(core::failure_kind::network, "reading response: Connection reset by peer");
            return failure(core::failure_kind::timeout, "reading response");
        }
        return import_reply(r.import_id, "in_progress");
    };
    h.start({"often", "slow"});
    BOOST_TEST(h.run_for(30s, [&] {
        return left["often"] == 0 && left["slow"] == 0 && h.ld->for_import("often").back().status == 200 &&
               h.ld->for_import("slow").back().status == 200;
    }));
    auto const log = h.log();
    BOOST_TEST_INFO(log);
    BOOST_TEST(count_lines(log, "watch often: network: reading response: Connection reset by peer") == 1u);
    BOOST_TEST(count_lines(log, "watch slow: timeout: reading response") == 1u);
    BOOST_TEST(count_lines(log, "timeout: timeout") == 0u);
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
    // Backed off: six failures in a row take longer than six intervals.
    auto const often = h.ld->for_import("often");
    auto const first = std::find_if(often.begin(), often.end(), [](auto const& r) { return r.status == 0; });
    auto const last = std::find_if(often.rbegin(), often.rend(), [](auto const& r) { return r.status == 0; });
    BOOST_TEST(std::count_if(often.begin(), often.end(), [](auto const& r) { return r.status == 0; }) == 6);
    BOOST_TEST((last->at - first->at) <= 5 * milliseconds{500});
    BOOST_TEST(h.counters.polls[static_cast<std::size_t>(core::poll_result::network_error)] == 8u);
}

// Malformed JSON and oversized bodies are invalid responses: the 5th in a row
// fails the watch (invalid_response), the next good poll recovers it. Four in
// a row, a success, four more: never failed.
BOOST_AUTO_TEST_CASE(five_invalid_responses_in_a_row_fail_a_watch) {
    poller_harness h;
    std::map<std::string, int> sent;
    h.ld->answer = [&](request_seen const& r) -> core::http_outcome {
        int const n = sent[r.import_id]++;
        bool bad = false;
        if (r.import_id == "malformed" || r.import_id == "oversized") bad = n >= 3 && n < 8;
        if (r.import_id == "streaky") bad = (n >= 3 && n < 7) || (n >= 8 && n < 12);
        if (!bad) return import_reply(r.import_id, "in_progress");
        if (r.import_id == "oversized")
            return failure(core::failure_kind::invalid_response, "response body exceeds 1048576 bytes");
        core::http_reply reply;
        reply.status = 200;
        reply.body = "{\"status\": \"in_progress\", ";
        return reply;
    };
    h.start({"malformed", "oversized", "streaky"});
    BOOST_TEST(h.run_for(60s, [&] {
        return count_lines(h.log(), "malformed recovered (") == 1 && count_lines(h.log(), "oversized recovered (") == 1 &&
               sent["streaky"] > 13;
    }));
    auto const log = h.log();
    BOOST_TEST_INFO(log);
    for (std::string const id : {"malformed", "oversized"}) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(count_lines(log, id + " failed: invalid_response") == 1u);
            BOOST_TEST(count_lines(log, id + " recovered (") == 1u);
            BOOST_TEST(count_lines(log, "watch " + id + ": invalid response: ") == 1u);
            auto const failed_at = log.find(id + " failed: ");
            auto const recovered_at = log.find(id + " recovered (");
            BOOST_TEST((failed_at != std::string::npos && recovered_at != std::string::npos && failed_at < recovered_at));
        }
    }
    BOOST_TEST(count_lines(log, "watch oversized: invalid response: response body exceeds") == 1u);
    BOOST_TEST(count_lines(log, "streaky failed: ") == 0u);
    BOOST_TEST(count_lines(log, "unexpectedly") == 0u);
}

// An unknown status is kept verbatim (an event), warned about once however
// often it is seen, and treated as non-terminal.
BOOST_AUTO_TEST_CASE(unknown_status_is_kept_warned_once_and_not_terminal) {
    poller_harness h;
    h.ld->answer = [](request_seen const& r) {
        return import_reply("odd", during(r, 1s, 2500ms) ? "mystery_status" : "in_progress");
    };
    h.start({"odd"});
    h.run_for(3s);
    auto const log = h.log();
    BOOST_TEST_INFO(log);
    BOOST_TEST(count_lines(log, "unknown import status \"mystery_status\"") == 1u);
    BOOST_TEST(count_lines(log, "odd status in_progress -> mystery_status") == 1u);
    BOOST_TEST(count_lines(log, "odd status mystery_status -> in_progress") == 1u);
    // Polled on at the interval while it was unknown: 15 polls in 1.5 s.
    BOOST_TEST(count_between(h.ld->for_import("odd"), 1s, 2500ms) == 15u);
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
}

// stall_after: importwatch.import.stalled once per status, however many polls
// see it unchanged.
BOOST_AUTO_TEST_CASE(stalled_once_per_status) {
    poller_harness h;
    h.settings.polling.stall_after.fallback = 1s;
    h.ld->answer = [](request_seen const& r) {
        return import_reply("sleepy", r.at < t0 + 2500ms ? "in_progress" : "ready");
    };
    h.start({"sleepy"});
    h.run_for(5s);
    auto const log = h.log();
    BOOST_TEST_INFO(log);
    BOOST_TEST(h.ld->requests.size() >= 50u);
    BOOST_TEST(count_lines(log, "sleepy stalled in in_progress") == 1u);
    BOOST_TEST(count_lines(log, "sleepy stalled in ready") == 1u);
}

// ---- 401 and the token source ---------------------------------------------------

// One 401 says the token is bad: every other watch is marked failed at once
// (not only when its own poll is rejected) and waits backoff.max; each
// recovers on its own next good poll. One error line; terminal watches are
// left alone.
BOOST_AUTO_TEST_CASE(one_unauthorized_answer_fails_every_watch) {
    poller_harness h;
    h.settings.launchdarkly.max_connections = 1;
    h.settings.polling.interval = 200ms;
    h.settings.polling.backoff = {100ms, 1500ms, 2.0};
    bool rejected_once = false;
    h.ld->answer = [&](request_seen const& r) {
        if (r.import_id == "done") return import_reply("done", "complete");
        if (r.import_id == "a" && r.at >= t0 + 1s && !rejected_once) {
            rejected_once = true;
            return error_reply(401, "unauthorized", "Invalid access token");
        }
        return import_reply(r.import_id, "in_progress");
    };
    h.start({"a", "b", "c", "done"});
    BOOST_TEST(h.run_for(20s, [&] { return count_lines(h.log(), " recovered (") >= 3; }));
    auto const log = h.log();
    BOOST_TEST_INFO(log);

    BOOST_REQUIRE_EQUAL(count_status(h.ld->requests, 401), 1u);
    auto const rejected_at = std::find_if(h.ld->requests.begin(), h.ld->requests.end(), [](auto const& r) {
                                 return r.status == 401;
                             })->at;
    for (std::string const id : {"a", "b", "c"}) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(count_lines(log, id + " failed: unauthorized (HTTP 401") == 1u);
            BOOST_TEST(count_lines(log, id + " recovered (") == 1u);
            // Each waits backoff.max (1.5 s) after the 401.
            auto const reqs = h.ld->for_import(id);
            auto const next = std::find_if(reqs.begin(), reqs.end(), [&](auto const& r) { return r.at > rejected_at; });
            BOOST_REQUIRE(next != reqs.end());
            BOOST_TEST((next->at - rejected_at) >= milliseconds{1500});
        }
    }
    BOOST_TEST(count_lines(log, "done failed") == 0u);   // terminal: nothing to fail
    BOOST_TEST(count_lines(log, "rejected the API token (HTTP 401)") == 1u);
    BOOST_TEST(count_lines(log, "error ") == 1u);
    BOOST_TEST(!h.poller->token_rejected());   // polls succeeded since
}

// 401 with a token_file: the token is read again after the 401, every watch is
// failed once, polling goes on at backoff.max with the bad token, and the
// rotated token recovers every watch without a restart. The token never
// reaches a log line or an event.
BOOST_AUTO_TEST_CASE(unauthorized_then_a_rotated_token_file_recovers) {
    poller_harness h;
    temp_dir dir;
    std::string const good = "api-good-8d1f0c2a7e";
    std::string const bad = "api-bad-5b9e44c1d3";
    auto const token_file = dir.write("token", bad + "\n");
    h.settings.launchdarkly.token_file = token_file;
    h.settings.token = bad;
    h.ld->answer = [&](request_seen const& r) {
        if (r.token != good) return error_reply(401, "unauthorized", "Invalid access token");
        return import_reply(r.import_id, "in_progress");
    };
    std::vector<std::string> const ids{"a", "b", "c", "d", "e"};
    h.start(ids);
    h.run_for(3500ms);
    BOOST_TEST(h.poller->token_rejected());
    auto const rejected = h.ld->requests.size();
    BOOST_TEST(count_status(h.ld->requests, 401) == rejected);
    // Every watch failed at the first 401; then each is polled once per
    // backoff.max (1 s): 4 or 5 requests each in 3.5 s, not 35.
    BOOST_TEST(rejected <= 20u);
    for (auto const& id : ids) {
        auto const reqs = h.ld->for_import(id);
        BOOST_TEST(reqs.size() >= 3u);
        for (std::size_t i = 0; i + 1 < reqs.size(); ++i) BOOST_TEST((reqs[i + 1].at - reqs[i].at).count() == 1000);
    }
    auto const log_401 = h.log();

    dir.write("token", good + "\n");
    BOOST_TEST(h.run_for(5s, [&] { return count_lines(h.log(), " recovered (") >= 5; }));
    auto const log = h.log();
    BOOST_TEST_INFO(log);
    for (auto const& id : ids) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(count_lines(log, id + " failed: unauthorized (HTTP 401") == 1u);
            BOOST_TEST(count_lines(log, id + " recovered (") == 1u);
            BOOST_TEST(h.ld->for_import(id).back().token == good);
        }
    }
    BOOST_TEST(count_lines(log, "error ") == 1u);
    BOOST_TEST(count_lines(log, "rejected the API token (HTTP 401)") == 1u);
    BOOST_TEST(count_lines(log, "re-read the API token after HTTP 401") == 1u);
    BOOST_TEST(count_lines(log_401, "HTTP 401") == 5u + 1u);   // the failed events and the error line
    BOOST_TEST(count_lines(log, "HTTP 401 from LaunchDarkly") == 0u);
    BOOST_TEST(log.find(bad) == std::string::npos);
    BOOST_TEST(log.find(good) == std::string::npos);
    for (auto const& e : h.events) BOOST_TEST((e.body.find(bad) == std::string::npos && e.body.find(good) == std::string::npos));
    BOOST_TEST(!h.poller->token_rejected());
}

// A 401 answering a request sent with a token replaced since (read again
// after another 401, or a reload) says nothing about the current token: it
// does not fail the watches that recovered, and that watch is polled again at once.
BOOST_AUTO_TEST_CASE(a_401_for_an_old_token_does_not_fail_watches) {
    poller_harness h;
    h.ld->latency = 300ms;   // polls overlap the reload
    h.settings.token = "api-old";
    h.ld->answer = [&](request_seen const& r) {
        if (r.token != "api-new") return error_reply(401, "unauthorized", "Invalid access token");
        return import_reply(r.import_id, "in_progress");
    };
    h.start({"a", "b"});
    h.run_for(100ms);   // both polls are in flight with the old token
    BOOST_REQUIRE_EQUAL(h.ld->in_flight, 2u);
    h.settings.token = "api-new";   // a reload with a new token
    BOOST_REQUIRE(h.configure({"a", "b"}));
    h.run_for(1s);
    auto const log = h.log();
    BOOST_TEST_INFO(log);
    // Both old-token polls came back 401, neither failed anything; each watch
    // was polled again at once with the new token.
    BOOST_TEST(count_status(h.ld->requests, 401) == 2u);
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
    BOOST_TEST(count_lines(log, "rejected the API token") == 0u);
    BOOST_TEST(!h.poller->token_rejected());
    for (std::string const id : {"a", "b"}) {
        auto const reqs = h.ld->for_import(id);
        BOOST_REQUIRE(reqs.size() >= 2u);
        BOOST_TEST(reqs[1].token == "api-new");
        BOOST_TEST((reqs[1].at - reqs[0].at).count() == 300);   // re-sent when the stale 401 came back
    }
    BOOST_TEST(h.counters.polls[static_cast<std::size_t>(core::poll_result::client_error)] == 0u);
}

// ---- rate limits ------------------------------------------------------------------

// A 429 storm over 1,000 watches: every 429 holds every request until
// Retry-After (nothing but polls already in flight reaches LaunchDarkly), the
// requests resume spread over up to a second after it, one line per pause, no
// watch fails.
BOOST_AUTO_TEST_CASE(storm_of_429_pauses_every_watch_until_retry_after) {
    poller_harness h;
    h.ld->latency = 20ms;
    std::vector<std::string> ids;
    for (int i = 0; i < 1000; ++i) ids.push_back("imp-" + std::to_string(i));
    h.ld->answer = [](request_seen const& r) {
        if (during(r, 3s, 6s)) {
            auto o = too_many_requests();
            set_header(o, "Retry-After", "1");
            return o;
        }
        return import_reply(r.import_id, "in_progress");
    };
    h.start(ids);
    h.run_for(10s);
    auto const log = h.log();
    auto const& reqs = h.ld->requests;
    std::vector<sys_ms> answered_429;   // when each 429 reached the poller
    for (auto const& r : reqs)
        if (r.status == 429) answered_429.push_back(r.at + h.ld->latency);
    BOOST_TEST_MESSAGE(reqs.size() << " requests, " << answered_429.size() << " x 429");
    BOOST_TEST_REQUIRE(answered_429.size() >= 2u);
    BOOST_TEST(count_between(reqs, 0ms, 3s) >= 500u);   // hammering before the storm
    // During each pause only what was in flight arrives: at most max_connections.
    for (auto const at : answered_429) {
        auto const inside = std::count_if(reqs.begin(), reqs.end(), [&](auto const& r) {
            return r.at > at && r.at < at + 1s;
        });
        BOOST_TEST(inside <= 4);
    }
    // After the last 429 of a burst, the first request comes no earlier than
    // Retry-After, at a jittered moment within the resume spread.
    std::vector<milliseconds> offsets;
    for (auto const at : answered_429) {
        auto next = std::find_if(reqs.begin(), reqs.end(), [&](auto const& r) { return r.at >= at + 1s; });
        if (next != reqs.end() && std::none_of(answered_429.begin(), answered_429.end(), [&](sys_ms a) {
                return a > at && a < next->at;
            }))
            offsets.push_back(next->at - (at + 1s));
    }
    BOOST_TEST_REQUIRE(offsets.size() >= 2u);
    for (auto o : offsets) BOOST_TEST((o >= milliseconds{0} && o <= core::resume_spread));
    BOOST_TEST(*std::max_element(offsets.begin(), offsets.end()) > milliseconds{30});
    // Polling resumed after the storm, over many watches.
    BOOST_TEST(count_status(reqs, 200) > 1000u);
    BOOST_TEST(count_between(reqs, 7500ms, 10s) >= 100u);
    auto const pause_lines = count_lines(log, "rate limited by LaunchDarkly (HTTP 429)");
    BOOST_TEST(pause_lines >= 2u);
    BOOST_TEST(pause_lines <= offsets.size() + 1);
    BOOST_TEST(h.counters.rate_limit_pauses == answered_429.size());
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
    BOOST_TEST(h.ld->most_in_flight <= 4u);
}

// A 200 saying X-Ratelimit-Route-Remaining: 0 holds every request until
// X-Ratelimit-Reset; a reset that is already due holds nothing.
BOOST_AUTO_TEST_CASE(remaining_zero_holds_every_request_until_the_reset) {
    poller_harness h;
    h.settings.polling.interval = 50ms;
    int held = 0;
    std::optional<sys_ms> first_hold, second_hold;
    h.ld->answer = [&](request_seen const& r) {
        auto o = import_reply(r.import_id, "in_progress");
        if ((r.at >= t0 + 1500ms && !first_hold) || (r.at >= t0 + 4500ms && !second_hold)) {
            (first_hold ? second_hold : first_hold) = r.at;
            ++held;
            set_header(o, "X-Ratelimit-Route-Remaining", "0");
            set_header(o, "X-Ratelimit-Reset", epoch_ms(r.at + (second_hold ? 0ms : 1500ms)));
        }
        return o;
    };
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) ids.push_back("imp-" + std::to_string(i));
    h.start(ids);
    h.run_for(6500ms);
    BOOST_REQUIRE_EQUAL(held, 2);
    auto const& reqs = h.ld->requests;
    // The 1.5 s hold: nothing reaches LaunchDarkly (answers are instant: nothing is in flight).
    BOOST_TEST(count_between(reqs, *first_hold - t0 + 1ms, *first_hold - t0 + 1500ms) == 0u);
    BOOST_TEST(count_between(reqs, *first_hold - t0 + 1500ms, *second_hold - t0) > 0u);
    // The reset already due: polling goes on.
    BOOST_TEST(count_between(reqs, *second_hold - t0 + 1ms, *second_hold - t0 + 800ms) > 20u);
    BOOST_TEST(count_lines(h.log(), "rate limited by LaunchDarkly (HTTP 200)") == 1u);
    BOOST_TEST(h.poller->paused_until(t0).has_value());
    BOOST_TEST(!h.poller->paused_until(h.clock->now()).has_value());
}

// 429 variants: X-Ratelimit-Reset alone (longer than any backoff), and a
// Retry-After given as an HTTP-date. Both pause the whole process until then.
BOOST_AUTO_TEST_CASE(reset_header_and_http_date_retry_after_are_honoured) {
    poller_harness h;
    h.settings.polling.interval = 50ms;
    h.settings.polling.backoff = {100ms, 500ms, 2.0};
    std::vector<sys_ms> limited, ends;   // each 429, and the end its headers give
    std::vector<sys_ms> pauses;
    h.poller->on_pause([&](sys_ms until) { pauses.push_back(until); });
    h.ld->answer = [&](request_seen const& r) {
        if ((r.at >= t0 + 1500ms && limited.empty()) || (r.at >= t0 + 6s && limited.size() == 1)) {
            limited.push_back(r.at);
            auto o = too_many_requests();
            set_header(o, "Date", core::format_http_date(r.at));
            if (limited.size() == 1) {
                set_header(o, "X-Ratelimit-Reset", epoch_ms(r.at + 2s));
                ends.push_back(r.at + 2s);
            } else {
                // HTTP dates have whole seconds: 1 to 2 s away, still longer than any backoff (500 ms).
                set_header(o, "Retry-After", core::format_http_date(r.at + 2s));
                ends.push_back(*core::parse_http_date(core::format_http_date(r.at + 2s)));
            }
            return o;
        }
        return import_reply(r.import_id, "in_progress");
    };
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) ids.push_back("imp-" + std::to_string(i));
    h.start(ids);
    h.run_for(10s);
    BOOST_REQUIRE_EQUAL(limited.size(), 2u);
    BOOST_REQUIRE_EQUAL(pauses.size(), 2u);
    auto const& reqs = h.ld->requests;
    for (std::size_t i = 0; i < 2; ++i) {
        BOOST_TEST_CONTEXT("429 #" << i) {
            BOOST_TEST(pauses[i] == ends[i]);
            BOOST_TEST(count_between(reqs, limited[i] - t0 + 1ms, ends[i] - t0) == 0u);
            BOOST_TEST(count_between(reqs, ends[i] - t0, ends[i] - t0 + core::resume_spread + 1ms) > 0u);
        }
    }
}

// max_requests_per_second is a process-wide token bucket (burst: one second's
// worth), and max_connections bounds the requests in flight.
BOOST_AUTO_TEST_CASE(request_rate_and_connections_are_bounded_process_wide) {
    std::vector<std::string> ids;
    for (int i = 0; i < 50; ++i) ids.push_back("imp-" + std::to_string(i));
    {
        poller_harness h;
        h.settings.launchdarkly.max_requests_per_second = 5;
        h.settings.polling.interval = 10ms;
        h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
        h.start(ids);
        h.run_for(3s);
        auto const n = h.ld->requests.size();
        BOOST_TEST_MESSAGE(n << " requests in 3 s at 5/s");
        // Burst of 5, then 5 per second.
        BOOST_TEST(n <= 5u + 15u + 1u);
        BOOST_TEST(n >= 15u);
    }
    {
        poller_harness h;
        h.settings.launchdarkly.max_connections = 2;
        h.settings.polling.interval = 10ms;
        h.ld->latency = 600ms;
        h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
        h.start({ids.begin(), ids.begin() + 10});
        h.run_for(5900ms);
        BOOST_TEST(h.ld->most_in_flight == 2u);
        // Two connections, 600 ms an answer: 2 requests per 600 ms.
        BOOST_TEST(h.ld->requests.size() == 20u);
    }
}

// Polls due close together start on one wake-up of the loop: 400 watches at
// 10 s ± 20 % (40 polls a second) wake it about ten times a second, not
// forty. A poll starts at most 100 ms after its due time and never before it
// (jitter never shortens an interval below 8 s).
BOOST_AUTO_TEST_CASE(polls_due_close_together_share_a_wake_up) {
    poller_harness h;
    h.settings.polling.interval = 10s;
    h.settings.polling.jitter = 0.2;
    h.settings.launchdarkly.max_connections = 512;
    h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
    std::vector<std::string> ids;
    for (int i = 0; i < 400; ++i) ids.push_back("imp-" + std::to_string(i));
    h.start(ids);
    h.run_for(60s);

    std::set<sys_ms> instants;
    std::map<std::string, std::vector<sys_ms>> polls;
    for (auto const& r : h.ld->requests) {
        instants.insert(r.at);
        polls[r.import_id].push_back(r.at);
    }
    auto const n = h.ld->requests.size();
    BOOST_TEST_MESSAGE(n << " polls at " << instants.size() << " instants");
    BOOST_TEST(n >= 400u * 5u);
    BOOST_TEST(instants.size() * 3 <= n);
    for (auto const& [id, at] : polls) {
        for (std::size_t i = 1; i < at.size(); ++i) {
            auto const gap = at[i] - at[i - 1];
            BOOST_TEST(gap >= 8000ms, id << " polled again after " << gap.count() << " ms");
            BOOST_TEST(gap <= 12100ms, id << " polled again after " << gap.count() << " ms");
        }
    }
}

// A short interval is kept: waiting for company is at most 1 % of it, so a
// watch at 20 ms is polled every 20 ms, not every 100 ms.
BOOST_AUTO_TEST_CASE(a_short_interval_is_not_stretched_by_coalescing) {
    poller_harness h;
    h.settings.polling.interval = 20ms;
    h.settings.polling.jitter = 0;
    h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
    h.start({"fast"});
    h.run_for(2s);
    auto const& seen = h.ld->requests;
    BOOST_TEST_REQUIRE(seen.size() >= 2u);
    for (std::size_t i = 1; i < seen.size(); ++i) BOOST_TEST((seen[i].at - seen[i - 1].at) == 20ms);
    BOOST_TEST(seen.size() >= 95u);
}

// ---- commits, reloads --------------------------------------------------------------

// A commit the state store refuses: nothing of the decision is published, the
// watch keeps its old state, the poll is repeated within
// core::commit_retry_time, the daemon says it is not ready (commit_failing)
// and logs it once; the first commit that works publishes the events once.
BOOST_AUTO_TEST_CASE(a_failed_commit_publishes_nothing_and_is_retried) {
    poller_harness h;
    bool store_full = true;
    h.store = [&](daemon::watch_slot const&) -> core::expected<void> {
        if (store_full) return core::fail("database or disk is full");
        return {};
    };
    h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
    h.start({"a"});
    h.run_for(5s);
    auto const reqs = h.ld->requests;
    BOOST_TEST(h.poller->commit_failing());
    BOOST_TEST(h.events.empty());
    BOOST_TEST(!h.watch("a").state.status.has_value());
    BOOST_TEST(*h.watch("a").last_error == "state store: database or disk is full");
    // Repeated every 1 s to 1.1 s (a first-step backoff of 100 ms, plus a second).
    BOOST_TEST((reqs.size() >= 5u && reqs.size() <= 6u));
    for (std::size_t i = 0; i + 1 < reqs.size(); ++i) {
        auto const gap = reqs[i + 1].at - reqs[i].at;
        BOOST_TEST((gap >= milliseconds{1000} && gap <= milliseconds{1100}));
    }
    BOOST_TEST(count_lines(h.log(), "state store: cannot commit watch a: database or disk is full") == 1u);

    store_full = false;
    h.run_for(2s);
    BOOST_TEST(!h.poller->commit_failing());
    BOOST_REQUIRE_EQUAL(h.events.size(), 1u);
    BOOST_TEST(h.events[0].summary.find("a status none -> in_progress") == 0u);
    BOOST_TEST(h.committed.size() == 1u);
    BOOST_TEST(*h.watch("a").state.status == "in_progress");
}

// Polls whose commits are pending together (a group of the state store's
// group commit): none of them is published, changes its state or is polled
// again until its commit completed; then each is, once.
BOOST_AUTO_TEST_CASE(a_watch_is_published_and_polled_again_only_after_its_commit) {
    poller_harness h;
    h.hold_commits = true;
    h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
    h.start({"a", "b", "c"});
    h.run_for(2s);   // 20 intervals
    auto polls_of = [&](std::string const& id) {
        return std::count_if(h.ld->requests.begin(), h.ld->requests.end(),
                             [&](auto const& r) { return r.import_id == id; });
    };
    BOOST_TEST(h.held.size() == 3u);
    for (auto const* id : {"a", "b", "c"}) {
        BOOST_TEST_CONTEXT("watch " << id) {
            BOOST_TEST(polls_of(id) == 1);
            BOOST_TEST(!h.watch(id).state.status.has_value());
            BOOST_TEST(!h.poller->next_poll(h.watch(id)).has_value());
        }
    }
    BOOST_TEST(h.events.empty());
    BOOST_TEST(h.committed.empty());
    BOOST_TEST(!h.poller->settled());

    h.hold_commits = false;
    h.release_commits();
    h.run_for(1s);
    BOOST_TEST(h.committed.size() == 3u);
    BOOST_REQUIRE_EQUAL(h.events.size(), 3u);
    for (auto const* id : {"a", "b", "c"}) {
        BOOST_TEST_CONTEXT("watch " << id) {
            BOOST_TEST(count_lines(h.log(), std::string(id) + " status none -> in_progress") == 1u);
            BOOST_TEST(*h.watch(id).state.status == "in_progress");
            BOOST_TEST(polls_of(id) >= 5);   // polled every 100 ms again
        }
    }
}

// A group that fails as a whole: not one of its polls is published or
// changes its watch's state; each is retried like any failed commit, and
// published once when a commit works.
BOOST_AUTO_TEST_CASE(a_failed_group_publishes_none_of_its_polls) {
    poller_harness h;
    h.hold_commits = true;
    bool store_full = true;
    h.store = [&](daemon::watch_slot const&) -> core::expected<void> {
        if (store_full) return core::fail("database or disk is full");
        return {};
    };
    h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
    h.start({"a", "b", "c"});
    h.run_for(500ms);
    BOOST_TEST_REQUIRE(h.held.size() == 3u);
    h.hold_commits = false;
    h.release_commits();
    h.run_for(50ms);
    BOOST_TEST(h.events.empty());
    BOOST_TEST(h.committed.empty());
    BOOST_TEST(h.poller->commit_failing());
    for (auto const* id : {"a", "b", "c"}) {
        BOOST_TEST_CONTEXT("watch " << id) {
            BOOST_TEST(!h.watch(id).state.status.has_value());
            BOOST_TEST(*h.watch(id).last_error == "state store: database or disk is full");
            BOOST_TEST(h.poller->next_poll(h.watch(id)).has_value());   // retried later
        }
    }

    store_full = false;
    h.run_for(3s);
    BOOST_TEST(!h.poller->commit_failing());
    BOOST_REQUIRE_EQUAL(h.events.size(), 3u);
    for (auto const* id : {"a", "b", "c"})
        BOOST_TEST(count_lines(h.log(), std::string(id) + " status none -> in_progress") == 1u);
}

// A reload that removes a watch while its commit is pending: the commit
// completes (its events are published: they are in the store), but the
// removed watch is not polled again; the kept one goes on.
BOOST_AUTO_TEST_CASE(a_watch_removed_while_its_commit_is_pending_is_not_polled_again) {
    poller_harness h;
    h.hold_commits = true;
    h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
    h.start({"kept", "gone"});
    h.run_for(500ms);
    BOOST_TEST_REQUIRE(h.held.size() == 2u);
    BOOST_TEST_REQUIRE(h.configure({"kept"}).has_value());
    h.hold_commits = false;
    h.release_commits();
    h.run_for(2s);
    auto polls_of = [&](std::string const& id) {
        return std::count_if(h.ld->requests.begin(), h.ld->requests.end(),
                             [&](auto const& r) { return r.import_id == id; });
    };
    BOOST_TEST(polls_of("gone") == 1);
    BOOST_TEST(polls_of("kept") >= 10);
    BOOST_TEST(count_lines(h.log(), "gone status none -> in_progress") == 1u);
    BOOST_TEST(count_lines(h.log(), "kept status none -> in_progress") == 1u);
}

// A reload rebuilds the connection pool only when the client settings change
// (compared whole): kept watches keep their schedule and state, new ones are
// polled at once, removed ones are not polled again.
BOOST_AUTO_TEST_CASE(reload_rebuilds_the_pool_only_when_client_settings_change) {
    poller_harness h;
    h.settings.polling.interval = 1s;
    h.ld->answer = [](request_seen const& r) { return import_reply(r.import_id, "in_progress"); };
    h.start({"a", "b"});
    h.run_for(500ms);
    BOOST_TEST(h.connects.size() == 1u);
    BOOST_TEST(h.connects[0].max_connections == 4u);
    BOOST_TEST(h.connects[0].origin.host == "ld.test");

    h.settings.polling.stall_after.fallback = 2h;   // polling settings alone: same pool
    BOOST_REQUIRE(h.configure({"a", "c"}));
    BOOST_TEST(h.connects.size() == 1u);
    h.run_for(100ms);
    BOOST_TEST(h.ld->for_import("c").size() == 1u);      // new: polled at once
    BOOST_TEST(h.ld->for_import("a").size() == 1u);      // kept: on its schedule
    BOOST_TEST(h.watch("b").removed);
    h.run_for(3s);
    BOOST_TEST(h.ld->for_import("b").size() == 1u);      // removed: never again
    BOOST_TEST(h.ld->for_import("a").size() == 4u);

    h.settings.launchdarkly.request_timeout = 3s;        // a client setting: a new pool
    BOOST_REQUIRE(h.configure({"a", "c"}));
    BOOST_TEST(h.connects.size() == 2u);
    BOOST_TEST(h.connects[1].timeout.count() == 3000);
    h.settings.launchdarkly.proxy = "http://proxy.test:3128";
    BOOST_REQUIRE(h.configure({"a", "c"}));
    BOOST_TEST(h.connects.size() == 3u);
}
