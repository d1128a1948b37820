// Rate limits (README, "Rate limits"), end to end: the importwatch binary polls the simulator
// (running in this process's io_context, pumped with run_until) and the tests
// assert what the *server* saw — when each request arrived — not only what
// the daemon logged.
//
// Timing assertions only ever bound how *early* a request may arrive (a slow
// machine makes requests later, never earlier) or how *many* may arrive in a
// window; none asserts speed.
#define BOOST_TEST_MODULE rate_limits
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"
#include "sim/simulator.hpp"

using namespace importwatch;
using namespace importwatch::testing;
using std::chrono::milliseconds;
using std::chrono::system_clock;

namespace {

using time_point = system_clock::time_point;

std::string import_id(int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "imp-%04d", i);
    return buf;
}

/// `n` imports p/e/s/imp-NNNN, in_progress forever, plus `faults` (YAML list items).
std::string many_imports(int n, std::string const& faults) {
    std::string y = "token: sim-token\nimports:\n";
    for (int i = 0; i < n; ++i)
        y += "  - { project: p, environment: e, segment: s, import_id: " + import_id(i) +
             ", steps: [{ status: in_progress }] }\n";
    if (!faults.empty()) y += "faults:\n" + faults;
    return y;
}

std::string many_watches(int n) {
    std::string y;
    for (int i = 0; i < n; ++i)
        y += "  - { project: p, environment: e, segment: s, import_id: " + import_id(i) + " }\n";
    return y;
}

long long ms_between(time_point a, time_point b) {
    return std::chrono::duration_cast<milliseconds>(b - a).count();
}

/// For each request matching `starts_pause`, the number of requests the
/// server saw after it and before it + `pause` - `margin`. Only requests
/// already in flight when the daemon got the answer may be among them.
std::size_t max_arrivals_within_pause(std::vector<sim::request_record> const& reqs,
                                      std::function<bool(sim::request_record const&)> const& starts_pause,
                                      milliseconds pause, milliseconds margin, std::size_t* pauses = nullptr) {
    std::size_t worst = 0, n = 0;
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        if (!starts_pause(reqs[i])) continue;
        ++n;
        auto const end = reqs[i].at + pause - margin;
        std::size_t inside = 0;
        for (std::size_t j = i + 1; j < reqs.size() && reqs[j].at < end; ++j) ++inside;
        worst = std::max(worst, inside);
    }
    if (pauses) *pauses = n;
    return worst;
}

constexpr std::size_t max_connections = 4;
// Slowness only ever delays requests; this margin only absorbs clock rounding.
constexpr milliseconds early_margin{100};

} // namespace

