// What /metrics and /readyz tell an operator about each watch and about the
// daemon itself (docs/operations.md, "Metrics" and "Readiness"): the
// importwatch binary against the simulator, scraped as Prometheus would and
// checked with `promtool check metrics` when promtool is installed.
#define BOOST_TEST_MODULE watch_metrics
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>

#include <boost/json/parse.hpp>

#include "common/admin_client.hpp"
#include "common/promtool.hpp"
#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"
#include "core/time.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

/// One scrape: every sample by its series as printed ("name{labels}").
struct scrape {
    std::string text;
    std::map<std::string, double> samples;

    /// The sample's value; NaN (equal to nothing) when there is none.
    double operator[](std::string const& series) const {
        auto it = samples.find(series);
        return it == samples.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
    }
    /// The series (name{labels}) of every sample whose line contains `needle`.
    std::vector<std::string> series_with(std::string const& needle) const {
        std::vector<std::string> out;
        for (auto const& [series, _] : samples)
            if (series.find(needle) != std::string::npos) out.push_back(series);
        return out;
    }
};

scrape parse_exposition(std::string text) {
    scrape s;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line.front() == '#') continue;
        auto const space = line.rfind(' ');   // label values may hold spaces; the value may not
        BOOST_TEST_REQUIRE(space != std::string::npos, line);
        s.samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    s.text = std::move(text);
    return s;
}

void require_promtool_clean(temp_dir const& dir, std::string const& text) {
    if (auto check = promtool_check(dir, text)) {
        BOOST_TEST_INFO(check->second);
        BOOST_TEST(check->first == 0);
        BOOST_TEST(check->second.empty());   // no lint warnings either
    } else {
        BOOST_TEST_MESSAGE("promtool not found (apt-get install prometheus): skipping `promtool check metrics`");
    }
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double seconds_of(boost::json::value const& rfc3339) {
    auto t = core::parse_rfc3339(std::string(rfc3339.as_string()));
    BOOST_TEST_REQUIRE(t.has_value());
    return double(t->time_since_epoch().count()) / 1000.0;
}

/// The status label values, in the order /metrics gives them.
std::vector<std::string> const statuses = {"none",        "preparing", "pending_approval", "ready",
                                           "in_progress", "complete",  "stopped",          "unknown"};

struct daemon_under_test {
    simulated_launchdarkly& api;
    std::uint16_t port = free_port();

    std::string admin() const { return "  listen: 127.0.0.1:" + std::to_string(port) + "\n"; }

    std::optional<core::http_reply> get(std::string const& target) {
        return admin_request(api.ioc, port, "GET", target);
    }
    int status_of(std::string const& target) {
        auto r = get(target);
        return r ? r->status : -1;
    }
    scrape metrics() {
        auto r = get("/metrics");
        BOOST_TEST_REQUIRE(r.has_value());
        BOOST_TEST_REQUIRE(r->status == 200);
        return parse_exposition(r->body);
    }
    boost::json::object watch(std::string const& name) {
        auto r = get("/v1/watches");
        BOOST_TEST_REQUIRE(r.has_value());
        auto const all = boost::json::parse(r->body);
        for (auto const& w : all.as_array())
            if (w.at("name").as_string() == name) return w.as_object();
        BOOST_FAIL("no watch " + name + " in /v1/watches");
        return {};
    }
    bool up(child_process& d) {
        return run_until(api.ioc, [&] { return !d.running() || status_of("/healthz") == 200; }, 30s) && d.running();
    }
};

std::string watch_label(std::string const& name) {
    std::string escaped;
    for (char c : name) {
        if (c == '\\' || c == '"') escaped += '\\';
        escaped += c;
    }
    return "watch=\"" + escaped + "\"";
}

/// The one status whose importwatch_watch_status series is 1; fails unless
/// the watch has a series for every status and exactly one of them is 1.
std::string current_status(scrape const& m, std::string const& watch) {
    std::string current;
    int ones = 0;
    for (auto const& status : statuses) {
        auto const v = m["importwatch_watch_status{" + watch_label(watch) + ",status=\"" + status + "\"}"];
        BOOST_TEST_REQUIRE((v == 0 || v == 1), watch << ": status " << status << " is " << v);
        if (v == 1) current = status, ++ones;
    }
    BOOST_TEST_REQUIRE(ones == 1, watch << ": " << ones << " statuses are 1");
    return current;
}

double per_watch(scrape const& m, std::string const& metric, std::string const& watch) {
    auto const v = m[metric + "{" + watch_label(watch) + "}"];
    BOOST_TEST_REQUIRE(!std::isnan(v), metric << " has no series for " << watch);
    return v;
}

constexpr char const* moving_scenario = R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: moving,
      steps: [{ status: preparing, for: 1500ms }, { status: in_progress, for: 1500ms }, { status: complete }] }
  - { project: p, environment: e, segment: s, import_id: stuck, steps: [{ status: pending_approval }] }
  - { project: p, environment: e, segment: s, import_id: odd, steps: [{ status: 'Weird "status"' }] }
)";

