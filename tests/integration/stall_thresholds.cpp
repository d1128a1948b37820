// stall_after per status and per watch, end to end: the importwatch binary
// against the simulator, with thresholds short enough to see within seconds.
#define BOOST_TEST_MODULE stall_thresholds
#include <boost/test/unit_test.hpp>

#include <csignal>

#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"

using namespace importwatch;
using namespace importwatch::testing;
using std::chrono::milliseconds;

namespace {

constexpr char const* scenario = R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: approval, steps: [{ status: pending_approval }] }
  - { project: p, environment: e, segment: s, import_id: applying, steps: [{ status: in_progress }] }
)";

std::string const polling = "  interval: 100ms\n  jitter: 0\n  backoff: { initial: 100ms, max: 1s, multiplier: 2 }\n"
                            "  stall_after: { pending_approval: 1h, in_progress: 1s, default: 1h }\n";

bool logged(child_process const& p, std::string const& needle) { return p.err().find(needle) != std::string::npos; }

} // namespace

// in_progress stalls after its 1s while pending_approval, at 1h, does not; a
// reload that gives the pending watch a threshold of its own applies it to
// the running watch, which keeps its status-since time.
BOOST_AUTO_TEST_CASE(each_status_stalls_at_its_own_threshold_and_reload_applies_new_ones) {
    simulated_launchdarkly api(scenario);
    auto const cfg = api.dir.write(
        "config.yaml", api.config({.watches = watch_entry("approval") + watch_entry("applying"), .polling = polling}));
    child_process daemon({"run", "--config", cfg}, token_env());

    BOOST_TEST_REQUIRE(run_until(api.ioc, [&] { return logged(daemon, "applying stalled in in_progress for 1s"); }, 30s),
                       daemon.err());
    // Well past the in_progress threshold, the pending watch has been polled
    // many times and is not stalled.
    auto const polls_before = api.requests_for("approval").size();
    api.pump(milliseconds(1500));
    BOOST_TEST(api.requests_for("approval").size() >= polls_before + 5);
    BOOST_TEST(!logged(daemon, "approval stalled"), daemon.err());

    // The same watch with stall_after of its own: reloaded, it stalls at once
    // (its status has lasted over 1s already).
    auto const approval_own = std::string("  - { name: approval, project: p, environment: e, segment: s, "
                                          "import_id: approval, stall_after: 1s }\n");
    api.dir.write("config.yaml", api.config({.watches = approval_own + watch_entry("applying"), .polling = polling}));
    daemon.signal(SIGHUP);
    BOOST_TEST(run_until(api.ioc, [&] { return logged(daemon, "approval stalled in pending_approval for "); }, 30s),
               daemon.err());

    BOOST_TEST(api.stop(daemon) == 0);
    auto const log = daemon.err();
    BOOST_TEST(count_lines(log, "configuration reloaded") == 1u, log);
    BOOST_TEST(count_lines(log, "applying stalled in in_progress") == 1u, log);   // once per status
    BOOST_TEST(count_lines(log, "approval stalled in pending_approval") == 1u, log);
    BOOST_TEST(count_lines(log, "approval status none -> pending_approval") == 1u, log);   // kept its state
}