// The issue's "done means": a 429 storm over 1,000 watches. LD answers 429 to
// every request for 3 s (Retry-After: 1); the daemon polls as fast as it can
// (no rate cap, 100 ms interval, 4 connections).
BOOST_AUTO_TEST_CASE(storm_of_429_pauses_every_watch_until_retry_after) {
    constexpr int watches = 1000;
    constexpr milliseconds retry_after{1000};
    simulated_launchdarkly api(many_imports(watches, "  - { type: rate_limit, from: 3s, until: 6s, retry_after: 1s }\n"));
    auto const storm_end = system_clock::now() + 6s;   // sim time starts at start(), just before
    std::size_t ok_after_storm = 0;
    api.on_request = [&](sim::request_record const& r) {
        if (r.at > storm_end + 100ms && r.status == 200) ++ok_after_storm;
    };
    auto cfg = api.dir.write(
        "config.yaml",
        api.config({.watches = many_watches(watches),
                    .launchdarkly_extra = "  max_connections: " + std::to_string(max_connections) + "\n",
                    .max_requests_per_second = "0",
                    .polling = "  interval: 100ms\n  jitter: 0\n  backoff: { initial: 100ms, max: 1s, multiplier: 2 }\n"}));
    child_process daemon({"run", "--config", cfg}, token_env());
    // Run past the storm until polling has visibly resumed (or give up).
    run_until(api.ioc, [&] { return ok_after_storm >= 20 || !daemon.running(); }, 40s);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();

    auto const& reqs = api.server->requests();
    std::vector<std::size_t> limited;
    for (std::size_t i = 0; i < reqs.size(); ++i)
        if (reqs[i].status == 429) limited.push_back(i);
    BOOST_TEST_MESSAGE("requests: " << reqs.size() << ", 429s: " << limited.size()
                                    << ", 200s after the storm: " << ok_after_storm);
    BOOST_REQUIRE_MESSAGE(!limited.empty(), "the storm never hit the daemon\n" << log.substr(0, 4000));
    BOOST_REQUIRE_MESSAGE(limited.front() >= 50, "the daemon was not yet hammering when the storm began ("
                                                     << limited.front() << " requests before it)");
    // Three seconds of storm with a one-second Retry-After: at least two pauses.
    BOOST_TEST(limited.size() >= 2u);

    // During each pause the server sees only what was already in flight.
    std::size_t pauses = 0;
    auto const in_pause = max_arrivals_within_pause(
        reqs, [](auto const& r) { return r.status == 429; }, retry_after, early_margin, &pauses);
    BOOST_TEST_MESSAGE("most requests arriving within a pause: " << in_pause);
    BOOST_TEST(in_pause <= max_connections);

    // Resumption: after the last 429 of a burst, the first request comes no
    // earlier than Retry-After, at a jittered moment (the resume spread is up
    // to 1 s; without it the offset would always be a few ms).
    std::vector<long long> resume_offsets;
    std::optional<time_point> last_429;
    bool awaiting = false;
    for (auto const& r : reqs) {
        if (awaiting && r.at >= *last_429 + retry_after - early_margin) {
            resume_offsets.push_back(ms_between(*last_429 + retry_after, r.at));
            awaiting = false;
        }
        if (r.status == 429) last_429 = r.at, awaiting = true;
    }
    std::ostringstream offsets;
    for (auto o : resume_offsets) offsets << o << "ms ";
    BOOST_TEST_MESSAGE("resume offsets after Retry-After: " << offsets.str());
    BOOST_REQUIRE(resume_offsets.size() >= 2u);
    for (auto o : resume_offsets) BOOST_TEST(o >= -early_margin.count());
    BOOST_TEST(*std::max_element(resume_offsets.begin(), resume_offsets.end()) > 30);

    // Polling resumed after the storm, over many watches.
    BOOST_TEST(ok_after_storm >= 20u);
    // The 429 of in-flight polls extend the pause without a log line each.
    auto const pause_lines = count_lines(log, "rate limited by LaunchDarkly");
    BOOST_TEST(pause_lines >= 1u);
    BOOST_TEST(pause_lines <= resume_offsets.size() + 1);
    // Nothing failed because of a 429.
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
}

// A 200 saying X-Ratelimit-Route-Remaining: 0 holds every request until
// X-Ratelimit-Reset; a reset that is already due holds nothing.
BOOST_AUTO_TEST_CASE(remaining_zero_holds_every_request_until_the_reset) {
    constexpr int watches = 20;
    simulated_launchdarkly api(many_imports(watches, "  - { type: remaining_zero, from: 1500ms, count: 1, reset_in: 1500ms }\n"
                                            "  - { type: remaining_zero, from: 4500ms, count: 1, reset_in: 0s }\n"));
    auto cfg = api.dir.write(
        "config.yaml",
        api.config({.watches = many_watches(watches),
                    .launchdarkly_extra = "  max_connections: " + std::to_string(max_connections) + "\n",
                    .max_requests_per_second = "0",
                    .polling = "  interval: 50ms\n  jitter: 0\n  backoff: { initial: 100ms, max: 1s, multiplier: 2 }\n"}));
    child_process daemon({"run", "--config", cfg}, token_env());
    api.pump(6500ms);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const& reqs = api.server->requests();

    std::vector<std::size_t> zero;
    for (std::size_t i = 0; i < reqs.size(); ++i)
        if (reqs[i].fault == "remaining_zero") zero.push_back(i);
    BOOST_REQUIRE_EQUAL(zero.size(), 2u);
    BOOST_REQUIRE_MESSAGE(zero.front() >= 20, "the daemon was not polling before the hold");
    BOOST_TEST(reqs[zero[0]].status == 200);

    // The 1.5 s hold: only requests already in flight reach the server.
    auto const held = max_arrivals_within_pause(
        reqs, [&](auto const& r) { return &r == &reqs[zero[0]]; }, 1500ms, early_margin);
    BOOST_TEST_MESSAGE("requests arriving within the hold: " << held);
    BOOST_TEST(held <= max_connections);
    // ... and polling resumed after it.
    auto const resumed = std::count_if(reqs.begin() + static_cast<long>(zero[0]), reqs.begin() + static_cast<long>(zero[1]),
                                       [&](auto const& r) { return r.at >= reqs[zero[0]].at + 1500ms; });
    BOOST_TEST(resumed > 0);

    // The reset already due: polling goes on (it would otherwise stop for at
    // least the whole resume spread).
    auto const after = std::count_if(reqs.begin() + static_cast<long>(zero[1]) + 1, reqs.end(), [&](auto const& r) {
        return r.at < reqs[zero[1]].at + 800ms;
    });
    BOOST_TEST(after > static_cast<long>(max_connections));
    BOOST_TEST(count_lines(daemon.err(), "rate limited by LaunchDarkly (HTTP 200)") == 1u);
}

