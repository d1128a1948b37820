// Per-watch failures, end to end: the importwatch binary against the
// simulator's faults (the simulator runs in this process's io_context, pumped
// with run_until), one case per family, for the wiring: a failure class
// through a real socket and the request deadline, and a 401 with token_file
// re-read. Every failure class, backoff and 401 rule is asserted in-process,
// to the millisecond, in tests/integration/poller.cpp. No test asserts speed:
// time bounds only say how many requests may come at most, or that the daemon
// did not wait for something that takes far longer than its own limit.
#define BOOST_TEST_MODULE poll_failures
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"
#include "sim/simulator.hpp"

using namespace importwatch;
using namespace importwatch::testing;
using std::chrono::milliseconds;

namespace {

std::size_t count_status(std::vector<sim::request_record> const& reqs, int status) {
    return static_cast<std::size_t>(
        std::count_if(reqs.begin(), reqs.end(), [&](auto const& r) { return r.status == status; }));
}

std::size_t count_fault(std::vector<sim::request_record> const& reqs, std::string const& fault) {
    return static_cast<std::size_t>(
        std::count_if(reqs.begin(), reqs.end(), [&](auto const& r) { return r.fault == fault; }));
}

constexpr char const* fast_polling =
    "  interval: 100ms\n  jitter: 0\n  backoff: { initial: 100ms, max: 1s, multiplier: 2 }\n";

} // namespace

// A response slower than request_timeout: the daemon gives up on it (it does
// not wait the 5 s), backs off, and carries on; a timeout never fails a watch.
BOOST_AUTO_TEST_CASE(responses_slower_than_request_timeout) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - project: p
    environment: e
    segment: s
    import_id: slow
    steps:
      - { status: preparing, for: 2s }
      - { status: in_progress }
    faults: [{ type: delay, delay: 5s, from: 500ms, count: 2 }]
  - { project: p, environment: e, segment: s, import_id: quick, steps: [{ status: in_progress }] }
)");
    auto cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("slow") + watch_entry("quick"),
                                                        .launchdarkly_extra = "  request_timeout: 400ms\n",
                                                        .polling = fast_polling}));
    child_process daemon({"run", "--config", cfg}, token_env());
    run_until(api.ioc, [&] { return daemon.err().find("slow status preparing -> in_progress") != std::string::npos; },
              30s);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);

    auto const slow = api.requests_for("slow");
    BOOST_REQUIRE_EQUAL(count_fault(slow, "delay"), 2u);
    auto const first = std::find_if(slow.begin(), slow.end(), [](auto const& r) { return r.fault == "delay"; });
    BOOST_REQUIRE(first + 1 != slow.end());
    // The next poll came long before the delayed answer would have: the daemon
    // gave up after request_timeout (400 ms) and a short backoff.
    BOOST_TEST(std::chrono::duration_cast<milliseconds>((first + 1)->at - first->at).count() < 4000);
    BOOST_TEST(count_lines(log, "watch slow: timeout: reading response") == 1u);
    BOOST_TEST(count_lines(log, "timeout: timeout") == 0u);   // the kind is said once
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
    BOOST_TEST(count_lines(log, "slow status none -> preparing") == 1u);
    BOOST_TEST(count_lines(log, "slow status preparing -> in_progress") == 1u);
}

// 401: every watch is marked failed (one watch.failed each), one error line is
// logged, token_file is re-read, polling goes on at backoff.max; a fixed token
// recovers every watch without a restart. The token never shows in the logs.
BOOST_AUTO_TEST_CASE(unauthorized_then_a_valid_token_recovers) {
    std::string const good = "api-good-8d1f0c2a7e";
    std::string const bad = "api-bad-5b9e44c1d3";
    simulated_launchdarkly api("token: " + good + R"(
imports:
  - { project: p, environment: e, segment: s, import_id: a, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: b, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: c, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: d, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: e, steps: [{ status: in_progress }] }
)");
    auto const token_file = api.dir.write("token", bad + "\n");
    auto cfg = api.dir.write("config.yaml",
                             api.config({.watches = watch_entry("a") + watch_entry("b") + watch_entry("c") +
                                                    watch_entry("d") + watch_entry("e"),
                                         .credentials = "  token_file: " + token_file + "\n",
                                         .polling = fast_polling}));
    child_process daemon({"run", "--config", cfg});
    // Another round or two of 401 at backoff.max (1 s).
    run_until(api.ioc, [&] { return count_lines(daemon.err(), " failed: unauthorized") >= 5; }, 20s);
    api.pump(1500ms);
    auto const rejected = api.server->requests().size();
    auto const log_401 = daemon.err();
    BOOST_TEST_MESSAGE(rejected << " requests answered 401");
    BOOST_TEST(count_status(api.server->requests(), 401) == rejected);

    api.dir.write("token", good + "\n");
    run_until(api.ioc, [&] { return count_lines(daemon.err(), " recovered (") >= 5; }, 20s);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);

    for (std::string const id : {"a", "b", "c", "d", "e"}) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(count_lines(log, id + " failed: unauthorized (HTTP 401") == 1u);
            BOOST_TEST(count_lines(log, id + " recovered (") == 1u);
            // While failed, polled at backoff.max (1 s): a handful, not every 100 ms.
            auto const reqs = api.requests_for(id);
            BOOST_TEST(count_status(reqs, 401) <= 8u);
            BOOST_TEST(reqs.back().status == 200);
        }
    }
    // One error line for the bad token, not one per poll or per watch.
    BOOST_TEST(count_lines(log, " error ") == 1u);
    BOOST_TEST(count_lines(log, "rejected the API token (HTTP 401)") == 1u);
    // Each watch.failed event and that error line; no per-watch line per 401 poll.
    BOOST_TEST(count_lines(log_401, "HTTP 401") == 5u + 1u);
    BOOST_TEST(count_lines(log, "HTTP 401 from LaunchDarkly") == 0u);
    // Secrets never appear in logs.
    BOOST_TEST(log.find(bad) == std::string::npos);
    BOOST_TEST(log.find(good) == std::string::npos);
    BOOST_TEST(daemon.out().find(bad) == std::string::npos);
    BOOST_TEST(daemon.out().find(good) == std::string::npos);
}

