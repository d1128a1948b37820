// `importwatch run` reloading by itself (reload.auto, on by default) when the
// config file or a watch file changes: no SIGHUP is sent in these tests
// unless one says so. The simulator runs in this process's io_context,
// pumped while the importwatch binary runs as a child.
#define BOOST_TEST_MODULE auto_reload
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <sstream>

#include "common/admin_client.hpp"
#include "common/configmap_volume.hpp"
#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

constexpr char const* scenario_yaml = R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: base, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: added, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: later, steps: [{ status: pending_approval }] }
)";

/// "Writing a watch file starts polling that import within 2 s" (5x under ASan).
constexpr auto applied_within = sanitized ? 10s : 2s;

struct fixture : simulated_launchdarkly {
    std::uint16_t port = free_port();

    fixture() : simulated_launchdarkly(scenario_yaml, transport::plain) {}

    std::string config(std::string const& watches, std::string const& extra = "") const {
        return simulated_launchdarkly::config(
            {.watches = watches, .admin = "  listen: 127.0.0.1:" + std::to_string(port) + "\n", .extra = extra});
    }

    std::string admin(std::string const& target) {
        auto r = admin_request(ioc, port, "GET", target, 2s);
        return r && r->status == 200 ? r->body : std::string();
    }
    bool healthy() { return !admin("/healthz").empty(); }
    /// Whether /v1/watches lists a watch named `name`.
    bool has_watch(std::string const& name) {
        return admin("/v1/watches").find("\"name\":\"" + name + "\"") != std::string::npos;
    }
    std::optional<double> metric(std::string const& series) {
        std::istringstream in(admin("/metrics"));
        for (std::string line; std::getline(in, line);)
            if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
        return std::nullopt;
    }

    void start(child_process& daemon) {
        BOOST_TEST_REQUIRE(run_until(ioc, [&] { return !daemon.running() || healthy(); }, 30s));
        BOOST_TEST_REQUIRE(daemon.running(), daemon.err());
    }
    /// Waits until `import_id` has been polled `n` more times than now.
    bool polled(std::string const& import_id, std::size_t n = 1, std::chrono::milliseconds timeout = 10s) {
        auto const before = requests_for(import_id).size();
        return run_until(ioc, [&] { return requests_for(import_id).size() >= before + n; }, timeout);
    }
    /// How long until `import_id` is first polled (timeout when it is not).
    std::chrono::milliseconds until_polled(std::string const& import_id, std::chrono::milliseconds timeout = 10s) {
        auto const t0 = std::chrono::steady_clock::now();
        run_until(ioc, [&] { return !requests_for(import_id).empty(); }, timeout);
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    }
};

std::size_t count(std::string const& haystack, std::string const& needle) {
    std::size_t n = 0;
    for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
    return n;
}

} // namespace

// A sidecar's main container adds an import by writing one file, changes it,
// and removes it; the daemon follows without a signal.
BOOST_AUTO_TEST_CASE(adding_changing_and_removing_a_watch_file_applies_by_itself) {
    fixture f;
    fs::create_directories(f.dir.path() / "watches.d");
    auto const cfg = f.dir.write("config.yaml", f.config(watch_entry("base"), "watch_files: [watches.d/*.yaml]\n"));
    child_process daemon({"run", "--config", cfg}, token_env());
    f.start(daemon);
    BOOST_TEST_REQUIRE(f.polled("base"));
    BOOST_TEST(daemon.err().find("automatic reload on: watching 2 directories") != std::string::npos, daemon.err());

    // Added: polled within 2 s of the write.
    auto const file = f.dir.write("watches.d/added.yaml", "watches:\n" + watch_entry("added"));
    auto const took = f.until_polled("added");
    BOOST_TEST_MESSAGE("a new watch file was polled " << took.count() << " ms after it was written");
    BOOST_TEST(!f.requests_for("added").empty(), daemon.err());
    BOOST_TEST((took < applied_within));
    BOOST_TEST(count(daemon.err(), "configuration reloaded from " + cfg + " (trigger: file change: " + file) == 1u,
               daemon.err());

    // Changed (renamed: same import, new name): applied, and the watch goes on.
    f.dir.write("watches.d/added.yaml", "watches:\n" + watch_entry("renamed", "added"));
    BOOST_TEST(run_until(f.ioc, [&] { return f.has_watch("renamed"); }, 10s), daemon.err());
    BOOST_TEST(!f.has_watch("added"));
    BOOST_TEST(f.polled("added"));

    // Removed: the watch stops (at most a poll in flight at the reload).
    fs::remove(file);
    BOOST_TEST(run_until(f.ioc, [&] { return !f.has_watch("renamed"); }, 10s), daemon.err());
    auto const polls = f.requests_for("added").size();
    BOOST_TEST(f.polled("base", 3));
    BOOST_TEST(f.requests_for("added").size() <= polls + 1);

    BOOST_TEST(count(daemon.err(), "reload rejected") == 0u);
    BOOST_TEST(count(daemon.err(), "trigger: SIGHUP") == 0u);
    BOOST_TEST(f.metric("importwatch_config_last_reload_successful").value_or(-1) == 1);
    BOOST_TEST(f.stop(daemon) == 0);
}