// 429 variants: X-Ratelimit-Reset alone (longer than any backoff), and a
// Retry-After given as an HTTP-date. Both pause the whole process.
BOOST_AUTO_TEST_CASE(reset_header_and_http_date_retry_after_are_honoured) {
    constexpr int watches = 20;
    simulated_launchdarkly api(many_imports(
        watches, "  - { type: rate_limit, from: 1500ms, count: 1, reset_in: 2s }\n"
                 "  - { type: rate_limit, from: 6s, count: 1, retry_after: 2s, retry_after_date: true }\n"));
    auto cfg = api.dir.write(
        "config.yaml",
        api.config({.watches = many_watches(watches),
                    .launchdarkly_extra = "  max_connections: " + std::to_string(max_connections) + "\n",
                    .max_requests_per_second = "0",
                    .polling = "  interval: 50ms\n  jitter: 0\n  backoff: { initial: 100ms, max: 500ms, multiplier: 2 }\n"}));
    child_process daemon({"run", "--config", cfg}, token_env());
    api.pump(1500ms);
    run_until(api.ioc, [&] {
        auto const& reqs = api.server->requests();
        return std::count_if(reqs.begin(), reqs.end(), [](auto const& r) { return r.status == 429; }) >= 2 &&
               reqs.back().at > std::find_if(reqs.rbegin(), reqs.rend(), [](auto const& r) {
                                    return r.status == 429;
                                })->at + 3s;
    }, 20s);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const& reqs = api.server->requests();
    std::vector<std::size_t> limited;
    for (std::size_t i = 0; i < reqs.size(); ++i)
        if (reqs[i].status == 429) limited.push_back(i);
    BOOST_REQUIRE_EQUAL(limited.size(), 2u);
    BOOST_REQUIRE(limited[0] >= 20u);

    for (auto i : limited) {
        auto const inside = max_arrivals_within_pause(
            reqs, [&](auto const& r) { return &r == &reqs[i]; }, 2000ms, early_margin);
        BOOST_TEST_MESSAGE("requests within the 2 s pause of 429 #" << i << ": " << inside);
        BOOST_TEST(inside <= max_connections);
        auto const resumed = std::count_if(reqs.begin() + static_cast<long>(i), reqs.end(),
                                           [&](auto const& r) { return r.at >= reqs[i].at + 2000ms; });
        BOOST_TEST(resumed > 0);
    }
}