std::string const stuck_name = R"(stuck "one" \ x)";

std::string moving_watches(std::string const& tier, bool with_odd_and_missing) {
    std::string w = "  - { name: moving, project: p, environment: e, segment: s, import_id: moving,\n"
                    "      labels: { team: 'growth \"core\"', tier: " + tier + " } }\n"
                    "  - { name: '" + stuck_name + "', project: p, environment: e, segment: s, import_id: stuck }\n";
    if (with_odd_and_missing) w += watch_entry("odd", "odd") + watch_entry("missing", "missing");
    return w;
}

} // namespace

// A watch moving through preparing -> in_progress -> complete shows each
// status in turn as the one importwatch_watch_status series at 1, with its
// status_since; a stuck watch turns stalled, a 404 failed, an invented status
// is "unknown" (never the server's text). Every scrape passes promtool. A
// reload that removes watches removes their series.
BOOST_AUTO_TEST_CASE(per_watch_series_follow_each_watch_through_its_statuses) {
    simulated_launchdarkly api(moving_scenario, simulated_launchdarkly::transport::plain);
    daemon_under_test t{api};
    auto config = [&](std::string const& tier, bool all) {
        return api.config({.watches = moving_watches(tier, all),
                           .credentials = "  token_env: SIM_TOKEN\n",
                           .polling = "  interval: 100ms\n  jitter: 0\n  stall_after: 2s\n"
                                      "  backoff: { initial: 100ms, max: 1s, multiplier: 2 }\n",
                           .admin = t.admin()});
    };
    auto const cfg = api.dir.write("config.yaml", config("gold", true));
    double const started = now_seconds();
    child_process d({"run", "--config", cfg}, {{"SIM_TOKEN", "sim-token"}, {"NOTIFY_SOCKET", ""}});
    BOOST_REQUIRE_MESSAGE(t.up(d), d.err());

    // Scrape until `moving` completes, noting each status it shows in turn.
    std::vector<std::string> seen;
    std::map<std::string, double> since_by_status;
    bool checked_midway = false;
    bool const completed = run_until(api.ioc, [&] {
        auto m = t.metrics();
        auto const status = current_status(m, "moving");
        if (seen.empty() || seen.back() != status) {
            seen.push_back(status);
            since_by_status[status] = per_watch(m, "importwatch_watch_status_since_timestamp_seconds", "moving");
        }
        if (status == "in_progress" && !checked_midway) {
            require_promtool_clean(api.dir, m.text);
            checked_midway = true;
        }
        api.pump(100ms);
        return status == "complete";
    }, 30s);
    BOOST_TEST_INFO(d.err());
    BOOST_REQUIRE(completed);
    if (!seen.empty() && seen.front() == "none") seen.erase(seen.begin());   // scraped before its first poll
    BOOST_TEST(seen == (std::vector<std::string>{"preparing", "in_progress", "complete"}),
               boost::test_tools::per_element());
    BOOST_TEST(since_by_status["preparing"] < since_by_status["in_progress"]);
    BOOST_TEST(since_by_status["in_progress"] < since_by_status["complete"]);
    BOOST_TEST(since_by_status["preparing"] >= started - 1);

    // Stall (2 s) and failure settle.
    BOOST_REQUIRE(run_until(api.ioc, [&] {
        auto m = t.metrics();
        return per_watch(m, "importwatch_watch_stalled", stuck_name) == 1 &&
               per_watch(m, "importwatch_watch_failed", "missing") == 1;
    }, 20s));
    {
        auto const m = t.metrics();
        BOOST_TEST_INFO(m.text);
        require_promtool_clean(api.dir, m.text);

        BOOST_TEST(m["importwatch_watch_info{watch=\"moving\",project=\"p\",environment=\"e\",segment=\"s\","
                     "import_id=\"moving\",team=\"growth \\\"core\\\"\",tier=\"gold\"}"] == 1.0);
        BOOST_TEST(m["importwatch_watch_info{watch=\"stuck \\\"one\\\" \\\\ x\",project=\"p\",environment=\"e\","
                     "segment=\"s\",import_id=\"stuck\"}"] == 1.0);
        BOOST_TEST(m.series_with("importwatch_watch_info{").size() == 4u);

        BOOST_TEST(current_status(m, "moving") == "complete");
        BOOST_TEST(current_status(m, stuck_name) == "pending_approval");
        BOOST_TEST(current_status(m, "odd") == "unknown");
        BOOST_TEST(current_status(m, "missing") == "none");
        BOOST_TEST(m.text.find("Weird") == std::string::npos);   // the server's text is in no label

        BOOST_TEST(per_watch(m, "importwatch_watch_failed", "missing") == 1);
        for (auto const& w : {std::string("moving"), stuck_name, std::string("odd")})
            BOOST_TEST(per_watch(m, "importwatch_watch_failed", w) == 0, w);
        BOOST_TEST(per_watch(m, "importwatch_watch_stalled", stuck_name) == 1);
        BOOST_TEST(per_watch(m, "importwatch_watch_stalled", "odd") == 1);     // unknown is not terminal
        BOOST_TEST(per_watch(m, "importwatch_watch_stalled", "moving") == 0);  // complete never stalls
        BOOST_TEST(per_watch(m, "importwatch_watch_stalled", "missing") == 0);
        // The per-watch gauges add up to the totals.
        BOOST_TEST(m["importwatch_stalled_watches"] == 2.0);
        BOOST_TEST(m["importwatch_failed_watches"] == 1.0);

        BOOST_TEST(per_watch(m, "importwatch_watch_status_since_timestamp_seconds", "missing") == 0);
        // The same instants as /v1/watches.
        auto const moving = t.watch("moving");
        BOOST_TEST(per_watch(m, "importwatch_watch_status_since_timestamp_seconds", "moving") ==
                   seconds_of(moving.at("status_since")));
        BOOST_TEST(per_watch(m, "importwatch_watch_last_poll_timestamp_seconds", "moving") ==
                   seconds_of(moving.at("last_poll")));
        // Failing or not, a watch still polled has a recent last poll.
        for (auto const& w : {stuck_name, std::string("missing")}) {
            auto const last = per_watch(m, "importwatch_watch_last_poll_timestamp_seconds", w);
            BOOST_TEST(last > now_seconds() - 10, w);
            BOOST_TEST(last <= now_seconds() + 1, w);
        }
        BOOST_TEST(m["importwatch_transitions_total{status=\"unknown\"}"] == 1.0);
        BOOST_TEST(m["importwatch_api_token_rejected"] == 0.0);

        // process_* as the client libraries define them.
        auto const start = m["process_start_time_seconds"];
        BOOST_TEST(start >= started - 5);
        BOOST_TEST(start <= now_seconds());
        BOOST_TEST(m["process_resident_memory_bytes"] > 1e6);
        BOOST_TEST(m["process_virtual_memory_bytes"] >= m["process_resident_memory_bytes"]);
        BOOST_TEST(m["process_open_fds"] >= 3);
        BOOST_TEST(m["process_open_fds"] <= m["process_max_fds"]);
        BOOST_TEST(m["process_cpu_seconds_total"] >= 0);
        BOOST_TEST(m.text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
    }

    // A reload drops odd and missing and changes moving's labels.
    api.dir.write("config.yaml", config("silver", false));
    d.signal(SIGHUP);
    BOOST_REQUIRE(run_until(api.ioc, [&] { return d.err().find("configuration reloaded") != std::string::npos; }, 10s));
    {
        auto const m = t.metrics();
        BOOST_TEST_INFO(m.text);
        require_promtool_clean(api.dir, m.text);
        for (auto const* gone : {"watch=\"odd\"", "watch=\"missing\""})
            BOOST_TEST(m.series_with(gone).empty(), gone);
        BOOST_TEST(m.series_with("importwatch_watch_info{").size() == 2u);
        BOOST_TEST(m.series_with("tier=\"gold\"").empty());
        BOOST_TEST(m["importwatch_watch_info{watch=\"moving\",project=\"p\",environment=\"e\",segment=\"s\","
                     "import_id=\"moving\",team=\"growth \\\"core\\\"\",tier=\"silver\"}"] == 1.0);
        BOOST_TEST(current_status(m, "moving") == "complete");   // kept its state
        BOOST_TEST(m["importwatch_failed_watches"] == 0.0);
    }
    BOOST_TEST(api.stop(d) == 0);
}

// When every import is terminal nothing is polled and the last successful
// poll stops moving; the heartbeat goes on, so a liveness alert on it does
// not fire.
BOOST_AUTO_TEST_CASE(heartbeat_moves_when_every_import_is_terminal) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: a, steps: [{ status: complete }] }
  - { project: p, environment: e, segment: s, import_id: b, steps: [{ status: stopped }] }
)", simulated_launchdarkly::transport::plain);
    daemon_under_test t{api};
    auto const cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("a") + watch_entry("b"),
                                                              .admin = t.admin()}));
    child_process d({"run", "--config", cfg}, {{"SIM_TOKEN", "sim-token"}, {"NOTIFY_SOCKET", ""}});
    BOOST_REQUIRE_MESSAGE(t.up(d), d.err());
    BOOST_REQUIRE(run_until(api.ioc, [&] {
        auto m = t.metrics();
        return current_status(m, "a") == "complete" && current_status(m, "b") == "stopped";
    }, 20s));
    auto const first = t.metrics();
    auto const requests = api.server->requests().size();
    auto const beat = first["importwatch_heartbeat_timestamp_seconds"];
    BOOST_TEST(beat > now_seconds() - 10);
    // The heartbeat ticks every 5 s.
    std::optional<scrape> later;
    BOOST_TEST(run_until(api.ioc, [&] {
        later = t.metrics();
        api.pump(200ms);
        return (*later)["importwatch_heartbeat_timestamp_seconds"] > beat;
    }, 15s));
    BOOST_TEST(api.server->requests().size() == requests);   // nothing was polled meanwhile
    BOOST_TEST((*later)["importwatch_last_successful_poll_timestamp_seconds"] ==
               first["importwatch_last_successful_poll_timestamp_seconds"]);
    BOOST_TEST((*later)["importwatch_heartbeat_timestamp_seconds"] > now_seconds() - 10);
    BOOST_TEST((*later)["importwatch_event_loop_lag_seconds"] >= 0);
    BOOST_TEST((*later)["importwatch_event_loop_lag_seconds"] < 5);
    BOOST_TEST(t.status_of("/readyz") == 200);
    BOOST_TEST(api.stop(d) == 0);
}

