// Webhook delivery through the whole binary (docs/events.md), and `outbox`: signed
// CloudEvents that the Standard Webhooks verifiers accept, order per watch
// while another watch flows, the same webhook-id after restarts, 410 dead
// letters listed and replayed, and the dead-letter retention.
#define BOOST_TEST_MODULE delivery_end_to_end
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <boost/json/serialize.hpp>

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

bool logged_contains(child_process const& p, std::string const& text) { return p.err().find(text) != std::string::npos; }

// The rows of `outbox list` split into fields.
std::vector<std::vector<std::string>> outbox_table(asio::io_context& ioc, std::string const& cfg) {
    auto [rc, listing] = outbox_tool(ioc, cfg, {"list"});
    BOOST_TEST_REQUIRE(rc == 0, listing);
    std::vector<std::vector<std::string>> out;
    for (auto const& row : outbox_rows(listing)) {
        std::vector<std::string> fields;
        std::istringstream in(row);
        for (std::string f; std::getline(in, f, '\t');) fields.push_back(f);
        BOOST_TEST_REQUIRE(fields.size() == 8u, row);
        out.push_back(std::move(fields));
    }
    return out;
}
enum column { c_state, c_webhook, c_watch, c_sequence, c_event_id, c_attempts, c_next_attempt, c_last_error };

struct fixture {
    asio::io_context ioc;
    test_pki pki;
    temp_dir dir;
    std::string ca_file = pki.write_files(dir);
    webhook_receiver rx{ioc, pki};
    std::unique_ptr<simulated_api> api;
    std::string cfg;

    void setup(std::string const& scenario, config_options o) {
        api = std::make_unique<simulated_api>(ioc, pki, scenario);
        if (o.webhooks.empty()) o.webhooks = webhook_entry("ops", rx.url(), ca_file);
        cfg = dir.write("config.yaml", daemon_config(api->server->base_url(), ca_file,
                                                     (dir.path() / "state").string(), o));
    }
    void rewrite(config_options o) {
        if (o.webhooks.empty()) o.webhooks = webhook_entry("ops", rx.url(), ca_file);
        cfg = dir.write("config.yaml", daemon_config(api->server->base_url(), ca_file,
                                                     (dir.path() / "state").string(), o));
    }
    std::unique_ptr<child_process> start() {
        return std::make_unique<child_process>(std::vector<std::string>{"run", "--config", cfg}, daemon_env());
    }
    bool wait(std::function<bool()> const& done, std::chrono::milliseconds timeout = 20s) {
        return run_until(ioc, done, timeout);
    }
    void stop(std::unique_ptr<child_process>& d) {
        d->signal(SIGTERM);
        BOOST_TEST_INFO(d->err());
        BOOST_TEST(pump_until_exit(ioc, *d, 15s).value_or(-1) == 0);
        d.reset();
    }
    void kill(std::unique_ptr<child_process>& d) {
        d->signal(SIGKILL);
        BOOST_TEST(pump_until_exit(ioc, *d, 10s).value_or(-1) == 128 + SIGKILL);
        d.reset();
    }
};

std::string const one_import = R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: one, steps: [{ status: preparing, for: 2s }, { status: in_progress, for: 1s }, { status: complete }] }
)";

std::string const forever_import = R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: one, steps: [{ status: preparing }] }
)";

bool have_node_verifier() {
    auto const dir = std::filesystem::path(IMPORTWATCH_SOURCE_DIR) / "tests" / "node";
    return std::system("command -v node >/dev/null 2>&1") == 0 &&
           std::filesystem::exists(dir / "node_modules" / "standardwebhooks" / "package.json");
}

