// Per-watch failures, end to end: the importwatch binary against the
// simulator's faults (the simulator runs in this process's io_context, pumped
// with run_until). Each test asserts what the server saw as well as what the
// daemon logged. No test asserts speed: time bounds only say how many
// requests may come at most, or that the daemon did not wait for something
// that takes far longer than its own limit.
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

// 5xx: that watch alone backs off (full jitter, growing), is never failed, and
// its first good poll carries on where it was. The repeated error is logged
// once (the throttle allows one line a minute), not once per poll.
BOOST_AUTO_TEST_CASE(server_errors_back_off_that_watch_only_and_recover) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - project: p
    environment: e
    segment: s
    import_id: sick
    steps:
      - { status: preparing, for: 1s }
      - { status: in_progress, for: 6500ms }
      - { status: complete }
    faults:
      - { type: server_error, status: 503, from: 1s, until: 5s }
  - { project: p, environment: e, segment: s, import_id: healthy, steps: [{ status: in_progress }] }
)");
    auto cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("sick") + watch_entry("healthy"),
                                                        .polling = "  interval: 100ms\n  jitter: 0\n"
                                                                   "  backoff: { initial: 200ms, max: 2s, multiplier: 2 }\n"}));
    child_process daemon({"run", "--config", cfg}, token_env());
    run_until(api.ioc, [&] { return daemon.err().find("sick status in_progress -> complete") != std::string::npos; },
              30s);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);

    auto const sick = api.requests_for("sick");
    auto const errors = count_status(sick, 503);
    auto const in_window = api.requests_between("sick", 1s, 5s);
    auto const healthy_in_window = api.requests_between("healthy", 1s, 5s);
    BOOST_TEST_MESSAGE("sick: " << errors << " x 503, " << in_window << " requests in the 4 s window; healthy: "
                                << healthy_in_window);
    BOOST_TEST(errors >= 3u);
    // Polling every 100 ms would make ~40 requests in those 4 s; backoff
    // (means 100, 200, 400, 800, 1000, 1000… ms) makes about 7.
    BOOST_TEST(in_window <= 20u);
    // The other watch is not held back by that watch's errors.
    BOOST_TEST(healthy_in_window >= 5u);
    BOOST_TEST(count_status(api.requests_for("healthy"), 200) == api.requests_for("healthy").size());

    BOOST_TEST(count_lines(log, "watch sick: HTTP 503 from LaunchDarkly") == 1u);
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
    BOOST_TEST(count_lines(log, " recovered ") == 0u);
    BOOST_TEST(count_lines(log, "sick status none -> preparing") == 1u);
    BOOST_TEST(count_lines(log, "sick status preparing -> in_progress") == 1u);
    BOOST_TEST(count_lines(log, "sick status in_progress -> complete") == 1u);
    // Terminal: the last request the server saw for it answered `complete`.
    BOOST_TEST(sick.back().status == 200);
}

