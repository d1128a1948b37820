// Webhook delivery through the whole binary (SPEC §5, §1 `outbox`): signed
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
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/testing.hpp"
#include "net/http_server.hpp"
#include "sim/simulator.hpp"
#include "store/state_store.hpp"

namespace {

// ---------------------------------------------------------------------------
// Not every file uses every helper below.
#pragma GCC diagnostic ignored "-Wunused-function"

// Shared by the whole-binary durability tests (crash_recovery,
// delivery_end_to_end, state_safety): the simulator and an HTTPS webhook
// receiver in this process's io_context, the daemon as a child process.

using namespace importwatch;
using namespace importwatch::testing;
using steady = std::chrono::steady_clock;
namespace json = boost::json;

// Standard Webhooks, written from the spec (not with importwatch's signing
// code): v1,base64(HMAC-SHA256(key, id "." timestamp "." body)), key = the
// base64-decoded part of the secret after "whsec_".
std::string base64(std::string const& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<unsigned char const*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string spec_signature(std::string const& key, std::string const& id, std::string const& ts,
                           std::string const& body) {
    auto const message = id + "." + ts + "." + body;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<unsigned char const*>(message.data()), message.size(), mac, &mac_len);
    return "v1," + base64(std::string(reinterpret_cast<char const*>(mac), mac_len));
}

// The webhook key (raw bytes, with a NUL and high bytes) and its secret.
std::string const hook_key = std::string("\x00\x17\xfe\xff importwatch test key \x80\x01", 30);
std::string const hook_secret = "whsec_" + base64(hook_key);

// A signature header may list several space-separated signatures.
bool signature_valid(std::string const& header, std::string const& id, std::string const& ts,
                     std::string const& body) {
    auto const want = spec_signature(hook_key, id, ts, body);
    std::istringstream in(header);
    for (std::string sig; in >> sig;)
        if (sig == want) return true;
    return false;
}

// One request the receiver got, and what it answered.
struct hit {
    std::string target, id, timestamp, signature, content_type, user_agent, x_team, body;
    steady::time_point at;
    int answered = 0;                  // status, or 0 for a reset / a hang past the client's timeout
    json::object event;                // the parsed CloudEvent (empty when the body is not JSON)
    json::object const& data() const { return event.at("data").as_object(); }
    std::string watch() const { return std::string(data().at("watch").as_string()); }
    std::uint64_t sequence() const { return data().at("sequence").to_number<std::uint64_t>(); }
    std::string field(char const* name) const {
        auto const* v = data().if_contains(name);
        return v && v->is_string() ? std::string(v->as_string()) : std::string(v && v->is_null() ? "null" : "");
    }
};

// An HTTPS webhook receiver on 127.0.0.1 that records every request and
// answers what `script` says (200 by default).
struct webhook_receiver {
    std::vector<hit> hits;
    std::function<net::server_reply(hit const&)> script = [](hit const&) { return net::server_reply{}; };
    std::unique_ptr<net::http_server> server;

    webhook_receiver(asio::io_context& ioc, test_pki const& pki) {
        net::server_options o;
        o.tls = pki.server_context();
        server = std::make_unique<net::http_server>(ioc.get_executor(), o, [this](net::server_request r) {
            return handle(this, std::move(r));
        });
        auto started = server->start();
        BOOST_TEST_REQUIRE(started.has_value(), (started ? std::string() : started.error()));
    }
    ~webhook_receiver() { server->stop(); }

    static asio::awaitable<net::server_reply> handle(webhook_receiver* self, net::server_request r) {
        hit h;
        auto header = [&](char const* name) {
            auto const* v = r.header(name);
            return v ? *v : std::string();
        };
        h.target = r.target;
        h.id = header("webhook-id");
        h.timestamp = header("webhook-timestamp");
        h.signature = header("webhook-signature");
        h.content_type = header("content-type");
        h.user_agent = header("user-agent");
        h.x_team = header("x-team");
        h.body = r.body;
        h.at = steady::now();
        boost::system::error_code ec;
        auto v = json::parse(h.body, ec);
        if (!ec && v.is_object()) h.event = v.as_object();
        auto reply = self->script(h);
        h.answered = reply.fault == net::server_reply::fault_t::none ? reply.status : 0;
        self->hits.push_back(std::move(h));
        co_return reply;
    }

    std::string url(std::string const& path = "/hook") const {
        return "https://127.0.0.1:" + std::to_string(server->port()) + path;
    }

    // Requests that carried an event (any answer), in arrival order.
    std::vector<hit const*> events() const {
        std::vector<hit const*> out;
        for (auto const& h : hits)
            if (!h.event.empty()) out.push_back(&h);
        return out;
    }
    // Distinct events (by webhook-id) that were answered 2xx, in order of first such answer.
    std::vector<hit const*> delivered() const {
        std::vector<hit const*> out;
        std::set<std::string> ids;
        for (auto const& h : hits)
            if (h.answered >= 200 && h.answered < 300 && !h.event.empty() && ids.insert(h.id).second)
                out.push_back(&h);
        return out;
    }
    std::size_t attempts_of(std::string const& id) const {
        std::size_t n = 0;
        for (auto const& h : hits) n += h.id == id;
        return n;
    }
};

net::server_reply reply_with(int status, std::vector<std::pair<std::string, std::string>> headers = {}) {
    net::server_reply r;
    r.status = status;
    r.headers = std::move(headers);
    r.body = "answer";
    return r;
}

// The simulator over TLS, in the test's io_context.
struct simulated_api {
    asio::io_context& ioc;
    std::unique_ptr<sim::simulator> server;

