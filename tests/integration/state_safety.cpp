// State safety through the whole binary: the state dir lock, a
// corrupt database, a commit that fails while the database is locked, and
// the last Import a failure carries, which only the store keeps.
#define BOOST_TEST_MODULE state_safety
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <boost/asio/ip/tcp.hpp>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "common/daemon_harness.hpp"
#include "common/testing.hpp"
#include "net/http_server.hpp"
#include "sim/simulator.hpp"
#include "store/state_store.hpp"

namespace {

using namespace importwatch;
using namespace importwatch::testing;

bool logged(child_process const& p, std::string const& text) { return p.err().find(text) != std::string::npos; }

// `importwatch healthcheck --url URL`: 0 on 200, 1 otherwise.
int healthcheck(asio::io_context& ioc, std::string const& url) {
    child_process p({"healthcheck", "--url", url});
    return pump_until_exit(ioc, p, 20s).value_or(-1);
}

std::string const slow_import = R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: one, steps: [{ status: preparing, for: 6s }, { status: in_progress }] }
)";

std::string const steady_import = R"(
token: sim-token
imports:
  - project: p
    environment: e
    segment: s
    import_id: one
    steps: [{ status: in_progress, files: [{ filename: a.csv, status: pending }, { filename: "b\u202e.csv", status: pending }] }]
)";

/// The same import, answering 404 from `from` on.
std::string gone_from(std::string const& from) {
    return steady_import + "faults:\n  - { type: not_found, from: " + from + " }\n";
}

/// The Import an event carries, as sent: its body from `,"import":` on.
std::string import_member(hit const& h) {
    auto const at = h.body.rfind(",\"import\":");
    return at == std::string::npos ? std::string() : h.body.substr(at);
}

struct fixture {
    asio::io_context ioc;
    test_pki pki;
    temp_dir dir;
    std::string ca_file = pki.write_files(dir);
    std::string state_dir = (dir.path() / "state").string();
    std::string db_path = (dir.path() / "state" / "importwatch.db").string();
    std::unique_ptr<simulated_api> api;
    std::unique_ptr<webhook_receiver> rx;
    config_options options;
    std::string cfg;

    void setup(std::string const& scenario, config_options o = {}) {
        api = std::make_unique<simulated_api>(ioc, pki, scenario);
        rx = std::make_unique<webhook_receiver>(ioc, pki);
        o.webhooks = webhook_entry("ops", rx->url(), ca_file);
        if (o.watches.empty()) o.watches = watch_entry("vip", "one");
        options = o;
        cfg = dir.write("config.yaml", daemon_config(api->server->base_url(), ca_file, state_dir, o));
    }
    /// LaunchDarkly answers `scenario` from now on: a new simulator, and the
    /// config (for the next start) pointed at it.
    void serve(std::string const& scenario) {
        api = std::make_unique<simulated_api>(ioc, pki, scenario);
        cfg = dir.write("config.yaml", daemon_config(api->server->base_url(), ca_file, state_dir, options));
    }
    std::unique_ptr<child_process> start() {
        return std::make_unique<child_process>(std::vector<std::string>{"run", "--config", cfg}, daemon_env());
    }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(state_safety, fixture)

BOOST_AUTO_TEST_CASE(a_second_daemon_on_the_same_state_dir_exits_1_saying_it_is_locked) {
    setup(slow_import);
    auto first = start();
    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return logged(*first, "started"); }, 20s), first->err());

    child_process second({"run", "--config", cfg}, daemon_env());
    BOOST_TEST(pump_until_exit(ioc, second, 20s).value_or(-1) == 1);
    BOOST_TEST_INFO(second.err());
    BOOST_TEST(second.err().find("locked") != std::string::npos);
    BOOST_TEST(second.err().find(state_dir) != std::string::npos);

    // The outbox tool works beside the running daemon, and the first daemon carries on.
    auto [rc, listing] = outbox_tool(ioc, cfg, {"list"});
    BOOST_TEST(rc == 0, listing);
    BOOST_TEST(first->running());
    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return !rx->delivered().empty(); }, 20s), first->err());

    // Once the holder is gone (even by kill -9), the dir can be taken again.
    first->signal(SIGKILL);
    BOOST_TEST(pump_until_exit(ioc, *first, 10s).value_or(-1) == 128 + SIGKILL);
    auto third = start();
    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return logged(*third, "started"); }, 20s), third->err());
    third->signal(SIGTERM);
    BOOST_TEST(pump_until_exit(ioc, *third, 15s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(a_corrupt_database_stops_the_start_naming_the_file_and_is_left_alone) {
    setup(slow_import);
    std::string garbage;
    std::mt19937 rng(42);
    for (int i = 0; i < 16384; ++i) garbage.push_back(static_cast<char>(rng() & 0xff));
    std::string const variants[] = {
        "this is not a database\n" + garbage,
        // The SQLite header, then garbage: looks like a database until read.
        std::string("SQLite format 3\0", 16) + std::string("\x10\x00\x01\x01\x00\x40\x20\x20", 8) + garbage,
    };
    for (auto const& content : variants) {
        std::filesystem::remove_all(state_dir);
        BOOST_TEST_REQUIRE(::mkdir(state_dir.c_str(), 0700) == 0);
        dir.write("state/importwatch.db", content);

        child_process d({"run", "--config", cfg}, daemon_env());
        BOOST_TEST(pump_until_exit(ioc, d, 20s).value_or(-1) == 1);
        BOOST_TEST_INFO(d.err());
        BOOST_TEST(d.err().find(db_path) != std::string::npos);
        BOOST_TEST(read_file(db_path) == content);   // never silently replaced or "repaired"
        BOOST_TEST(api->server->requests().empty());   // it did not start polling

        auto [rc, out] = outbox_tool(ioc, cfg, {"list"});
        BOOST_TEST(rc == 1);
        BOOST_TEST(out.find(db_path) != std::string::npos, out);
        BOOST_TEST(read_file(db_path) == content);
    }
}

BOOST_AUTO_TEST_CASE(a_failed_commit_is_neither_logged_nor_sent_and_readyz_fails_until_a_commit_succeeds) {
    auto const port = free_port();
    config_options o;
    o.admin = "127.0.0.1:" + std::to_string(port);
    setup(slow_import, o);   // preparing for 6 s, then in_progress
    auto const sim_start = steady::now();
    auto const readyz = "http://127.0.0.1:" + std::to_string(port) + "/readyz";
    auto d = start();
    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return rx->delivered().size() == 1; }, 20s), d->err());
    BOOST_TEST(healthcheck(ioc, readyz) == 0);
    pump_for(ioc, 300ms);   // the delivery outcome is recorded

    // Hold the database's write lock from here, before the import moves on.
    sqlite3* db = nullptr;
    BOOST_TEST_REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    BOOST_TEST_REQUIRE(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK,
                       sqlite3_errmsg(db));
    BOOST_TEST_REQUIRE((steady::now() < sim_start + 5500ms), "too slow: the lock came after the transition");

    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return logged(*d, "cannot commit"); }, 30s), d->err());
    bool not_ready = false;
    auto const deadline = steady::now() + 30s;
    while (!not_ready && steady::now() < deadline) not_ready = healthcheck(ioc, readyz) == 1;
    BOOST_TEST(not_ready, "/readyz did not answer 503 while commits failed");
    pump_for(ioc, 1s);
    auto in_progress_logged = [&] {
        std::size_t n = 0;
        for (auto const& e : logged_events(d->err()))
            n += e.at("data").as_object().at("status").as_string() == "in_progress";
        return n;
    };
    BOOST_TEST(in_progress_logged() == 0u);
    BOOST_TEST(rx->hits.size() == 1u);   // only the first observation
    BOOST_TEST(d->running());

    // Release: the transition commits, is logged and delivered, once.
    BOOST_TEST_REQUIRE(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return rx->delivered().size() == 2; }, 30s), d->err());
    bool ready = false;
    auto const deadline2 = steady::now() + 30s;
    while (!ready && steady::now() < deadline2) ready = healthcheck(ioc, readyz) == 0;
    BOOST_TEST(ready, "/readyz did not recover after a successful commit");
    pump_for(ioc, 1s);

    BOOST_TEST(in_progress_logged() == 1u);
    auto const delivered = rx->delivered();
    BOOST_TEST_REQUIRE(delivered.size() == 2u);
    BOOST_TEST(delivered[1]->field("status") == "in_progress");
    BOOST_TEST(delivered[1]->field("previous_status") == "preparing");
    BOOST_TEST(delivered[1]->sequence() == 2u);
    BOOST_TEST(rx->attempts_of(delivered[1]->id) == 1u);
    BOOST_TEST(rx->hits.size() == 2u);

    d->signal(SIGTERM);
    BOOST_TEST(pump_until_exit(ioc, *d, 15s).value_or(-1) == 0);
}