// Runs tests/node/verify.js (the `standardwebhooks` npm package) on one delivery.
int node_verify(temp_dir const& dir, std::string const& secret, hit const& h, std::string const& body) {
    json::object c;
    c["secret"] = secret;
    c["headers"] = json::object{{"webhook-id", h.id}, {"webhook-timestamp", h.timestamp},
                                {"webhook-signature", h.signature}};
    c["body"] = body;
    auto const file = dir.write("verify-case.json", json::serialize(c));
    auto const script = (std::filesystem::path(IMPORTWATCH_SOURCE_DIR) / "tests" / "node" / "verify.js").string();
    int const st = std::system(("node '" + script + "' '" + file + "' >/dev/null 2>&1").c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(delivery, fixture)

BOOST_AUTO_TEST_CASE(deliveries_are_signed_cloudevents_the_standard_verifiers_accept) {
    config_options o;
    o.watches = watch_entry("vip", "one");
    setup(one_import, o);
    auto d = start();
    BOOST_TEST_REQUIRE(wait([&] { return rx.delivered().size() >= 3; }), d->err());
    stop(d);

    auto const now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    std::vector<std::string> statuses;
    for (auto const* h : rx.delivered()) {
        BOOST_TEST_CONTEXT("event " << h->id) {
            BOOST_TEST(h->target == "/hook");
            BOOST_TEST(h->content_type == "application/cloudevents+json");
            BOOST_TEST(h->user_agent.starts_with("importwatch/"));
            BOOST_TEST(h->x_team == "ops");
            BOOST_TEST(h->event.at("specversion").as_string() == "1.0");
            BOOST_TEST(std::string(h->event.at("id").as_string()) == h->id);
            BOOST_TEST(std::abs(std::stoll(h->timestamp) - now) < 120);
            BOOST_TEST(signature_valid(h->signature, h->id, h->timestamp, h->body));
            // A different body or id does not verify: the check above means something.
            BOOST_TEST(!signature_valid(h->signature, h->id, h->timestamp, h->body + " "));
            BOOST_TEST(h->watch() == "vip");
            statuses.push_back(h->field("status"));
        }
    }
    std::vector<std::string> const expected{"preparing", "in_progress", "complete"};
    BOOST_TEST(statuses == expected, boost::test_tools::per_element());

    if (!have_node_verifier()) {
        BOOST_TEST_MESSAGE("skipped the standardwebhooks check: node or tests/node/node_modules/standardwebhooks "
                           "is missing (npm install --prefix tests/node)");
        return;
    }
    for (auto const* h : rx.delivered()) {
        BOOST_TEST(node_verify(dir, hook_secret, *h, h->body) == 0, "standardwebhooks rejects " << h->id);
        BOOST_TEST(node_verify(dir, hook_secret, *h, h->body + " ") == 1);   // tampered
    }
}

// An event is serialized once: its JSON log line carries, byte for byte, the
// body the cloudevents webhook received (the outbox row's bytes).
BOOST_AUTO_TEST_CASE(the_json_log_line_of_an_event_carries_the_delivered_body) {
    config_options o;
    o.watches = watch_entry("vip", "one");
    setup(one_import, o);
    auto d = start();
    BOOST_TEST_REQUIRE(wait([&] { return rx.delivered().size() >= 3; }), d->err());
    d->signal(SIGTERM);
    BOOST_TEST_REQUIRE(pump_until_exit(ioc, *d, 15s).value_or(-1) == 0, d->err());
    auto const log = d->err();
    BOOST_TEST_INFO(log);
    for (auto const* h : rx.delivered()) {
        BOOST_TEST_REQUIRE(h->body.starts_with("{\"specversion\":\"1.0\""));
        BOOST_TEST(log.find(",\"event\":" + h->body + "}\n") != std::string::npos, h->body);
    }
}

// One import's events to three webhooks, one per format: each receives the
// exact body its format makes, with its content type, signed over those
// bytes. A failed Slack attempt is retried with the same body and holds the
// next Slack event back, as for CloudEvents.
BOOST_AUTO_TEST_CASE(every_format_is_delivered_signed_with_its_exact_body) {
    config_options o;
    o.watches = watch_entry("vip", "one");
    o.webhooks = webhook_entry("ce", rx.url("/ce"), ca_file) + "      format: cloudevents\n" +
                 webhook_entry("chat", rx.url("/slack"), ca_file) + "      format: slack\n" +
                 webhook_entry("custom", rx.url("/template"), ca_file) +
                 "      format: template\n"
                 R"(      template: '{{"text": "{watch} is {status}", "id": "{id}", "seq": "{sequence}", )"
                 R"("was": "{previous_status}"}}')" "\n";
    setup(one_import, o);
    bool slack_failed = false;
    rx.script = [&](hit const& h) {
        if (h.target == "/slack" && !slack_failed) {
            slack_failed = true;
            return reply_with(503);
        }
        return reply_with(200);
    };
    auto d = start();
    auto hits_to = [&](std::string const& target) {
        std::vector<hit const*> out;
        for (auto const& h : rx.hits)
            if (h.target == target && h.answered == 200) out.push_back(&h);
        return out;
    };
    BOOST_TEST_REQUIRE(wait([&] {
        return hits_to("/ce").size() == 3 && hits_to("/slack").size() == 3 && hits_to("/template").size() == 3;
    }, 30s), d->err());
    stop(d);

    for (auto const& h : rx.hits) {
        BOOST_TEST_CONTEXT(h.target << " " << h.id) {
            BOOST_TEST(h.content_type == (h.target == "/ce" ? "application/cloudevents+json" : "application/json"));
            BOOST_TEST(signature_valid(h.signature, h.id, h.timestamp, h.body));
            BOOST_TEST(h.x_team == "ops");
        }
    }

    auto const base = api->server->base_url();
    auto const ce = hits_to("/ce");
    auto const slack = hits_to("/slack");
    auto const custom = hits_to("/template");
    char const* const previous[] = {nullptr, "preparing", "in_progress"};
    char const* const status[] = {"preparing", "in_progress", "complete"};
    for (std::size_t i = 0; i < 3; ++i) {
        BOOST_TEST_CONTEXT("event " << i + 1) {
            auto const& event = ce[i]->event;
            std::string const id(event.at("id").as_string());
            std::string const time(event.at("time").as_string());
            BOOST_TEST(ce[i]->field("status") == status[i]);
            BOOST_TEST(slack[i]->id == id);
            BOOST_TEST(custom[i]->id == id);
            std::string const was = previous[i] ? previous[i] : "";
            auto const seq = std::to_string(i + 1);

            BOOST_TEST(custom[i]->body == R"({"text": "vip is )" + std::string(status[i]) + R"(", "id": ")" + id +
                                              R"(", "seq": ")" + seq + R"(", "was": ")" + was + R"("})");

            std::string const summary_change = (previous[i] ? was : "none") + " -&gt; " + status[i];
            std::string const status_change =
                (previous[i] ? "`" + was + "`" : std::string("none")) + " → `" + status[i] + "`";
            BOOST_TEST(slack[i]->body ==
                       R"x({"text":"vip status )x" + summary_change + R"x( (p/e/s/one)","blocks":[)x"
                       R"x({"type":"section","text":{"type":"mrkdwn","text":"*vip* status )x" + summary_change + R"x("}},)x"
                       R"x({"type":"section","fields":[{"type":"mrkdwn","text":"*Watch*\nvip"},)x"
                       R"x({"type":"mrkdwn","text":"*Import*\n`one`"},)x"
                       R"x({"type":"mrkdwn","text":"*Status*\n)x" + status_change + R"x("},)x"
                       R"x({"type":"mrkdwn","text":"*Segment*\n<)x" + base +
                           R"x(/projects/p/segments/s/targeting?env=e&selected-env=e|p / e / s>"}]},)x"
                       R"x({"type":"context","elements":[{"type":"mrkdwn","text":"`importwatch.import.status_changed` · sequence )x" +
                           seq + " · " + time + R"x("}]}]})x");
        }
    }

    // The failed Slack attempt: the same event and bytes again, and the next
    // event only after it.
    std::vector<hit const*> slack_attempts;
    for (auto const& h : rx.hits)
        if (h.target == "/slack") slack_attempts.push_back(&h);
    BOOST_TEST_REQUIRE(slack_attempts.size() == 4u);
    BOOST_TEST(slack_attempts[0]->answered == 503);
    BOOST_TEST(slack_attempts[1]->id == slack_attempts[0]->id);
    BOOST_TEST(slack_attempts[1]->body == slack_attempts[0]->body);
    BOOST_TEST(slack_attempts[2]->id == ce[1]->id);

    if (!have_node_verifier()) {
        BOOST_TEST_MESSAGE("skipped the standardwebhooks check: node or tests/node/node_modules/standardwebhooks "
                           "is missing (npm install --prefix tests/node)");
        return;
    }
    for (auto const* h : {slack[0], custom[0]})
        BOOST_TEST(node_verify(dir, hook_secret, *h, h->body) == 0, "standardwebhooks rejects " << h->target);
}