    simulated_api(asio::io_context& io, test_pki const& pki, std::string const& scenario_yaml) : ioc(io) {
        auto sc = sim::parse_scenario(scenario_yaml, "test-scenario.yaml");
        BOOST_TEST_REQUIRE(sc.has_value(), (sc ? std::string() : sc.error()));
        sim::simulator_options o;
        o.tls = pki.server_context();
        server = std::make_unique<sim::simulator>(ioc.get_executor(), *sc, o);
        auto started = server->start();
        BOOST_TEST_REQUIRE(started.has_value(), (started ? std::string() : started.error()));
    }
    ~simulated_api() { server->stop(); }
};

std::map<std::string, std::string> daemon_env() {
    return {{"SIM_TOKEN", "sim-token"}, {"HOOK_SECRET", hook_secret}};
}

struct config_options {
    std::string webhooks;                 // the `events.webhooks` list items ("" = none)
    std::string watches;                  // the `watches` list items
    std::string retention = "30d";
    std::string admin = "\"\"";
    std::string interval = "100ms";
};

std::string daemon_config(std::string const& base_url, std::string const& ca_file, std::string const& state_dir,
                          config_options const& o) {
    std::string c = "launchdarkly:\n  base_url: " + base_url + "\n  ca_file: " + ca_file +
                    "\n  token_env: SIM_TOKEN\n  max_requests_per_second: 0\n"
                    "polling:\n  interval: " + o.interval +
                    "\n  jitter: 0\n  backoff: { initial: 100ms, max: 1s, multiplier: 2 }\n"
                    "events:\n  log: { format: json, level: info }\n";
    if (!o.webhooks.empty()) c += "  webhooks:\n" + o.webhooks;
    c += "state:\n  dir: " + state_dir + "\n  dead_letter_retention: " + o.retention + "\n";
    c += "admin:\n  listen: " + o.admin + "\n";
    c += "shutdown_grace: 1s\n";
    c += "watches:\n" + o.watches;
    return c;
}

std::string webhook_entry(std::string const& name, std::string const& url, std::string const& ca_file,
                          std::string const& timeout = "2s") {
    return "    - name: " + name + "\n      url: " + url + "\n      secret_env: HOOK_SECRET\n      ca_file: " +
           ca_file + "\n      timeout: " + timeout + "\n      headers: { X-Team: ops }\n";
}

std::string watch_entry(std::string const& name, std::string const& import_id) {
    return "  - { name: " + name + ", project: p, environment: e, segment: s, import_id: " + import_id + " }\n";
}

// The CloudEvents the daemon logged (json log format), in order.
std::vector<json::object> logged_events(std::string const& log) {
    std::vector<json::object> out;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        if (ec || !v.is_object()) continue;
        if (auto const* e = v.as_object().if_contains("event"); e && e->is_object()) out.push_back(e->as_object());
    }
    return out;
}

// Runs `importwatch outbox --config CFG ARGS…` while pumping ioc; (exit code, stdout + stderr).
std::pair<int, std::string> outbox_tool(asio::io_context& ioc, std::string const& cfg,
                                        std::vector<std::string> args) {
    std::vector<std::string> argv{"outbox", "--config", cfg};
    argv.insert(argv.end(), args.begin(), args.end());
    child_process p(argv, daemon_env());
    run_until(ioc, [&] { return !p.running(); }, 30s);
    return {p.wait(0ms).value_or(-1), p.out() + p.err()};
}

// The rows of `outbox list` ("pending\t…" / "dead\t…").
std::vector<std::string> outbox_rows(std::string const& listing) {
    std::vector<std::string> out;
    std::istringstream in(listing);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("pending\t") || line.starts_with("dead\t")) out.push_back(line);
    return out;
}

// Pumps ioc until the child exits; its exit code (nullopt on timeout).
std::optional<int> pump_until_exit(asio::io_context& ioc, child_process& p, std::chrono::milliseconds timeout) {
    run_until(ioc, [&] { return !p.running(); }, timeout);
    return p.wait(0ms);
}

void pump_for(asio::io_context& ioc, std::chrono::milliseconds d) {
    run_until(ioc, [] { return false; }, d);
}
// ---------------------------------------------------------------------------

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
  - { project: p, environment: e, segment: s, import_id: one, steps: [{ status: preparing, for: 400ms }, { status: in_progress, for: 400ms }, { status: complete }] }
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

BOOST_AUTO_TEST_CASE(a_failing_event_holds_its_watch_only) {
    config_options o;
    o.watches = watch_entry("held", "held") + watch_entry("free", "free");
    setup(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: held, steps: [{ status: preparing, for: 300ms }, { status: in_progress, for: 300ms }, { status: complete }] }
  - { project: p, environment: e, segment: s, import_id: free, steps: [{ status: preparing, for: 300ms }, { status: in_progress, for: 300ms }, { status: complete }] }
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