// 403, 404 and 400 fail just that watch (one watch.failed each), which is then
// polled at backoff.max and recovers on its own on the next good poll.
BOOST_AUTO_TEST_CASE(client_errors_fail_only_that_watch_and_it_recovers) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: forbidden, steps: [{ status: in_progress }],
      faults: [{ type: forbidden, from: 1s, until: 4s }] }
  - { project: p, environment: e, segment: s, import_id: missing, steps: [{ status: in_progress }],
      faults: [{ type: not_found, from: 1s, until: 4s }] }
  - { project: p, environment: e, segment: s, import_id: bad, steps: [{ status: in_progress }],
      faults: [{ type: bad_request, from: 1s, until: 4s }] }
  - { project: p, environment: e, segment: s, import_id: fine, steps: [{ status: in_progress }] }
)");
    auto cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("forbidden") + watch_entry("missing") +
                                                                   watch_entry("bad") + watch_entry("fine"),
                                                        .polling = fast_polling}));
    child_process daemon({"run", "--config", cfg}, token_env());
    run_until(api.ioc, [&] { return count_lines(daemon.err(), " recovered (") >= 3; }, 30s);
    api.pump(300ms);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);

    struct expectation {
        char const* id;
        int status;
        char const* reason;
    };
    for (auto const& e : {expectation{"forbidden", 403, "forbidden"}, expectation{"missing", 404, "not_found"},
                          expectation{"bad", 400, "invalid_request"}}) {
        std::string const id = e.id;
        BOOST_TEST_CONTEXT(id) {
            auto const reqs = api.requests_for(id);
            BOOST_TEST(count_status(reqs, e.status) >= 1u);
            BOOST_TEST(count_lines(log, id + " failed: " + e.reason + " (HTTP " + std::to_string(e.status)) == 1u);
            BOOST_TEST(count_lines(log, id + " failed: ") == 1u);
            BOOST_TEST(count_lines(log, id + " recovered (") == 1u);
            // Failed, it is polled at backoff.max (1 s), not every 100 ms.
            auto const while_failed = std::count_if(reqs.begin(), reqs.end(), [&](auto const& r) {
                return r.status == e.status;
            });
            BOOST_TEST(while_failed <= 6);
            // watch.failed comes before watch.recovered.
            auto const failed_at = log.find(id + " failed: ");
            auto const recovered_at = log.find(id + " recovered (");
            BOOST_TEST((failed_at != std::string::npos && recovered_at != std::string::npos && failed_at < recovered_at));
        }
    }
    BOOST_TEST(count_lines(log, "fine failed") == 0u);
    BOOST_TEST(count_status(api.requests_for("fine"), 200) == api.requests_for("fine").size());
    BOOST_TEST(count_lines(log, "rejected the API token") == 0u);
}

// A kept-alive connection the server resets before answering is retried once
// at once on a new connection: no error, no backoff. Repeated resets (also on
// fresh connections) are network errors: backed off, logged once, never a
// failed watch.
BOOST_AUTO_TEST_CASE(connection_resets) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: once, steps: [{ status: in_progress }],
      faults: [{ type: reset, from: 1500ms, count: 1 }] }
  - { project: p, environment: e, segment: s, import_id: often, steps: [{ status: in_progress }],
      faults: [{ type: reset, from: 1500ms, count: 6 }] }
)");
    // One second between polls, so the polls after 1.5 s reuse a kept-alive connection.
    auto cfg = api.dir.write("config.yaml",
                             api.config({.watches = watch_entry("once") + watch_entry("often"),
                                         .launchdarkly_extra = "  max_connections: 1\n",
                                         .polling = "  interval: 1s\n  jitter: 0\n"
                                                    "  backoff: { initial: 100ms, max: 500ms, multiplier: 2 }\n"}));
    child_process daemon({"run", "--config", cfg}, token_env());
    run_until(api.ioc, [&] {
        auto const often = api.requests_for("often");
        return count_fault(often, "reset") == 6 && often.back().status == 200 &&
               count_status(api.requests_for("once"), 200) >= 4;
    }, 30s);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);

    auto const once = api.requests_for("once");
    BOOST_REQUIRE_EQUAL(count_fault(once, "reset"), 1u);
    auto const reset_at = std::find_if(once.begin(), once.end(), [](auto const& r) { return r.fault == "reset"; });
    BOOST_REQUIRE(reset_at + 1 != once.end());
    BOOST_TEST((reset_at + 1)->status == 200);
    // Retried at once, not after the 1 s interval.
    BOOST_TEST(std::chrono::duration_cast<milliseconds>((reset_at + 1)->at - reset_at->at).count() < 700);
    BOOST_TEST(count_lines(log, "watch once:") == 0u);

    auto const often = api.requests_for("often");
    BOOST_TEST(count_fault(often, "reset") == 6u);
    BOOST_TEST(often.back().status == 200);
    BOOST_TEST(count_lines(log, "watch often: network: ") == 1u);
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
}

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
      - { status: preparing, for: 3s }
      - { status: in_progress }
    faults: [{ type: delay, delay: 5s, from: 1s, count: 2 }]
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