BOOST_AUTO_TEST_CASE(a_failing_event_holds_its_watch_only) {
    config_options o;
    o.watches = watch_entry("held", "held") + watch_entry("free", "free");
    setup(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: held, steps: [{ status: preparing, for: 2s }, { status: in_progress, for: 500ms }, { status: complete }] }
  - { project: p, environment: e, segment: s, import_id: free, steps: [{ status: preparing, for: 2s }, { status: in_progress, for: 500ms }, { status: complete }] }
)", o);
    // The first attempt of held #1 fails; everything else is accepted.
    bool failed_once = false;
    rx.script = [&](hit const& h) {
        if (h.watch() == "held" && h.sequence() == 1 && !failed_once) {
            failed_once = true;
            return reply_with(503);
        }
        return reply_with(200);
    };
    auto d = start();
    auto delivered_of = [&](std::string const& watch) {
        std::vector<hit const*> out;
        for (auto const* h : rx.delivered())
            if (h->watch() == watch) out.push_back(h);
        return out;
    };
    BOOST_TEST_REQUIRE(wait([&] { return delivered_of("held").size() == 3 && delivered_of("free").size() == 3; }, 30s),
                       d->err());
    stop(d);

    std::vector<hit const*> held;
    for (auto const& h : rx.hits)
        if (h.watch() == "held") held.push_back(&h);
    BOOST_TEST_REQUIRE(held.size() == 4u);   // #1 twice, then #2 and #3
    BOOST_TEST(held[0]->sequence() == 1u);
    BOOST_TEST(held[0]->answered == 503);
    BOOST_TEST(held[1]->sequence() == 1u);
    BOOST_TEST(held[1]->id == held[0]->id);
    BOOST_TEST(held[2]->sequence() == 2u);
    BOOST_TEST(held[3]->sequence() == 3u);
    // The retry came after the schedule's first step (5 s, -10 % jitter), not before.
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(held[1]->at - held[0]->at).count() >= 4400);
    // Meanwhile the other watch was not held up: all of it arrived before held's retry.
    auto const free = delivered_of("free");
    BOOST_TEST((free.back()->at < held[1]->at));
    BOOST_TEST(free.back()->field("status") == "complete");
}

