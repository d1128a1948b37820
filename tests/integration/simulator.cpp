#define BOOST_TEST_MODULE simulator
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "common/testing.hpp"
#include "core/time.hpp"
#include "core/url.hpp"
#include "net/http_client.hpp"
#include "sim/scenario.hpp"
#include "sim/simulator.hpp"

using namespace importwatch;
using namespace std::chrono_literals;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

std::string const import_target = "/api/v2/segments/default/production/vip-users/imports/imp-1";
std::string const other_target = "/api/v2/segments/default/staging/other/imports/imp-2";

// Two imports: imp-1 (from `steps`, with `faults`) and imp-2 (always ready).
std::string scenario_yaml(std::string const& steps, std::string const& import_faults = "",
                          std::string const& global_faults = "", std::string const& token_line = "") {
    return token_line +
           "imports:\n"
           "  - project: default\n"
           "    environment: production\n"
           "    segment: vip-users\n"
           "    import_id: imp-1\n"
           "    mode: replace\n"
           "    steps: " + steps + "\n" +
           (import_faults.empty() ? "" : "    faults: " + import_faults + "\n") +
           "  - project: default\n"
           "    environment: staging\n"
           "    segment: other\n"
           "    import_id: imp-2\n"
           "    steps: [{status: ready}]\n" +
           (global_faults.empty() ? "" : "faults: " + global_faults + "\n");
}