// The daemon keeps no Import text in memory: a watch.failed (no Import came
// with the poll) carries the last one from the store, byte for byte what the
// status_changed before it carried — with or without a restart in between.
BOOST_AUTO_TEST_CASE(a_failure_carries_the_last_import_with_or_without_a_restart) {
    setup(gone_from("6s"));   // as slow_import: room for a slow start under a loaded test run
    auto d = start();
    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return rx->delivered().size() == 2; }, 30s), d->err());
    auto delivered = rx->delivered();
    BOOST_TEST_REQUIRE(delivered[0]->event.at("type") == "importwatch.import.status_changed",
                       "too slow: the first poll came after the 404s began");
    BOOST_TEST(delivered[1]->event.at("type") == "importwatch.watch.failed");
    BOOST_TEST(delivered[1]->field("reason") == "not_found");
    BOOST_TEST(delivered[1]->data().at("import").is_object());
    BOOST_TEST(import_member(*delivered[1]) == import_member(*delivered[0]));
    d->signal(SIGTERM);
    BOOST_TEST(pump_until_exit(ioc, *d, 15s).value_or(-1) == 0);

    // Recovered (the event carries the Import polled now: another simulator,
    // another creationTime), stopped; the next daemon, started from the
    // store, finds the import gone.
    serve(steady_import);
    d = start();
    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return rx->delivered().size() == 3; }, 30s), d->err());
    d->signal(SIGTERM);
    BOOST_TEST(pump_until_exit(ioc, *d, 15s).value_or(-1) == 0);
    serve(gone_from("0s"));
    d = start();
    BOOST_TEST_REQUIRE(run_until(ioc, [&] { return rx->delivered().size() == 4; }, 30s), d->err());
    delivered = rx->delivered();
    BOOST_TEST(delivered[2]->event.at("type") == "importwatch.watch.recovered");
    BOOST_TEST(delivered[3]->event.at("type") == "importwatch.watch.failed");
    BOOST_TEST(delivered[3]->sequence() == 4u);
    BOOST_TEST(import_member(*delivered[3]) == import_member(*delivered[2]));
    d->signal(SIGTERM);
    BOOST_TEST(pump_until_exit(ioc, *d, 15s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
