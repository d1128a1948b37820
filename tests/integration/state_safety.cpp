// State safety through the whole binary (SPEC §6): the state dir lock, a
// corrupt database, and a commit that fails while the database is locked.
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

std::uint16_t free_port() {
    asio::io_context ioc;
    asio::ip::tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

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

struct fixture {
    asio::io_context ioc;
    test_pki pki;
    temp_dir dir;
    std::string ca_file = pki.write_files(dir);
    std::string state_dir = (dir.path() / "state").string();
    std::string db_path = (dir.path() / "state" / "importwatch.db").string();
    std::unique_ptr<simulated_api> api;
    std::unique_ptr<webhook_receiver> rx;
    std::string cfg;

    void setup(std::string const& scenario, config_options o = {}) {
        api = std::make_unique<simulated_api>(ioc, pki, scenario);
        rx = std::make_unique<webhook_receiver>(ioc, pki);
        o.webhooks = webhook_entry("ops", rx->url(), ca_file);
        if (o.watches.empty()) o.watches = watch_entry("vip", "one");
        cfg = dir.write("config.yaml", daemon_config(api->server->base_url(), ca_file, state_dir, o));
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

BOOST_AUTO_TEST_SUITE_END()