std::string const complete_steps = "[{status: complete}]";

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct sim_fixture {
    asio::io_context ioc;
    testing::test_pki pki;
    std::unique_ptr<sim::simulator> sim;
    std::unique_ptr<net::http_client> client;
    steady::time_point before_start, after_start;

    void start(std::string const& yaml, double speed = 1.0) {
        auto sc = sim::parse_scenario(yaml, "test.yaml");
        BOOST_TEST_REQUIRE(sc.has_value(), (sc ? "" : sc.error()));
        sim::simulator_options options;
        options.tls = pki.server_context();
        options.speed = speed;
        sim = std::make_unique<sim::simulator>(ioc.get_executor(), std::move(*sc), options);
        before_start = steady::now();
        auto started = sim->start();
        after_start = steady::now();
        BOOST_TEST_REQUIRE(started.has_value(), (started ? "" : started.error()));
        BOOST_TEST_REQUIRE(sim->port() != 0);
        BOOST_TEST(sim->base_url() == "https://127.0.0.1:" + std::to_string(sim->port()));

        auto origin = core::parse_url(sim->base_url());
        BOOST_TEST_REQUIRE(origin.has_value());
        net::client_options co;
        co.origin = *origin;
        co.tls = pki.client_context();
        co.max_connections = 1;
        co.timeout = 5s;
        co.user_agent = "simulator-test";
        client = std::make_unique<net::http_client>(ioc.get_executor(), co);
    }

    core::http_outcome send(std::string const& target, std::optional<std::string> token = {},
                            std::string method = "GET") {
        net::client_request req;
        req.method = std::move(method);
        req.target = target;
        if (token) req.headers.emplace_back("Authorization", *token);
        req.headers.emplace_back("Accept", "application/json");
        static constexpr std::string_view kept[] = {"Content-Type", "Date", "Retry-After", "X-Ratelimit-Reset",
                                                    "X-Ratelimit-Global-Remaining", "X-Ratelimit-Route-Remaining"};
        req.keep_headers = kept;
        std::optional<core::http_outcome> result;
        // http_outcome has no default state, so the coroutine stores it itself.
        auto run = [](net::http_client& c, net::client_request r,
                      std::optional<core::http_outcome>& out) -> asio::awaitable<void> {
            out.emplace(co_await c.send(std::move(r)));
        };
        asio::co_spawn(ioc, run(*client, std::move(req), result), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        bool const done = testing::run_until(ioc, [&] { return result.has_value(); }, 10s);
        BOOST_TEST_REQUIRE(done);
        return std::move(*result);
    }

    core::http_reply get(std::string const& target, std::optional<std::string> token = {}) {
        auto outcome = send(target, std::move(token));
        BOOST_TEST_REQUIRE(outcome.has_value(), (outcome ? "" : outcome.error().message));
        return *outcome;
    }

    ~sim_fixture() {
        if (client) client->shutdown();
        if (sim) sim->stop();
        ioc.run_for(50ms);
    }
};

json::object body_object(core::http_reply const& r) {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    BOOST_TEST_REQUIRE(!ec, "body is not JSON: " << r.body.substr(0, 200));
    BOOST_TEST_REQUIRE(v.is_object());
    return v.as_object();
}

void check_error_body(core::http_reply const& r, int status, std::string const& code, std::string const& message) {
    BOOST_TEST(r.status == status);
    BOOST_TEST(r.header("Content-Type").value_or("") == "application/json");
    auto o = body_object(r);
    BOOST_TEST(o["code"] == json::value(code));
    BOOST_TEST(o["message"] == json::value(message));
    BOOST_TEST_REQUIRE(o.contains("id"));
    BOOST_TEST(o["id"].is_string());
    BOOST_TEST(!o["id"].as_string().empty());
}

std::string status_of(core::http_reply const& r) {
    auto o = body_object(r);
    BOOST_TEST_REQUIRE(o["status"].is_string());
    return std::string(o["status"].as_string());
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(simulator, sim_fixture)

BOOST_AUTO_TEST_CASE(import_object_and_headers) {
    start(scenario_yaml("[{status: preparing, for: 1h, files: [{filename: a.csv, status: pending}]}, "
                        "{status: complete}]"));
    auto const before = now_ms();
    auto r = get(import_target);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.header("Content-Type").value_or("") == "application/json");
    auto o = body_object(r);
    BOOST_TEST(o["id"] == json::value("imp-1"));
    BOOST_TEST(o["segmentKey"] == json::value("vip-users"));
    BOOST_TEST(o["mode"] == json::value("replace"));
    BOOST_TEST(o["status"] == json::value("preparing"));
    BOOST_TEST_REQUIRE(o["creationTime"].is_int64());
    // creationTime is the simulator's start: just before our request, in epoch ms.
    BOOST_TEST(o["creationTime"].as_int64() <= before + 5);
    BOOST_TEST(o["creationTime"].as_int64() > before - 60'000);
    BOOST_TEST(o["files"] == json::parse(R"([{"filename":"a.csv","status":"pending"}])"));
    BOOST_TEST(o["_links"] == json::parse(R"({"self":{"href":")" + import_target +
                                          R"(","type":"application/json"}})"));

    // A Date header within a couple of seconds of our clock.
    BOOST_TEST_REQUIRE(r.header("Date").has_value());
    auto date = core::parse_http_date(*r.header("Date"));
    BOOST_TEST_REQUIRE(date.has_value());
    BOOST_TEST(std::abs(date->time_since_epoch().count() - now_ms()) < 2000);
    // Everyday rate-limit headers: plenty left, a reset in the future.
    BOOST_TEST_REQUIRE(r.header("X-Ratelimit-Global-Remaining").has_value());
    BOOST_TEST(std::stoll(std::string(*r.header("X-Ratelimit-Global-Remaining"))) > 100);
    BOOST_TEST_REQUIRE(r.header("X-Ratelimit-Route-Remaining").has_value());
    BOOST_TEST(std::stoll(std::string(*r.header("X-Ratelimit-Route-Remaining"))) > 10);
    BOOST_TEST_REQUIRE(r.header("X-Ratelimit-Reset").has_value());
    BOOST_TEST(std::stoll(std::string(*r.header("X-Ratelimit-Reset"))) >= before);

    // A step without files has no "files" key at all.
    auto o2 = body_object(get(other_target));
    BOOST_TEST(o2["status"] == json::value("ready"));
    BOOST_TEST(o2["mode"] == json::value("merge"));
    BOOST_TEST(!o2.contains("files"));
}