BOOST_AUTO_TEST_CASE(restarts_resume_pending_deliveries_with_the_same_webhook_id) {
    config_options o;
    o.watches = watch_entry("vip", "one");
    o.webhooks = webhook_entry("ops", rx.url(), ca_file, "30s");
    setup(forever_import, o);
    // 1st attempt hangs, then SIGTERM; 2nd hangs, then kill -9; 3rd gets 503,
    // then kill -9; the 4th, after the restart, is accepted. The hangs end
    // with the daemon, long before the webhook's 30 s timeout.
    rx.script = [&](hit const&) {
        if (rx.hits.size() < 2) {
            auto r = reply_with(200);
            r.delay = 60s;
            return r;
        }
        if (rx.hits.size() == 2) return reply_with(503);
        return reply_with(200);
    };
    auto attempts_in_store = [&] {
        auto rows = outbox_table(ioc, cfg);
        BOOST_TEST_REQUIRE(rows.size() == 1u);
        BOOST_TEST(rows[0][c_state] == "pending");
        return std::stoi(rows[0][c_attempts]);
    };

    auto d = start();
    BOOST_TEST_REQUIRE(wait([&] { return rx.hits.size() == 1; }), d->err());
    stop(d);                                  // shutdown_grace 1 s < the hang: abandoned
    BOOST_TEST(attempts_in_store() == 0);     // an attempt cut short is not a failed attempt

    d = start();
    BOOST_TEST_REQUIRE(wait([&] { return rx.hits.size() == 2; }), d->err());
    kill(d);
    BOOST_TEST(attempts_in_store() == 0);

    d = start();
    BOOST_TEST_REQUIRE(wait([&] { return rx.hits.size() == 3; }), d->err());
    // Wait for the failure to be recorded (attempts 1, next attempt ~5 s on), then crash.
    BOOST_TEST_REQUIRE(eventually([&] {
        pump_for(ioc, 50ms);
        return attempts_in_store() == 1;
    }, 10s));
    kill(d);

    d = start();
    BOOST_TEST_REQUIRE(wait([&] { return rx.hits.size() == 4; }, 20s), d->err());
    BOOST_TEST_REQUIRE(wait([&] { return outbox_table(ioc, cfg).empty(); }, 10s));
    stop(d);

    BOOST_TEST_REQUIRE(rx.hits.size() == 4u);
    for (auto const& h : rx.hits) {
        BOOST_TEST(h.id == rx.hits[0].id);
        BOOST_TEST(h.body == rx.hits[0].body);
        BOOST_TEST(signature_valid(h.signature, h.id, h.timestamp, h.body));
    }
    BOOST_TEST(rx.hits[3].answered == 200);
    // The restart kept the retry schedule: not attempted again before ~5 s after the 503.
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(rx.hits[3].at - rx.hits[2].at).count() >= 4400);
    // No event was emitted again by the restarts.
    BOOST_TEST(rx.hits[0].sequence() == 1u);
}

