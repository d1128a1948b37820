// kill -9 at random moments, over many cycles, while imports move and the
// webhook receiver flaps (docs/events.md, "Durability"): every event arrives at least once,
// in order per watch, with gap-free sequences, and nothing is emitted twice.
#define BOOST_TEST_MODULE crash_recovery
#include <boost/test/unit_test.hpp>

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

// Imports that move all through the kill loop: statuses up to in_progress,
// then one file change per step, then a terminal status. Different step
// lengths so the watches' transitions interleave.
struct import_plan {
    std::string name, id, terminal;
    int step_ms;
};

std::vector<import_plan> const four_plans{
    {"alpha", "imp-alpha", "complete", 275},
    {"bravo", "imp-bravo", "complete", 325},
    {"charlie", "imp-charlie", "stopped", 375},
    {"delta", "imp-delta", "complete", 425},
};
constexpr int files_per_import = 12;

/// Twelve imports moving in step (three step lengths): at every 100 ms poll
/// most of them change together, so their decisions share a group commit
/// (max_connections 8) and the kills land on groups being written.
std::vector<import_plan> twelve_in_step() {
    std::vector<import_plan> out;
    for (int i = 0; i < 12; ++i)
        out.push_back({"w" + std::to_string(i), "imp-w" + std::to_string(i), i % 3 ? "complete" : "stopped",
                       300 + 50 * (i % 3)});
    return out;
}

std::string crash_scenario(std::vector<import_plan> const& plans) {
    std::string y = "token: sim-token\nimports:\n";
    for (auto const& p : plans) {
        y += "  - project: p\n    environment: e\n    segment: s\n    import_id: " + p.id + "\n    steps:\n";
        std::vector<std::string> files(files_per_import, "pending");
        auto step = [&](std::string const& status, bool last = false) {
            y += "      - { status: " + status;
            if (!last) y += ", for: " + std::to_string(p.step_ms) + "ms";
            y += ", files: [";
            for (int f = 0; f < files_per_import; ++f)
                y += std::string(f ? ", " : "") + "{ filename: f" + std::to_string(10 + f) + ".csv, status: " +
                     files[static_cast<std::size_t>(f)] + " }";
            y += "] }\n";
        };
        step("preparing");
        step("pending_approval");
        step("ready");
        step("in_progress");
        for (auto& f : files) {
            f = "processing";
            step("in_progress");
            f = "complete";
            step("in_progress");
        }
        step(p.terminal, true);
    }
    return y;
}