BOOST_AUTO_TEST_CASE(statuses_progress_with_speed) {
    // 40 s per step at speed 100: 400 ms of real time each.
    start(scenario_yaml("[{status: preparing, for: 40s, files: [{filename: a.csv, status: pending}]}, "
                        "{status: in_progress, for: 40s, files: [{filename: a.csv, status: processing}]}, "
                        "{status: complete, files: [{filename: a.csv, status: complete}]}]"),
          100.0);
    std::vector<std::string> seen;
    std::optional<steady::duration> in_progress_at, complete_at;
    auto const deadline = steady::now() + 10s;
    while (steady::now() < deadline) {
        auto const sent = steady::now();
        auto r = get(import_target);
        // The server answered before we received it, and started no earlier than before_start.
        auto const latest = steady::now() - before_start;
        BOOST_TEST_REQUIRE(r.status == 200);
        auto o = body_object(r);
        auto status = std::string(o["status"].as_string());
        auto file_status = std::string(o["files"].as_array()[0].as_object()["status"].as_string());
        if (seen.empty() || seen.back() != status) {
            seen.push_back(status);
            if (status == "in_progress") in_progress_at = latest;
            if (status == "complete") complete_at = latest;
            if (status != "preparing")
                BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(sent - after_start).count() < 5000);
        }
        BOOST_TEST(file_status == (status == "preparing" ? "pending" : status == "in_progress" ? "processing" : "complete"));
        if (status == "complete") break;
        testing::run_until(ioc, [] { return false; }, 20ms);
    }
    BOOST_TEST(seen == (std::vector<std::string>{"preparing", "in_progress", "complete"}), boost::test_tools::per_element());
    // Scaled, not real: in_progress after >= 400 ms but well before 40 s.
    BOOST_TEST_REQUIRE(in_progress_at.has_value());
    BOOST_TEST_REQUIRE(complete_at.has_value());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(*in_progress_at).count() >= 400);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(*complete_at).count() >= 800);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(*complete_at).count() < 5000);
    // The last step lasts forever.
    testing::run_until(ioc, [] { return false; }, 100ms);
    BOOST_TEST(status_of(get(import_target)) == "complete");
}

BOOST_AUTO_TEST_CASE(token_checked_and_replaceable) {
    start(scenario_yaml(complete_steps, "", "", "token: sim-token\n"));
    check_error_body(get(import_target), 401, "unauthorized", "Invalid access token");
    check_error_body(get(import_target, "wrong"), 401, "unauthorized", "Invalid access token");
    check_error_body(get(import_target, "Bearer sim-token"), 401, "unauthorized", "Invalid access token");
    BOOST_TEST(get(import_target, "sim-token").status == 200);

    sim->set_token("rotated");
    BOOST_TEST(get(import_target, "sim-token").status == 401);
    BOOST_TEST(get(import_target, "rotated").status == 200);
    sim->set_token(std::nullopt);
    BOOST_TEST(get(import_target).status == 200);
}

BOOST_AUTO_TEST_CASE(unknown_resources_and_methods) {
    start(scenario_yaml(complete_steps));
    check_error_body(get("/api/v2/segments/default/production/vip-users/imports/nope"), 404, "not_found",
                     "Invalid resource identifier");
    check_error_body(get("/api/v2/flags/default"), 404, "not_found", "Invalid resource identifier");
    check_error_body(get("/api/v2/segments/default/production/vip-users/imports/imp-1/extra"), 404, "not_found",
                     "Invalid resource identifier");
    // A query string does not change the resource.
    BOOST_TEST(get(import_target + "?x=1").status == 200);
    auto post = send(import_target, std::nullopt, "POST");
    BOOST_TEST_REQUIRE(post.has_value());
    BOOST_TEST(post->status == 405);
}

