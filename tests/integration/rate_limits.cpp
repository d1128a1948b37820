// Rate limits (README, "Rate limits"), end to end: the importwatch binary polls the simulator
// (running in this process's io_context, pumped with run_until) and the tests
// assert what the *server* saw — when each request arrived — not only what
// the daemon logged. One 429 pause per header kind and `wait` behind a flaky
// server keep the wiring covered; the storms, holds, the rate cap and the
// connection bound are asserted in-process on virtual time in
// tests/integration/poller.cpp.
//
// Timing assertions only ever bound how *early* a request may arrive (a slow
// machine makes requests later, never earlier) or how *many* may arrive in a
// window; none asserts speed.
#define BOOST_TEST_MODULE rate_limits
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>

#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"
#include "sim/simulator.hpp"

using namespace importwatch;
using namespace importwatch::testing;
using std::chrono::milliseconds;

namespace {

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

// 429 variants: X-Ratelimit-Reset alone (longer than any backoff), and a
// Retry-After given as an HTTP-date. Both pause the whole process.
BOOST_AUTO_TEST_CASE(reset_header_and_http_date_retry_after_are_honoured) {
    constexpr int watches = 20;
    simulated_launchdarkly api(many_imports(
        watches, "  - { type: rate_limit, from: 1s, count: 1, reset_in: 2s }\n"
                 "  - { type: rate_limit, from: 4s, count: 1, retry_after: 2s, retry_after_date: true }\n"));
    auto cfg = api.dir.write(
        "config.yaml",
        api.config({.watches = many_watches(watches),
                    .launchdarkly_extra = "  max_connections: " + std::to_string(max_connections) + "\n",
                    .max_requests_per_second = "0",
                    .polling = "  interval: 50ms\n  jitter: 0\n  backoff: { initial: 100ms, max: 500ms, multiplier: 2 }\n"}));
    child_process daemon({"run", "--config", cfg}, token_env());
    api.pump(1000ms);
    run_until(api.ioc, [&] {
        auto const& reqs = api.server->requests();
        return std::count_if(reqs.begin(), reqs.end(), [](auto const& r) { return r.status == 429; }) >= 2 &&
               reqs.back().at > std::find_if(reqs.rbegin(), reqs.rend(), [](auto const& r) {
                                    return r.status == 429;
                                })->at + 2500ms;
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