/// Kills the daemon (`max_connections` to LaunchDarkly) with -9 fifty times
/// while `plans` move, then checks what the receiver got.
void kill_cycles(std::vector<import_plan> const& plans, int max_connections) {
    asio::io_context ioc;
    test_pki pki;
    temp_dir dir;
    auto const ca_file = pki.write_files(dir);
    simulated_api api(ioc, pki, crash_scenario(plans));
    webhook_receiver rx(ioc, pki);

    // The receiver flaps: for 1 s of every 8 s it fails, each request in one
    // of five ways in turn. A delivery that fails there is retried 5 s later
    // (6 s after a Retry-After: 6), which lands in a healthy stretch, so no
    // delivery reaches the 30 s step of the retry schedule and the test stays
    // short. Healthy answers take 0-80 ms, so kills often cut attempts short.
    auto const phase_start = steady::now();
    bool healthy = false;
    std::size_t failures_answered = 0;
    std::mt19937 answer_rng(7);
    rx.script = [&](hit const&) {
        auto const t = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - phase_start);
        auto const within = t.count() % 8'000;
        if (healthy || within < 1'000 || within >= 2'000) {
            auto r = reply_with(200);
            r.delay = std::chrono::milliseconds(answer_rng() % 80);
            return r;
        }
        switch (failures_answered++ % 5) {
        case 0: return reply_with(503, {{"Retry-After", "6"}});
        case 1: {
            auto r = reply_with(200);
            r.cut = sim::planned_reply::cut_t::reset;
            return r;
        }
        case 2: {
            auto r = reply_with(200);   // too late: the webhook's timeout is 1 s
            r.delay = 2500ms;
            return r;
        }
        case 3: return reply_with(500);
        default: return reply_with(302, {{"Location", "https://127.0.0.1:1/elsewhere"}});
        }
    };

    config_options o;
    o.webhooks = webhook_entry("ops", rx.url(), ca_file, "1s");
    for (auto const& p : plans) o.watches += watch_entry(p.name, p.id);
    auto config = daemon_config(api.server->base_url(), ca_file, (dir.path() / "state").string(), o);
    std::string const rate = "max_requests_per_second: 0\n";
    config.insert(config.find(rate) + rate.size(), "  max_connections: " + std::to_string(max_connections) + "\n");
    auto const cfg = dir.write("config.yaml", config);

    auto const seed = std::random_device{}();
    BOOST_TEST_MESSAGE("crash_recovery seed " << seed);
    std::mt19937 rng(seed);
    // Each run polls a few times (every 100 ms) before its kill; the fifty
    // runs span the imports' 8-12 s, so kills land on every kind of step.
    std::uniform_int_distribution<int> work_ms(50, 350);

    std::vector<json::object> logged;   // every event any daemon instance logged
    std::size_t kills_with_delivery_in_flight = 0;
    int const cycles = 50;
    for (int cycle = 0; cycle < cycles; ++cycle) {
        auto const err_file = (dir.path() / ("run-" + std::to_string(cycle) + ".err")).string();
        auto const hits_before = rx.hits.size();
        {
            child_process d({"run", "--config", cfg}, daemon_env(), (dir.path() / "run.out").string(), err_file);
            pump_for(ioc, std::chrono::milliseconds(work_ms(rng)));
            BOOST_TEST_REQUIRE(d.running(), "cycle " << cycle << ": the daemon exited by itself:\n"
                                                     << read_file(err_file));
            d.signal(SIGKILL);
            BOOST_TEST_REQUIRE(pump_until_exit(ioc, d, 10s).value_or(-1) == 128 + SIGKILL);
        }
        if (rx.hits.size() > hits_before) ++kills_with_delivery_in_flight;
        for (auto& e : logged_events(read_file(err_file))) logged.push_back(std::move(e));
    }
    auto const crash_phase = steady::now() - phase_start;

    // A last run with a healthy receiver, until every watch's terminal event
    // has been delivered and the outbox is empty.
    healthy = true;
    auto const err_file = (dir.path() / "final.err").string();
    child_process last({"run", "--config", cfg}, daemon_env(), (dir.path() / "run.out").string(), err_file);
    auto all_terminal = [&] {
        std::set<std::string> done;
        for (auto const* h : rx.delivered())
            if (h->data().at("terminal").as_bool()) done.insert(h->watch());
        return done.size() == plans.size();
    };
    bool drained = false;
    auto const final_deadline = steady::now() + 75s;
    while (!drained && steady::now() < final_deadline) {
        run_until(ioc, all_terminal, 1s);
        if (!all_terminal()) continue;
        auto [rc, listing] = outbox_tool(ioc, cfg, {"list"});
        BOOST_TEST_REQUIRE(rc == 0, listing);
        drained = outbox_rows(listing).empty();
    }
    BOOST_TEST_INFO(read_file(err_file));
    BOOST_TEST_REQUIRE(drained, "the outbox did not drain with a healthy receiver");
    last.signal(SIGTERM);
    BOOST_TEST(pump_until_exit(ioc, last, 15s).value_or(-1) == 0);
    for (auto& e : logged_events(read_file(err_file))) logged.push_back(std::move(e));

    BOOST_TEST_MESSAGE("crash phase " << std::chrono::duration_cast<std::chrono::milliseconds>(crash_phase).count()
                                      << " ms, " << rx.hits.size() << " requests, " << rx.delivered().size()
                                      << " distinct events delivered, " << failures_answered
                                      << " failures answered, " << kills_with_delivery_in_flight
                                      << " cycles with deliveries, " << logged.size() << " events logged");

    // Every request is signed per the spec and carries its own event.
    std::map<std::string, std::string> body_of;   // webhook-id -> body
    for (auto const& h : rx.hits) {
        BOOST_TEST_REQUIRE(!h.event.empty(), "a request without a CloudEvent: " << h.body);
        BOOST_TEST(signature_valid(h.signature, h.id, h.timestamp, h.body), "bad signature on " << h.id);
        BOOST_TEST(std::string(h.event.at("id").as_string()) == h.id);
        auto [it, fresh] = body_of.emplace(h.id, h.body);
        BOOST_TEST((fresh || it->second == h.body), "event " << h.id << " changed between attempts");
    }

    // Per watch: order of first arrival, sequences 1..N, no gap, no repeat.
    std::map<std::string, std::vector<hit const*>> first_arrivals;   // by watch
    {
        std::set<std::string> seen;
        for (auto const& h : rx.hits)
            if (seen.insert(h.id).second) first_arrivals[h.watch()].push_back(&h);
    }
    BOOST_TEST(first_arrivals.size() == plans.size());
    std::map<std::string, std::uint64_t> received_count;
    for (auto const& p : plans) {
        auto const& events = first_arrivals[p.name];
        BOOST_TEST_CONTEXT("watch " << p.name) {
            BOOST_TEST_REQUIRE(!events.empty());
            received_count[p.name] = events.size();
            for (std::size_t i = 0; i < events.size(); ++i)
                BOOST_TEST(events[i]->sequence() == i + 1, "event #" << i + 1 << " arrived with sequence "
                                                                     << events[i]->sequence());
            // The first observation, then a consistent chain of statuses and of file statuses:
            // nothing lost in between, and nothing emitted twice (a restart never re-emits).
            BOOST_TEST(events.front()->event.at("type").as_string() == "importwatch.import.status_changed");
            BOOST_TEST(events.front()->field("previous_status") == "null");
            std::string status;
            std::map<std::string, std::string> file_status;
            // The files as first observed: every file pending, unless the
            // first poll that got committed came late (a loaded machine).
            for (auto const& f : events.front()->data().at("import").as_object().at("files").as_array())
                file_status[std::string(f.at("filename").as_string())] = std::string(f.at("status").as_string());
            std::set<std::tuple<std::string, std::string, std::string, std::string>> transitions;
            for (auto const* e : events) {
                auto const type = std::string(e->event.at("type").as_string());
                if (type == "importwatch.import.status_changed") {
                    if (!status.empty()) BOOST_TEST(e->field("previous_status") == status);
                    status = e->field("status");
                    BOOST_TEST(transitions.insert({type, "", e->field("previous_status"), status}).second,
                               "status " << status << " emitted twice");
                } else {
                    BOOST_TEST(type == "importwatch.import.file_status_changed");
                    auto const file = e->field("filename");
                    auto const prev = e->field("previous_file_status");
                    if (file_status.contains(file)) BOOST_TEST(prev == file_status[file]);
                    else BOOST_TEST(prev == "pending");
                    file_status[file] = e->field("file_status");
                    BOOST_TEST(transitions.insert({type, file, prev, file_status[file]}).second,
                               "file " << file << " -> " << file_status[file] << " emitted twice");
                }
            }
            BOOST_TEST(events.back()->data().at("terminal").as_bool());
            BOOST_TEST(events.back()->field("status") == p.terminal);
            BOOST_TEST(status == p.terminal);
        }
    }

    // Ordering as delivered: an attempt of event N+1 only after event N was answered 2xx.
    {
        std::map<std::string, std::uint64_t> highest_delivered;   // by watch
        for (auto const& h : rx.hits) {
            auto const seq = h.sequence();
            BOOST_TEST(seq <= highest_delivered[h.watch()] + 1,
                       h.watch() << " #" << seq << " was attempted before #" << seq - 1 << " was delivered");
            if (h.answered >= 200 && h.answered < 300)
                highest_delivered[h.watch()] = std::max(highest_delivered[h.watch()], seq);
        }
    }

    // Everything any daemon logged (so: committed) was delivered, with the same id.
    std::set<std::string> delivered_ids;
    for (auto const* h : rx.delivered()) delivered_ids.insert(h->id);
    for (auto const& e : logged) {
        auto const id = std::string(e.at("id").as_string());
        BOOST_TEST(delivered_ids.contains(id), "logged event " << id << " was never delivered");
        auto it = body_of.find(id);
        if (it != body_of.end()) BOOST_TEST(json::parse(it->second).as_object() == e);
    }
    BOOST_TEST(delivered_ids.size() == body_of.size());   // everything attempted was delivered in the end

    // The store agrees: each watch's sequence is the last one received, and it is terminal.
    auto st = store::state_store::open((dir.path() / "state").string(), store::open_mode::tool);
    BOOST_TEST_REQUIRE(st.has_value(), (st ? std::string() : st.error()));
    auto watches = (*st)->load_watches();
    BOOST_TEST_REQUIRE(watches.has_value());
    for (auto const& p : plans) {
        auto it = watches->find("p/e/s/" + p.id);
        BOOST_TEST_REQUIRE((it != watches->end()));
        BOOST_TEST(it->second.sequence == received_count[p.name]);
        BOOST_TEST(it->second.status.value_or("none") == p.terminal);
    }
    auto rows = (*st)->list_outbox();
    BOOST_TEST_REQUIRE(rows.has_value());
    BOOST_TEST(rows->empty());
}

} // namespace

BOOST_AUTO_TEST_CASE(fifty_kill_9_cycles_lose_nothing_and_repeat_nothing) { kill_cycles(four_plans, 2); }

// The same while groups of decisions commit together: a kill during a group's
// transaction loses none of it and half of it is never seen.
BOOST_AUTO_TEST_CASE(kill_9_during_group_commits_loses_nothing_and_repeats_nothing) {
    kill_cycles(twelve_in_step(), 8);
}