BOOST_AUTO_TEST_CASE(rate_limit_with_headers_and_count) {
    start(scenario_yaml(complete_steps, "", "[{type: rate_limit, count: 1, retry_after: 2s, reset_in: 3s}]"));
    auto const before = now_ms();
    auto r = get(import_target);
    auto const after = now_ms();
    check_error_body(r, 429, "rate_limited", "You've exceeded the API rate limit. Try again later.");
    BOOST_TEST(r.header("Retry-After").value_or("") == "2");
    BOOST_TEST(r.header("X-Ratelimit-Global-Remaining").value_or("") == "0");
    BOOST_TEST_REQUIRE(r.header("X-Ratelimit-Reset").has_value());
    auto const reset = std::stoll(std::string(*r.header("X-Ratelimit-Reset")));
    BOOST_TEST(reset >= before + 3000);
    BOOST_TEST(reset <= after + 3000);
    // count: 1 is used up.
    auto ok = get(import_target);
    BOOST_TEST(ok.status == 200);
    BOOST_TEST(ok.header("X-Ratelimit-Global-Remaining").value_or("0") != "0");

    auto const& recs = sim->requests();
    BOOST_TEST_REQUIRE(recs.size() == 2u);
    BOOST_TEST(recs[0].status == 429);
    BOOST_TEST(recs[0].fault == "rate_limit");
    BOOST_TEST(recs[0].target == import_target);
    BOOST_TEST(recs[1].status == 200);
    BOOST_TEST(recs[1].fault == "");
}

BOOST_AUTO_TEST_CASE(rate_limit_retry_after_as_http_date) {
    start(scenario_yaml(complete_steps, "", "[{type: rate_limit, retry_after: 3s, retry_after_date: true}]"));
    auto const before = now_ms();
    auto r = get(import_target);
    BOOST_TEST(r.status == 429);
    BOOST_TEST_REQUIRE(r.header("Retry-After").has_value());
    auto at = core::parse_http_date(*r.header("Retry-After"));
    BOOST_TEST_REQUIRE(at.has_value(), "not an HTTP-date: " << *r.header("Retry-After"));
    // Rounded up to whole seconds, never earlier than 3 s from now.
    BOOST_TEST(at->time_since_epoch().count() >= before + 3000 - 1000);
    BOOST_TEST(at->time_since_epoch().count() <= now_ms() + 4000);
    BOOST_TEST(!r.header("X-Ratelimit-Reset").has_value());
}

BOOST_AUTO_TEST_CASE(remaining_zero_is_a_normal_answer) {
    start(scenario_yaml(complete_steps, "", "[{type: remaining_zero, reset_in: 2s, count: 1}]"));
    auto const before = now_ms();
    auto r = get(import_target);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(status_of(r) == "complete");
    BOOST_TEST(r.header("X-Ratelimit-Route-Remaining").value_or("") == "0");
    BOOST_TEST_REQUIRE(r.header("X-Ratelimit-Reset").has_value());
    auto const reset = std::stoll(std::string(*r.header("X-Ratelimit-Reset")));
    BOOST_TEST(reset >= before + 2000);
    BOOST_TEST(reset <= now_ms() + 2000);
    BOOST_TEST(get(import_target).header("X-Ratelimit-Route-Remaining").value_or("0") != "0");
}

BOOST_AUTO_TEST_CASE(server_error_status_and_body) {
    start(scenario_yaml(complete_steps, "", "[{type: server_error, status: 503}]"));
    auto r = get(import_target);
    BOOST_TEST(r.status == 503);
    BOOST_TEST(body_object(r).contains("code"));
    BOOST_TEST(sim->requests().back().status == 503);
}

BOOST_AUTO_TEST_CASE(reset_is_a_network_failure) {
    start(scenario_yaml(complete_steps, "[{type: reset}]"));
    auto outcome = send(import_target);
    BOOST_TEST_REQUIRE(!outcome.has_value());
    BOOST_TEST((outcome.error().kind == core::failure_kind::network), outcome.error().message);
    BOOST_TEST_REQUIRE(!sim->requests().empty());
    for (auto const& rec : sim->requests()) {
        BOOST_TEST(rec.status == 0);
        BOOST_TEST(rec.fault == "reset");
    }
    // Only imp-1 has the fault.
    BOOST_TEST(get(other_target).status == 200);
}