// A token LaunchDarkly rejects fails every watch, but the daemon stays ready:
// restarting it or routing to another replica would not help. It is a gauge
// and a /v1/watches field of its own, and both clear once a token works.
BOOST_AUTO_TEST_CASE(a_rejected_token_is_its_own_signal_not_unreadiness) {
    std::string const good = "api-good-1f2e3d4c";
    simulated_launchdarkly api("token: " + good + R"(
imports:
  - { project: p, environment: e, segment: s, import_id: a, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: b, steps: [{ status: preparing }] }
)", simulated_launchdarkly::transport::plain);
    daemon_under_test t{api};
    auto const token_file = api.dir.write("token", "api-bad-9a8b7c6d\n");
    auto const cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("a") + watch_entry("b"),
                                                              .credentials = "  token_file: " + token_file + "\n",
                                                              .admin = t.admin()}));
    child_process d({"run", "--config", cfg}, {{"NOTIFY_SOCKET", ""}});
    BOOST_REQUIRE_MESSAGE(t.up(d), d.err());
    BOOST_REQUIRE(run_until(api.ioc, [&] {
        auto m = t.metrics();
        return m["importwatch_api_token_rejected"] == 1.0 && per_watch(m, "importwatch_watch_failed", "a") == 1 &&
               per_watch(m, "importwatch_watch_failed", "b") == 1;
    }, 20s));
    BOOST_TEST(t.status_of("/readyz") == 200);
    for (char const* w : {"a", "b"}) {
        auto const watch = t.watch(w);
        BOOST_TEST(watch.at("token_rejected").as_bool(), w);
        BOOST_TEST(watch.at("failed").as_bool(), w);
    }
    api.pump(1500ms);   // still ready after more rejected polls
    BOOST_TEST(t.status_of("/readyz") == 200);
    BOOST_TEST(t.metrics()["importwatch_api_token_rejected"] == 1.0);

    // A working token (re-read after the next 401) clears both.
    api.dir.write("token", good + "\n");
    BOOST_REQUIRE(run_until(api.ioc, [&] {
        auto m = t.metrics();
        return m["importwatch_api_token_rejected"] == 0.0 && per_watch(m, "importwatch_watch_failed", "a") == 0 &&
               per_watch(m, "importwatch_watch_failed", "b") == 0;
    }, 20s));
    BOOST_TEST(!t.watch("a").at("token_rejected").as_bool());
    BOOST_TEST(t.status_of("/readyz") == 200);
    BOOST_TEST(d.err().find(good) == std::string::npos);
    BOOST_TEST(api.stop(d) == 0);
}

