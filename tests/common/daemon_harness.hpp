#pragma once
// The whole-binary harness for the durability tests (crash_recovery,
// delivery_end_to_end, state_safety): the simulator and an HTTPS webhook
// receiver in the test's io_context, the daemon as a child process, and a
// Standard Webhooks verifier written from the spec (not with importwatch's
// own signing code).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"
#include "net/http_server.hpp"
#include "sim/misbehaviour.hpp"
#include "sim/simulator.hpp"

namespace importwatch::testing {

namespace json = boost::json;
using steady = std::chrono::steady_clock;

/// v1,base64(HMAC-SHA256(key, id "." timestamp "." body)).
std::string spec_signature(std::string const& key, std::string const& id, std::string const& ts,
                           std::string const& body);
std::string base64(std::string const& bytes);

/// The webhook key (raw bytes, with a NUL and high bytes) and its whsec_ secret.
extern std::string const hook_key;
extern std::string const hook_secret;

/// Whether a webhook-signature header (space-separated list) holds the right signature.
bool signature_valid(std::string const& header, std::string const& id, std::string const& ts,
                     std::string const& body);

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
// answers what `script` says (200 by default), late or cut as it plans.
struct webhook_receiver {
    std::vector<hit> hits;
    std::function<sim::planned_reply(hit const&)> script = [](hit const&) { return sim::planned_reply{}; };
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
        auto planned = self->script(h);
        h.answered = planned.cut == sim::planned_reply::cut_t::none ? planned.reply.status : 0;
        self->hits.push_back(std::move(h));
        co_return co_await sim::deliver(std::move(planned));
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

/// A plain answer with that status and headers; the script may make it late or cut.
sim::planned_reply reply_with(int status, std::vector<std::pair<std::string, std::string>> headers = {});

// The simulator over TLS, in the test's io_context (shared with the webhook
// receiver), unlike simulated_launchdarkly, which owns its io_context.
struct simulated_api {
    asio::io_context& ioc;
    std::unique_ptr<sim::simulator> server;

    simulated_api(asio::io_context& io, test_pki const& pki, std::string const& scenario_yaml) : ioc(io) {
        sim::simulator_options o;
        o.tls = pki.server_context();
        server = make_simulator(ioc, scenario_yaml, std::move(o));
        require_started(*server);
    }
    ~simulated_api() { server->stop(); }
};

/// SIM_TOKEN and HOOK_SECRET for the child process.
std::map<std::string, std::string> daemon_env();

struct config_options {
    std::string webhooks;                 // the `events.webhooks` list items ("" = none)
    std::string watches;                  // the `watches` list items
    std::string retention = "30d";
    std::string admin = "\"\"";
    std::string interval = "100ms";
};

std::string daemon_config(std::string const& base_url, std::string const& ca_file, std::string const& state_dir,
                          config_options const& o);
std::string webhook_entry(std::string const& name, std::string const& url, std::string const& ca_file,
                          std::string const& timeout = "2s");

/// The CloudEvents the daemon logged (json log format), in order.
std::vector<json::object> logged_events(std::string const& log);

/// Runs `importwatch outbox --config CFG ARGS…` while pumping ioc; (exit code, stdout + stderr).
std::pair<int, std::string> outbox_tool(asio::io_context& ioc, std::string const& cfg,
                                        std::vector<std::string> args);
/// The rows of `outbox list` ("pending\t…" / "dead\t…").
std::vector<std::string> outbox_rows(std::string const& listing);

/// Pumps ioc until the child exits; its exit code (nullopt on timeout).
std::optional<int> pump_until_exit(asio::io_context& ioc, child_process& p, std::chrono::milliseconds timeout);
void pump_for(asio::io_context& ioc, std::chrono::milliseconds d);

} // namespace importwatch::testing