BOOST_AUTO_TEST_CASE(truncate_is_a_network_failure) {
    start(scenario_yaml(complete_steps, "[{type: truncate, count: 1}]"));
    auto outcome = send(import_target);
    BOOST_TEST_REQUIRE(!outcome.has_value());
    BOOST_TEST((outcome.error().kind == core::failure_kind::network), outcome.error().message);
    BOOST_TEST(sim->requests().back().status == 200);
    BOOST_TEST(sim->requests().back().fault == "truncate");
    BOOST_TEST(get(import_target).status == 200);
}

BOOST_AUTO_TEST_CASE(oversized_exceeds_the_client_limit) {
    start(scenario_yaml(complete_steps, "[{type: oversized, count: 1}]"));
    auto outcome = send(import_target);
    BOOST_TEST_REQUIRE(!outcome.has_value());
    BOOST_TEST((outcome.error().kind == core::failure_kind::invalid_response), outcome.error().message);
    BOOST_TEST(get(import_target).status == 200);
}

BOOST_AUTO_TEST_CASE(body_faults) {
    start(scenario_yaml(complete_steps, "[{type: malformed, count: 1}, {type: unknown_status, count: 1}, "
                                        "{type: invalid_field, count: 1}]"));
    // malformed: a 200 whose body is not JSON.
    auto r = get(import_target);
    BOOST_TEST(r.status == 200);
    BOOST_TEST(!r.body.empty());
    boost::system::error_code ec;
    json::parse(r.body, ec);
    BOOST_TEST(static_cast<bool>(ec), "body parsed: " << r.body);

    auto unknown = body_object(get(import_target));
    BOOST_TEST(unknown["status"] == json::value("mystery_status"));
    BOOST_TEST(unknown["creationTime"].is_int64());

    auto invalid = body_object(get(import_target));
    BOOST_TEST(invalid["status"] == json::value("complete"));
    BOOST_TEST(invalid["creationTime"].is_string());

    BOOST_TEST(status_of(get(import_target)) == "complete");
}

BOOST_AUTO_TEST_CASE(error_status_faults) {
    start(scenario_yaml(complete_steps, "[{type: unauthorized, count: 1}, {type: forbidden, count: 1}, "
                                        "{type: not_found, count: 1}, {type: bad_request, count: 1}]"));
    check_error_body(get(import_target), 401, "unauthorized", "Invalid access token");
    auto forbidden = get(import_target);
    BOOST_TEST(forbidden.status == 403);
    BOOST_TEST(body_object(forbidden)["code"] == json::value("forbidden"));
    check_error_body(get(import_target), 404, "not_found", "Invalid resource identifier");
    auto bad = get(import_target);
    BOOST_TEST(bad.status == 400);
    BOOST_TEST(body_object(bad)["code"] == json::value("invalid_request"));
    BOOST_TEST(get(import_target).status == 200);
}

BOOST_AUTO_TEST_CASE(delay_is_real_time_not_scaled) {
    // Even at speed 100 the delay is 300 ms of real time.
    start(scenario_yaml(complete_steps, "", "[{type: delay, delay: 300ms, count: 1}]"), 100.0);
    auto const t0 = steady::now();
    auto r = get(import_target);
    auto const slow = steady::now() - t0;
    BOOST_TEST(r.status == 200);
    BOOST_TEST(status_of(r) == "complete");
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(slow).count() >= 300);
    auto const t1 = steady::now();
    BOOST_TEST(get(import_target).status == 200);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t1).count() < 300);
}