// An event loop that stops keeping time (here: the process stopped for 16 s,
// as a blocked thread or a starved host would) is not ready until its
// heartbeat runs on time again.
BOOST_AUTO_TEST_CASE(a_late_event_loop_is_not_ready_until_it_keeps_time_again) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: a, steps: [{ status: in_progress }] }
)", simulated_launchdarkly::transport::plain);
    daemon_under_test t{api};
    auto const cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("a"), .admin = t.admin()}));
    child_process d({"run", "--config", cfg}, {{"SIM_TOKEN", "sim-token"}, {"NOTIFY_SOCKET", ""}});
    BOOST_REQUIRE_MESSAGE(t.up(d), d.err());
    BOOST_REQUIRE(run_until(api.ioc, [&] { return t.status_of("/readyz") == 200; }, 10s));

    d.signal(SIGSTOP);
    api.pump(16s);   // longer than the 5 s heartbeat plus the 10 s it may be late
    d.signal(SIGCONT);
    auto const late = t.get("/readyz");
    BOOST_REQUIRE(late.has_value());
    BOOST_TEST(late->status == 503);
    BOOST_TEST(late->body.find("event loop is late") != std::string::npos, late->body);
    BOOST_TEST(run_until(api.ioc, [&] {
        return t.metrics()["importwatch_event_loop_lag_seconds"] > 10;
    }, 4s));

    // The next tick, 5 s later, is on time.
    BOOST_TEST(run_until(api.ioc, [&] { return t.status_of("/readyz") == 200; }, 15s));
    BOOST_TEST(t.metrics()["importwatch_event_loop_lag_seconds"] < 5);
    BOOST_TEST(api.stop(d) == 0);
}