// max_requests_per_second is a process-wide token bucket (burst: one second's
// worth), and max_connections bounds the requests in flight.
BOOST_AUTO_TEST_CASE(request_rate_and_connections_are_bounded_process_wide) {
    {
        simulated_launchdarkly api(many_imports(50, ""));
        auto cfg = api.dir.write("config.yaml",
                                 api.config({.watches = many_watches(50),
                                             .launchdarkly_extra = "  max_connections: 4\n",
                                             .max_requests_per_second = "5",
                                             .polling = "  interval: 10ms\n  jitter: 0\n"}));
        child_process daemon({"run", "--config", cfg}, token_env());
        run_until(api.ioc, [&] { return !api.server->requests().empty(); }, 15s);
        auto const first = api.server->requests().front().at;
        api.pump(3000ms);
        BOOST_TEST(api.stop(daemon) == 0);
        auto const& reqs = api.server->requests();
        auto const span_s = static_cast<double>(ms_between(first, reqs.back().at)) / 1000.0;
        BOOST_TEST_MESSAGE(reqs.size() << " requests in " << span_s << " s at 5/s");
        // Burst of 5, then 5 per second (+1 for rounding).
        BOOST_TEST(static_cast<double>(reqs.size()) <= 5.0 + 5.0 * span_s + 1.0);
        BOOST_TEST(reqs.size() >= 2u);
        // The start-up capacity warning says so.
        BOOST_TEST_INFO(daemon.err());
        BOOST_TEST(count_lines(daemon.err(), "50 watches at 10ms need 5000.0 requests/s but max_requests_per_second "
                                             "is 5: each watch will be polled about every 10s") == 1u);
    }
    {
        // Every answer takes 600 ms: a connection carries at most one request
        // per 600 ms, so no 500 ms window can see more than max_connections.
        simulated_launchdarkly api(many_imports(10, "  - { type: delay, delay: 600ms }\n"));
        auto cfg = api.dir.write("config.yaml",
                                 api.config({.watches = many_watches(10),
                                             .launchdarkly_extra = "  max_connections: 2\n",
                                             .max_requests_per_second = "0",
                                             .polling = "  interval: 10ms\n  jitter: 0\n"}));
        child_process daemon({"run", "--config", cfg}, token_env());
        run_until(api.ioc, [&] { return api.server->requests().size() >= 12; }, 30s);
        BOOST_TEST(api.stop(daemon) == 0);
        auto const& reqs = api.server->requests();
        BOOST_REQUIRE(reqs.size() >= 4u);
        std::size_t worst = 0;
        for (std::size_t i = 0; i < reqs.size(); ++i) {
            std::size_t n = 0;
            for (std::size_t j = i; j < reqs.size() && reqs[j].at < reqs[i].at + 500ms; ++j) ++n;
            worst = std::max(worst, n);
        }
        BOOST_TEST_MESSAGE("most arrivals within 500 ms: " << worst);
        BOOST_TEST(worst <= 2u);
    }
}

// `importwatch wait` behind a flaky server (30 % 5xx, some 429s) still exits 0
// once the import completes.
BOOST_AUTO_TEST_CASE(wait_succeeds_behind_a_flaky_server) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - project: p
    environment: e
    segment: s
    import_id: flaky
    steps:
      - { status: preparing, for: 1s }
      - { status: in_progress, for: 1500ms }
      - { status: complete }
faults:
  - { type: rate_limit, probability: 0.1, retry_after: 1s }
  - { type: server_error, status: 503, probability: 0.3 }
  - { type: server_error, status: 500, from: 500ms, until: 1200ms }
)");
    child_process p({"wait", "p/e/s/flaky", "--base-url", api.server->base_url(), "--ca-file", api.ca_file,
                     "--token-env", "SIM_TOKEN", "--interval", "100ms"},
                    token_env());
    auto rc = api.serve_until_exit(p, 60s);
    BOOST_TEST_INFO(p.out() + p.err());
    BOOST_REQUIRE(rc.has_value());
    BOOST_TEST(*rc == 0);
    BOOST_TEST(p.out().find("-> complete (p/e/s/flaky)") != std::string::npos);
    auto const& reqs = api.server->requests();
    auto const errors = std::count_if(reqs.begin(), reqs.end(), [](auto const& r) { return r.status >= 500; });
    BOOST_TEST_MESSAGE(reqs.size() << " requests, " << errors << " 5xx");
    BOOST_TEST(errors > 0);
    BOOST_TEST(reqs.back().status == 200);   // the last request saw the import complete
}