// Malformed JSON and bodies over 1 MiB are invalid responses: the 5th in a row
// fails the watch (invalid_response), the next good poll recovers it. Four in a
// row, a success, four more: never failed. A body cut short by a closed
// connection is a network error: backed off, never failed.
BOOST_AUTO_TEST_CASE(malformed_truncated_and_oversized_bodies) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: malformed, steps: [{ status: in_progress }],
      faults: [{ type: malformed, from: 1s, count: 5 }] }
  - { project: p, environment: e, segment: s, import_id: oversized, steps: [{ status: in_progress }],
      faults: [{ type: oversized, from: 1s, count: 5 }] }
  - { project: p, environment: e, segment: s, import_id: truncated, steps: [{ status: in_progress }],
      faults: [{ type: truncate, from: 1s, count: 6 }] }
  - { project: p, environment: e, segment: s, import_id: streaky, steps: [{ status: in_progress }],
      faults: [{ type: malformed, from: 1s, until: 2500ms, count: 4 }, { type: malformed, from: 4s, count: 4 }] }
)");
    auto cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("malformed") + watch_entry("oversized") +
                                                                   watch_entry("truncated") + watch_entry("streaky"),
                                                        .polling = fast_polling}));
    child_process daemon({"run", "--config", cfg}, token_env());
    auto done = [&] {
        auto const log = daemon.err();
        auto used_up = [&](std::string const& id, std::string const& fault, std::size_t n) {
            auto const reqs = api.requests_for(id);
            return count_fault(reqs, fault) == n && reqs.back().status == 200 && reqs.back().fault.empty();
        };
        return count_lines(log, "malformed recovered (") == 1 && count_lines(log, "oversized recovered (") == 1 &&
               used_up("truncated", "truncate", 6) && used_up("streaky", "malformed", 8);
    };
    run_until(api.ioc, done, 40s);
    api.pump(300ms);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);

    for (std::string const id : {"malformed", "oversized"}) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(count_fault(api.requests_for(id), id) == 5u);
            BOOST_TEST(count_lines(log, id + " failed: invalid_response") == 1u);
            BOOST_TEST(count_lines(log, id + " failed: ") == 1u);
            BOOST_TEST(count_lines(log, id + " recovered (") == 1u);
            BOOST_TEST(count_lines(log, "watch " + id + ": invalid response: ") == 1u);
            auto const failed_at = log.find(id + " failed: ");
            auto const recovered_at = log.find(id + " recovered (");
            BOOST_TEST((failed_at != std::string::npos && recovered_at != std::string::npos && failed_at < recovered_at));
        }
    }
    BOOST_TEST(count_lines(log, "watch oversized: invalid response: response body exceeds") == 1u);

    BOOST_TEST(count_fault(api.requests_for("truncated"), "truncate") == 6u);
    BOOST_TEST(count_lines(log, "truncated failed: ") == 0u);
    BOOST_TEST(count_lines(log, "watch truncated: ") == 1u);

    BOOST_TEST(count_fault(api.requests_for("streaky"), "malformed") == 8u);
    BOOST_TEST(count_lines(log, "streaky failed: ") == 0u);
    // The daemon is still there and still polling everything.
    BOOST_TEST(count_lines(log, "unexpectedly") == 0u);
}

// An unknown status is kept verbatim (an event), warned about once however
// often it is seen, and treated as non-terminal.
BOOST_AUTO_TEST_CASE(unknown_status_is_kept_warned_once_and_not_terminal) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: odd, steps: [{ status: in_progress }],
      faults: [{ type: unknown_status, from: 1s, until: 2500ms }] }
)");
    auto cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("odd"), .polling = fast_polling}));
    child_process daemon({"run", "--config", cfg}, token_env());
    run_until(api.ioc, [&] { return daemon.err().find("odd status mystery_status -> in_progress") != std::string::npos; },
              30s);
    api.pump(500ms);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);

    auto const reqs = api.requests_for("odd");
    auto const odd = count_fault(reqs, "unknown_status");
    BOOST_TEST(odd >= 3u);   // seen several times ...
    BOOST_TEST(count_lines(log, "unknown import status \"mystery_status\"") == 1u);   // ... warned once
    BOOST_TEST(count_lines(log, "odd status in_progress -> mystery_status") == 1u);
    BOOST_TEST(count_lines(log, "odd status mystery_status -> in_progress") == 1u);
    // Not terminal: polled after the unknown status.
    auto const last_odd = std::find_if(reqs.rbegin(), reqs.rend(), [](auto const& r) { return r.fault == "unknown_status"; });
    BOOST_TEST((last_odd != reqs.rbegin()));
    BOOST_TEST(count_lines(log, " failed: ") == 0u);
}