BOOST_AUTO_TEST_CASE(fault_window_is_scaled_by_speed) {
    // [10 s, 20 s) of scenario time at speed 100 = [100 ms, 200 ms) of real time.
    start(scenario_yaml(complete_steps, "", "[{type: server_error, status: 502, from: 10s, until: 20s}]"), 100.0);
    bool saw_fault = false, saw_after = false;
    auto const deadline = steady::now() + 5s;
    while (steady::now() < deadline && !saw_after) {
        auto const sent = steady::now();
        auto r = get(import_target);
        auto const received = steady::now();
        // The server handled it somewhere in [sent - after_start, received - before_start].
        auto const earliest = std::chrono::duration_cast<std::chrono::milliseconds>(sent - after_start).count();
        auto const latest = std::chrono::duration_cast<std::chrono::milliseconds>(received - before_start).count();
        BOOST_TEST_CONTEXT("request between " << earliest << " and " << latest << " ms") {
            if (r.status == 502) {
                saw_fault = true;
                BOOST_TEST(latest >= 100);
                BOOST_TEST(earliest < 200);
            } else {
                BOOST_TEST(r.status == 200);
                BOOST_TEST(!(earliest >= 100 && latest < 200));
                if (earliest >= 200) saw_after = true;
            }
        }
        testing::run_until(ioc, [] { return false; }, 5ms);
    }
    BOOST_TEST(saw_fault);
    BOOST_TEST(saw_after);
}

BOOST_AUTO_TEST_CASE(count_limits_a_probable_fault) {
    start(scenario_yaml(complete_steps, "", "[{type: server_error, status: 500, probability: 0.5, count: 3}]"));
    int faults = 0;
    for (int i = 0; i < 40; ++i)
        if (get(import_target).status == 500) ++faults;
    BOOST_TEST(faults == 3);
}

BOOST_AUTO_TEST_CASE(probability_applies_to_a_share) {
    start(scenario_yaml(complete_steps, "", "[{type: server_error, status: 500, probability: 0.3}]"));
    int faults = 0;
    int const n = 200;
    for (int i = 0; i < n; ++i)
        if (get(import_target).status == 500) ++faults;
    // 0.3 * 200 = 60; the seeded generator keeps this deterministic, the range
    // only says "a share", not all or none.
    BOOST_TEST(faults > 30);
    BOOST_TEST(faults < 90);
}

BOOST_AUTO_TEST_CASE(import_faults_come_before_global_ones) {
    start(scenario_yaml(complete_steps, "[{type: forbidden, count: 1}]", "[{type: server_error, status: 503, count: 2}]"));
    BOOST_TEST(get(import_target).status == 403);   // the import's own fault first
    BOOST_TEST(get(import_target).status == 503);   // then the global one
    BOOST_TEST(get(other_target).status == 503);    // global faults hit every import
    BOOST_TEST(get(other_target).status == 200);    // count 2 used up
    BOOST_TEST(get(import_target).status == 200);
}