BOOST_AUTO_TEST_CASE(gone_makes_dead_letters_that_outbox_lists_and_replays) {
    config_options o;
    o.watches = watch_entry("vip", "one");
    setup(one_import, o);
    bool gone = true;
    rx.script = [&](hit const&) { return reply_with(gone ? 410 : 200); };
    auto d = start();
    // 410 is a dead letter at once, so the next event of the watch goes on.
    BOOST_TEST_REQUIRE(wait([&] { return rx.hits.size() == 3; }), d->err());
    BOOST_TEST_REQUIRE(wait([&] {
        auto rows = outbox_table(ioc, cfg);
        return rows.size() == 3 && std::all_of(rows.begin(), rows.end(), [](auto& r) { return r[c_state] == "dead"; });
    }, 10s));
    auto rows = outbox_table(ioc, cfg);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        BOOST_TEST(rows[i][c_webhook] == "ops");
        BOOST_TEST(rows[i][c_watch] == "vip");
        BOOST_TEST(rows[i][c_sequence] == std::to_string(i + 1));
        BOOST_TEST(rows[i][c_event_id] == rx.hits[i].id);
        BOOST_TEST(rows[i][c_attempts] == "1");
        BOOST_TEST(rows[i][c_last_error] != "-");
    }
    BOOST_TEST(logged_contains(*d, "dead letter"));
    pump_for(ioc, 1s);
    BOOST_TEST(rx.hits.size() == 3u);   // a dead letter is not retried

    {
        auto [rc, out] = outbox_tool(ioc, cfg, {"replay", "--webhook", "nope"});
        BOOST_TEST(rc == 2, out);
    }
    gone = false;
    auto [rc, out] = outbox_tool(ioc, cfg, {"replay"});
    BOOST_TEST(rc == 0);
    BOOST_TEST(out.find("replayed 3 dead letters") != std::string::npos, out);
    // The running daemon picks them up (it looks at the outbox every 5 s) and keeps their order.
    BOOST_TEST_REQUIRE(wait([&] { return rx.delivered().size() == 3; }, 20s), d->err());
    BOOST_TEST_REQUIRE(wait([&] { return outbox_table(ioc, cfg).empty(); }, 10s));
    stop(d);
    auto const delivered = rx.delivered();
    for (std::size_t i = 0; i < delivered.size(); ++i) {
        BOOST_TEST(delivered[i]->sequence() == i + 1);
        BOOST_TEST(delivered[i]->id == rx.hits[i].id);
    }
    BOOST_TEST(rx.hits.size() == 6u);
}

BOOST_AUTO_TEST_CASE(dead_letters_older_than_the_retention_are_deleted) {
    config_options o;
    o.watches = watch_entry("vip", "one");
    o.retention = "1h";
    setup(one_import, o);
    rx.script = [](hit const&) { return reply_with(410); };
    auto d = start();
    BOOST_TEST_REQUIRE(wait([&] { return rx.hits.size() == 3 && outbox_table(ioc, cfg).size() == 3; }), d->err());
    auto const dead_at = steady::now();
    stop(d);

    // Younger than the retention: kept over a restart.
    d = start();
    BOOST_TEST_REQUIRE(wait([&] { return logged_contains(*d, "started"); }), d->err());
    pump_for(ioc, 1s);
    stop(d);
    BOOST_TEST(outbox_table(ioc, cfg).size() == 3u);

    // Older than the retention (2 s): deleted when the daemon starts.
    o.retention = "2s";
    rewrite(o);
    run_until(ioc, [&] { return steady::now() > dead_at + 3s; }, 10s);
    d = start();
    BOOST_TEST_REQUIRE(wait([&] { return outbox_table(ioc, cfg).empty(); }, 15s), d->err());
    BOOST_TEST(logged_contains(*d, "deleted 3 dead letters"), d->err());
    stop(d);
    BOOST_TEST(rx.hits.size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