// stall_after: importwatch.import.stalled once per status, however many polls
// see it unchanged.
BOOST_AUTO_TEST_CASE(stalled_once_per_status) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - project: p
    environment: e
    segment: s
    import_id: sleepy
    steps:
      - { status: in_progress, for: 2500ms }
      - { status: ready }
)");
    auto cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("sleepy"),
                                                        .polling = std::string(fast_polling) + "  stall_after: 1s\n"}));
    child_process daemon({"run", "--config", cfg}, token_env());
    run_until(api.ioc, [&] { return daemon.err().find("sleepy stalled in ready") != std::string::npos; }, 30s);
    api.pump(1000ms);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);
    BOOST_TEST(api.requests_for("sleepy").size() >= 10u);
    BOOST_TEST(count_lines(log, "sleepy stalled in in_progress") == 1u);
    BOOST_TEST(count_lines(log, "sleepy stalled in ready") == 1u);
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
    // Several rounds of 401 at backoff.max (1 s).
    run_until(api.ioc, [&] { return count_lines(daemon.err(), " failed: unauthorized") >= 5; }, 20s);
    api.pump(2500ms);
    auto const rejected = api.server->requests().size();
    auto const log_401 = daemon.err();
    BOOST_TEST_MESSAGE(rejected << " requests answered 401");
    BOOST_TEST(count_status(api.server->requests(), 401) == rejected);

    api.dir.write("token", good + "\n");
    run_until(api.ioc, [&] { return count_lines(daemon.err(), " recovered (") >= 5; }, 20s);
    api.pump(500ms);
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

// One 401 says the token is bad: every other watch is marked failed at once,
// not only when its own poll is rejected, and each recovers on its own next
// good poll. The error is logged once.
BOOST_AUTO_TEST_CASE(one_unauthorized_answer_fails_every_watch) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: a, steps: [{ status: in_progress }],
      faults: [{ type: unauthorized, from: 1s, count: 1 }] }
  - { project: p, environment: e, segment: s, import_id: b, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: c, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: done, steps: [{ status: complete }] }
)");
    auto cfg = api.dir.write("config.yaml",
                             api.config({.watches = watch_entry("a") + watch_entry("b") + watch_entry("c") +
                                                    watch_entry("done"),
                                         // One connection: no other poll is in flight (and
                                         // answered 200) when the 401 arrives.
                                         .launchdarkly_extra = "  max_connections: 1\n",
                                         .polling = "  interval: 200ms\n  jitter: 0\n"
                                                    "  backoff: { initial: 100ms, max: 1500ms, multiplier: 2 }\n"}));
    child_process daemon({"run", "--config", cfg}, token_env());
    run_until(api.ioc, [&] { return count_lines(daemon.err(), " recovered (") >= 3; }, 20s);
    api.pump(300ms);
    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST_INFO(log);

    BOOST_REQUIRE_EQUAL(count_status(api.server->requests(), 401), 1u);
    auto const rejected_at =
        std::find_if(api.server->requests().begin(), api.server->requests().end(), [](auto const& r) {
            return r.status == 401;
        })->at;
    for (std::string const id : {"a", "b", "c"}) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(count_lines(log, id + " failed: unauthorized (HTTP 401") == 1u);
            BOOST_TEST(count_lines(log, id + " recovered (") == 1u);
            // Marked failed, b and c wait backoff.max (1.5 s) like a: their
            // 200 ms polling stops (only a poll already in flight may come).
            auto const reqs = api.requests_for(id);
            auto const soon = std::count_if(reqs.begin(), reqs.end(), [&](auto const& r) {
                return r.at > rejected_at && r.at < rejected_at + 1200ms;
            });
            BOOST_TEST(soon <= 1);
        }
    }
    BOOST_TEST(count_lines(log, "done failed") == 0u);   // terminal: nothing to fail
    BOOST_TEST(count_lines(log, "rejected the API token (HTTP 401)") == 1u);
    BOOST_TEST(count_lines(log, " error ") == 1u);
}