BOOST_AUTO_TEST_CASE(requests_are_recorded_in_order) {
    start(scenario_yaml(complete_steps, "", "", "token: t\n"));
    auto const wall_before = std::chrono::system_clock::now();
    get(import_target, "t");
    get(other_target);
    get("/api/v2/segments/default/production/vip-users/imports/none", "t");
    auto const& recs = sim->requests();
    BOOST_TEST_REQUIRE(recs.size() == 3u);
    BOOST_TEST(recs[0].target == import_target);
    BOOST_TEST(recs[0].method == "GET");
    BOOST_TEST(recs[0].status == 200);
    BOOST_TEST(recs[1].target == other_target);
    BOOST_TEST(recs[1].status == 401);
    BOOST_TEST(recs[2].status == 404);
    BOOST_TEST((recs[0].at >= wall_before - 1s));
    BOOST_TEST((recs[0].at <= recs[1].at));
    BOOST_TEST((recs[1].at <= recs[2].at));
    BOOST_TEST((recs[2].at <= std::chrono::system_clock::now()));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(simulate_command)

BOOST_AUTO_TEST_CASE(serves_https_logs_requests_and_stops_on_sigterm) {
    testing::temp_dir dir;
    testing::test_pki pki;
    pki.write_files(dir);
    auto const scenario_file = dir.write("s.yaml", scenario_yaml(complete_steps, "", "", "token: t\n"));
    testing::child_process child({"simulate", "--listen", "127.0.0.1:0", "--scenario", scenario_file, "--tls-cert",
                                  (dir.path() / "server.pem").string(), "--tls-key",
                                  (dir.path() / "server.key").string()});
    std::string const prefix = "simulating LaunchDarkly on https://127.0.0.1:";
    BOOST_TEST_REQUIRE(testing::eventually([&] { return child.out().find(" imports)\n") != std::string::npos; }),
                       "stdout: " << child.out() << "\nstderr: " << child.err());
    auto const out = child.out();
    BOOST_TEST_REQUIRE(out.starts_with(prefix), out);
    auto const port = out.substr(prefix.size(), out.find(' ', prefix.size()) - prefix.size());
    BOOST_TEST(out == prefix + port + " (2 imports)\n");

    asio::io_context ioc;
    auto origin = core::parse_url("https://127.0.0.1:" + port);
    BOOST_TEST_REQUIRE(origin.has_value());
    net::client_options co;
    co.origin = *origin;
    co.tls = pki.client_context();
    co.timeout = 5s;
    net::http_client client(ioc.get_executor(), co);
    std::optional<core::http_outcome> result;
    auto run = [](net::http_client& c, std::optional<core::http_outcome>& out) -> asio::awaitable<void> {
        net::client_request req;
        req.target = import_target;
        req.headers.emplace_back("Authorization", "t");
        out.emplace(co_await c.send(std::move(req)));
    };
    asio::co_spawn(ioc, run(client, result), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    BOOST_TEST_REQUIRE(testing::run_until(ioc, [&] { return result.has_value(); }));
    BOOST_TEST_REQUIRE(result->has_value(), (*result ? "" : (*result).error().message));
    BOOST_TEST((**result).status == 200);
    client.shutdown();
    ioc.run_for(20ms);

    BOOST_TEST(testing::eventually([&] { return child.err().find("GET " + import_target + " -> 200") != std::string::npos; }),
               child.err());
    child.signal(SIGTERM);
    auto code = child.wait(5s);
    BOOST_TEST_REQUIRE(code.has_value());
    BOOST_TEST(*code == 0);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
    testing::temp_dir dir;
    auto const good = dir.write("good.yaml", scenario_yaml(complete_steps));
    auto const bad = dir.write("bad.yaml", "imports: []\n");
    struct usage_case {
        std::string name;
        std::vector<std::string> args;
        std::string message;
    };
    std::vector<usage_case> const cases{
        {"bad listen", {"simulate", "--listen", "127.0.0.1", "--scenario", good},
         "importwatch: --listen: expected HOST:PORT, got \"127.0.0.1\"\n"},
        {"port out of range", {"simulate", "--listen", "127.0.0.1:70000", "--scenario", good},
         "importwatch: --listen: expected HOST:PORT, got \"127.0.0.1:70000\"\n"},
        {"bad scenario", {"simulate", "--listen", "127.0.0.1:0", "--scenario", bad},
         "importwatch: " + bad + ":1:10: imports: needs at least one import\n"},
        {"missing scenario", {"simulate", "--listen", "127.0.0.1:0", "--scenario", dir.path().string() + "/none.yaml"},
         "importwatch: " + dir.path().string() + "/none.yaml: cannot read the scenario file: No such file or directory\n"},
        {"cert without key", {"simulate", "--listen", "127.0.0.1:0", "--scenario", good, "--tls-cert", good},
         "importwatch: --tls-cert and --tls-key go together\n"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            testing::child_process child(c.args);
            auto code = child.wait(10s);
            BOOST_TEST_REQUIRE(code.has_value());
            BOOST_TEST(*code == 2);
            BOOST_TEST(child.err() == c.message);
            BOOST_TEST(child.out().empty());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