// The config file in a ConfigMap volume (config.yaml -> ..data/config.yaml):
// the kubelet's update renames ..data and never touches config.yaml.
BOOST_AUTO_TEST_CASE(a_configmap_update_is_applied) {
    fixture f;
    configmap_volume volume(f.dir.path() / "cm", {{"config.yaml", f.config(watch_entry("base"))}});
    child_process daemon({"run", "--config", volume.path("config.yaml")}, token_env());
    f.start(daemon);
    BOOST_TEST_REQUIRE(f.polled("base"));

    volume.update({{"config.yaml", f.config(watch_entry("base") + watch_entry("added"))}});
    auto const took = f.until_polled("added");
    BOOST_TEST_MESSAGE("a ConfigMap update was applied " << took.count() << " ms after the swap");
    BOOST_TEST(!f.requests_for("added").empty(), daemon.err());
    BOOST_TEST((took < applied_within));
    BOOST_TEST(count(daemon.err(), "(trigger: file change: " + volume.path("..data")) == 1u, daemon.err());

    // And the next update too: the new generation is what is watched now.
    volume.update({{"config.yaml", f.config(watch_entry("base") + watch_entry("added") + watch_entry("later"))}});
    BOOST_TEST(f.until_polled("later") < 10s, daemon.err());
    BOOST_TEST(f.has_watch("later"));
    BOOST_TEST(count(daemon.err(), "configuration reloaded") >= 2u, daemon.err());
    BOOST_TEST(f.stop(daemon) == 0);
}

// A broken watch file is rejected as a whole, like a broken SIGHUP reload:
// the running watches go on, the metric and the log say so; the fix applies.
BOOST_AUTO_TEST_CASE(a_broken_file_keeps_the_running_config_until_fixed) {
    fixture f;
    f.dir.write("watches.d/team.yaml", "watches:\n" + watch_entry("later"));
    auto const cfg = f.dir.write("config.yaml", f.config(watch_entry("base"), "watch_files: [watches.d/*.yaml]\n"));
    child_process daemon({"run", "--config", cfg}, token_env());
    f.start(daemon);
    BOOST_TEST_REQUIRE(f.polled("later"));

    auto const file = f.dir.write("watches.d/team.yaml", "watches:\n  - { name: half-written, project: p\n");
    BOOST_TEST(run_until(f.ioc, [&] { return daemon.err().find("reload rejected") != std::string::npos; }, 10s),
               daemon.err());
    BOOST_TEST(count(daemon.err(), "(trigger: file change: " + file) == 1u, daemon.err());
    BOOST_TEST(count(daemon.err(), "reload rejected, keeping the running configuration: " + file) == 1u);
    BOOST_TEST(f.metric("importwatch_config_last_reload_successful").value_or(-1) == 0);
    BOOST_TEST(f.polled("later", 2));
    BOOST_TEST(f.has_watch("later"));
    BOOST_TEST(daemon.running());

    f.dir.write("watches.d/team.yaml", "watches:\n" + watch_entry("later") + watch_entry("added"));
    BOOST_TEST(f.until_polled("added") < 10s, daemon.err());
    BOOST_TEST(f.metric("importwatch_config_last_reload_successful").value_or(-1) == 1);
    BOOST_TEST(count(daemon.err(), "reload rejected") == 1u);
    BOOST_TEST(f.stop(daemon) == 0);
}

// reload.auto: false: a change waits for SIGHUP. A reload that turns it on
// makes the next change apply by itself.
BOOST_AUTO_TEST_CASE(reload_auto_false_waits_for_sighup) {
    fixture f;
    fs::create_directories(f.dir.path() / "watches.d");
    auto const off = f.config(watch_entry("base"), "reload: { auto: false }\nwatch_files: [watches.d/*.yaml]\n");
    auto const cfg = f.dir.write("config.yaml", off);
    child_process daemon({"run", "--config", cfg}, token_env());
    f.start(daemon);
    BOOST_TEST_REQUIRE(f.polled("base"));
    BOOST_TEST(daemon.err().find("automatic reload on") == std::string::npos);

    // Given the time an automatic reload takes, nothing happens.
    f.dir.write("watches.d/added.yaml", "watches:\n" + watch_entry("added"));
    f.pump(applied_within);
    BOOST_TEST(f.requests_for("added").empty());
    BOOST_TEST(count(daemon.err(), "configuration reloaded") == 0u, daemon.err());

    // SIGHUP applies it, and turns automatic reload on.
    f.dir.write("config.yaml", f.config(watch_entry("base"), "reload: { auto: true }\nwatch_files: [watches.d/*.yaml]\n"));
    daemon.signal(SIGHUP);
    BOOST_TEST(f.until_polled("added") < 10s, daemon.err());
    BOOST_TEST(count(daemon.err(), "(trigger: SIGHUP") == 1u, daemon.err());
    BOOST_TEST(run_until(f.ioc, [&] { return count(daemon.err(), "automatic reload on") == 1u; }, 5s), daemon.err());
    f.dir.write("watches.d/later.yaml", "watches:\n" + watch_entry("later"));
    BOOST_TEST(f.until_polled("later") < 10s, daemon.err());
    BOOST_TEST(count(daemon.err(), "(trigger: file change: ") >= 1u);
    BOOST_TEST(f.stop(daemon) == 0);
}
