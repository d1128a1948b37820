#define BOOST_TEST_MODULE webhook_dispatcher
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/testing.hpp"
#include "core/event.hpp"
#include "daemon/metrics.hpp"
#include "common/daemon_harness.hpp"
#include "daemon/webhook_dispatcher.hpp"
#include "net/http_server.hpp"
#include "store/state_store.hpp"

using namespace importwatch;
using namespace std::chrono_literals;
using importwatch::testing::spec_signature;
using steady = std::chrono::steady_clock;
using outcome = store::state_store::outcome;

namespace {

struct received {
    net::server_request request;
    steady::time_point at;
    std::string const& header(std::string const& name) const {
        static std::string const none = "<missing>";
        auto const* h = request.header(name);
        return h ? *h : none;
    }
};

// A webhook receiver: records every request and answers as `script` says.
// A `hang` reply keeps the request open that long before answering.
struct receiver {
    struct answer {
        int status = 200;
        std::vector<std::pair<std::string, std::string>> headers;
        std::chrono::milliseconds hang{0};
    };
    std::vector<received> requests;
    std::function<answer(net::server_request const&)> script = [](auto const&) { return answer{}; };
    int active = 0;
    int max_active = 0;

    std::vector<received> to(std::string const& target) const {
        std::vector<received> out;
        for (auto const& r : requests)
            if (r.request.target == target) out.push_back(r);
        return out;
    }
};

receiver::answer answer_with(int status, std::vector<std::pair<std::string, std::string>> headers = {},
                             std::chrono::milliseconds hang = 0ms) {
    receiver::answer a;
    a.status = status;
    a.headers = std::move(headers);
    a.hang = hang;
    return a;
}

asio::awaitable<net::server_reply> handle(receiver* rx, net::server_request request) {
    rx->requests.push_back({request, steady::now()});
    auto a = rx->script(request);
    ++rx->active;
    rx->max_active = std::max(rx->max_active, rx->active);
    if (a.hang > 0ms) {
        asio::steady_timer t(co_await asio::this_coro::executor, a.hang);
        co_await t.async_wait(asio::use_awaitable);
    }
    --rx->active;
    net::server_reply reply;
    reply.status = a.status;
    reply.headers = a.headers;
    reply.body = "ok";
    co_return reply;
}

std::int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

core::sys_ms wall_now() { return std::chrono::time_point_cast<core::milliseconds>(std::chrono::system_clock::now()); }

struct fixture {
    asio::io_context ioc;
    testing::temp_dir tmp;
    testing::test_pki pki;
    std::string ca_file;
    receiver rx;
    std::unique_ptr<net::http_server> server;
    std::unique_ptr<store::state_store> st;
    daemon::metrics counters;
    std::unique_ptr<daemon::webhook_dispatcher> dispatcher;
    bool run_done = false;
    std::string const key = std::string("\x01\x02\xfe\xff secret key \x00 bytes", 24);

    fixture() {
        ca_file = pki.write_files(tmp);
        net::server_options options;
        options.tls = pki.server_context();
        server = std::make_unique<net::http_server>(ioc.get_executor(), options,
                                                    [this](net::server_request r) { return handle(&rx, std::move(r)); });
        auto started = server->start();
        BOOST_TEST_REQUIRE(started.has_value(), (started ? std::string() : started.error()));
        open_store();
    }

    ~fixture() {
        if (dispatcher) stop_dispatcher(0ms);
        server->stop();
        ioc.run_for(50ms);
    }

    void open_store() {
        auto s = store::state_store::open((tmp.path() / "state").string(), store::open_mode::daemon);
        BOOST_TEST_REQUIRE(s.has_value(), (s ? std::string() : s.error()));
        st = std::move(*s);
    }

    daemon::webhook_target target(std::string name, std::string path, bool signed_ = true) const {
        daemon::webhook_target t;
        t.config.name = std::move(name);
        t.config.url = "https://127.0.0.1:" + std::to_string(server->port()) + path;
        t.config.ca_file = ca_file;
        t.config.timeout = 10s;
        t.config.headers = {{"X-Team", "ops"}};
        if (signed_) t.key = key;
        return t;
    }

    void start_dispatcher(std::vector<daemon::webhook_target> targets) {
        dispatcher = std::make_unique<daemon::webhook_dispatcher>(ioc.get_executor(), *st, counters, "importwatch/test");
        dispatcher->configure(std::move(targets));
        run_done = false;
        asio::co_spawn(ioc, dispatcher->run(), [this](std::exception_ptr e) {
            run_done = true;
            BOOST_TEST(!e);
        });
    }

    void stop_dispatcher(std::chrono::milliseconds grace) {
        bool stopped = false;
        asio::co_spawn(ioc, dispatcher->stop(grace), [&](std::exception_ptr e) {
            stopped = true;
            BOOST_TEST(!e);
        });
        BOOST_TEST(testing::run_until(ioc, [&] { return stopped && run_done; }, grace + 5s));
        dispatcher.reset();
    }

    // Commits event `seq` of `watch` to `webhooks`; returns its id.
    std::string commit(std::string const& watch, std::uint64_t seq, std::vector<std::string> webhooks) {
        core::event e;
        e.id = "evt-" + watch + "-" + std::to_string(seq);
        e.type = "importwatch.import.status_changed";
        e.sequence = seq;
        e.body = R"({"specversion":"1.0","id":")" + e.id + R"(","data":{"watch":")" + watch +
                 R"(","sequence":)" + std::to_string(seq) + "}}";
        core::watch_state state;
        state.status = "in_progress";
        state.sequence = seq;
        store::routed_event to_webhooks{&e, {}};
        for (auto const& w : webhooks) to_webhooks.payloads.push_back({w, "application/cloudevents+json", e.body});
        std::vector<store::routed_event> routed{std::move(to_webhooks)};
        auto r = st->commit(watch, watch, state, routed, wall_now());
        BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error()));
        if (dispatcher) dispatcher->notify();
        return e.id;
    }

    std::vector<store::delivery> outbox() {
        auto rows = st->list_outbox();
        BOOST_TEST_REQUIRE(rows.has_value());
        return *rows;
    }

    std::optional<store::delivery> row_of(std::string const& event_id, std::string const& webhook = "ops") {
        for (auto const& d : outbox())
            if (d.event_id == event_id && d.webhook == webhook) return d;
        return std::nullopt;
    }

    bool wait(std::function<bool()> const& done, std::chrono::milliseconds timeout = 10s) {
        return testing::run_until(ioc, done, timeout);
    }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(webhook_dispatcher_suite, fixture)

BOOST_AUTO_TEST_CASE(posts_a_signed_cloudevent) {
    start_dispatcher({target("ops", "/hook?token=abc"), target("plain", "/plain", false)});
    auto id = commit("p/e/s/a", 1, {"ops", "plain"});
    BOOST_TEST_REQUIRE(wait([&] { return outbox().empty(); }));

    auto hook = rx.to("/hook?token=abc");
    BOOST_TEST_REQUIRE(hook.size() == 1u);
    auto const& r = hook.front();
    BOOST_TEST(r.request.method == "POST");
    BOOST_TEST(r.header("content-type") == "application/cloudevents+json");
    BOOST_TEST(r.header("webhook-id") == id);
    BOOST_TEST(r.header("user-agent") == "importwatch/test");
    BOOST_TEST(r.header("x-team") == "ops");
    BOOST_TEST(r.request.body.find(R"("id":")" + id + "\"") != std::string::npos);
    auto const& ts = r.header("webhook-timestamp");
    BOOST_TEST_REQUIRE(ts.find_first_not_of("0123456789") == std::string::npos);
    BOOST_TEST(std::llabs(std::stoll(ts) - unix_seconds()) <= 5);
    BOOST_TEST(r.header("webhook-signature") == spec_signature(key, id, ts, r.request.body));

    auto plain = rx.to("/plain");
    BOOST_TEST_REQUIRE(plain.size() == 1u);
    BOOST_TEST(plain.front().request.header("webhook-signature") == nullptr);
    BOOST_TEST(plain.front().header("webhook-id") == id);

    BOOST_TEST(counters.webhooks["ops"].delivered == 1u);
    BOOST_TEST(counters.webhooks["plain"].delivered == 1u);
    BOOST_TEST(counters.webhooks["ops"].failed == 0u);
}

BOOST_AUTO_TEST_CASE(server_error_is_retried_after_about_five_seconds) {
    int calls = 0;
    rx.script = [&](auto const&) { return answer_with(++calls == 1 ? 500 : 200); };
    start_dispatcher({target("ops", "/hook")});
    auto id = commit("p/e/s/a", 1, {"ops"});

    BOOST_TEST_REQUIRE(wait([&] { return counters.webhooks["ops"].failed == 1u; }));
    auto row = row_of(id);
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST(row->attempts == 1);
    BOOST_TEST(row->last_error == "HTTP 500");
    auto const delay = row->next_attempt - wall_now();
    BOOST_TEST(delay > 4000ms);
    BOOST_TEST(delay <= 5500ms);

    BOOST_TEST_REQUIRE(wait([&] { return outbox().empty(); }, 10s));
    BOOST_TEST_REQUIRE(rx.requests.size() == 2u);
    auto const gap = rx.requests[1].at - rx.requests[0].at;
    BOOST_TEST(gap >= 4400ms);
    BOOST_TEST(gap <= 7000ms);
    BOOST_TEST(rx.requests[1].header("webhook-id") == id);
    BOOST_TEST(counters.webhooks["ops"].delivered == 1u);
}

BOOST_AUTO_TEST_CASE(gone_is_a_dead_letter_at_once) {
    rx.script = [](auto const&) { return answer_with(410); };
    start_dispatcher({target("ops", "/hook")});
    auto id = commit("p/e/s/a", 1, {"ops"});
    auto id2 = commit("p/e/s/a", 2, {"ops"});
    // The dead letter does not block event 2, which is attempted (and dies) next.
    BOOST_TEST_REQUIRE(wait([&] { return counters.webhooks["ops"].dead == 2u; }));
    auto row = row_of(id);
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST(row->dead);
    BOOST_TEST(row->attempts == 1);
    BOOST_TEST(row->last_error.find("410") != std::string::npos);
    BOOST_TEST(row_of(id2)->dead);
    BOOST_TEST(rx.requests.size() == 2u);
    BOOST_TEST(rx.requests[0].header("webhook-id") == id);
    BOOST_TEST(counters.webhooks["ops"].failed == 0u);
}

BOOST_AUTO_TEST_CASE(redirect_is_not_followed_but_retried) {
    rx.script = [](net::server_request const& r) {
        if (r.target == "/hook") return answer_with(302, {{"Location", "/elsewhere"}});
        return answer_with(200);
    };
    start_dispatcher({target("ops", "/hook")});
    auto id = commit("p/e/s/a", 1, {"ops"});
    BOOST_TEST_REQUIRE(wait([&] { return counters.webhooks["ops"].failed == 1u; }));
    // Give a follow-up request the chance to show up, if one were sent.
    wait([] { return false; }, 300ms);
    BOOST_TEST(rx.requests.size() == 1u);
    BOOST_TEST(rx.to("/elsewhere").empty());
    auto row = row_of(id);
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST(!row->dead);
    BOOST_TEST(row->attempts == 1);
    BOOST_TEST(row->last_error.find("302") != std::string::npos, row->last_error);
    BOOST_TEST(counters.webhooks["ops"].delivered == 0u);
}

BOOST_AUTO_TEST_CASE(events_of_one_watch_stay_in_order_while_others_flow) {
    bool a1_fails = true;
    rx.script = [&](net::server_request const& r) {
        auto const* id = r.header("webhook-id");
        if (id && *id == "evt-A-1" && a1_fails) return answer_with(503);
        return answer_with(200);
    };
    start_dispatcher({target("ops", "/hook")});
    auto a1 = commit("A", 1, {"ops"});
    auto a2 = commit("A", 2, {"ops"});
    auto b1 = commit("B", 1, {"ops"});
    auto b2 = commit("B", 2, {"ops"});

    BOOST_TEST_REQUIRE(wait([&] { return counters.webhooks["ops"].delivered == 2u && counters.webhooks["ops"].failed == 1u; }));
    wait([] { return false; }, 300ms);
    std::vector<std::string> ids;
    for (auto const& r : rx.requests) ids.push_back(r.header("webhook-id"));
    BOOST_TEST(std::count(ids.begin(), ids.end(), a2) == 0);   // A2 waits for A1
    BOOST_TEST(std::count(ids.begin(), ids.end(), b1) == 1);
    BOOST_TEST(std::count(ids.begin(), ids.end(), b2) == 1);
    BOOST_TEST((std::find(ids.begin(), ids.end(), b1) < std::find(ids.begin(), ids.end(), b2)));
    BOOST_TEST(row_of(a2)->attempts == 0);

    // Make A1 due now (instead of waiting 5 s) and let it succeed: A2 follows.
    a1_fails = false;
    auto row = row_of(a1);
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST_REQUIRE(st->record({outcome::retry(row->id, row->attempts, wall_now(), row->last_error)}).has_value());
    dispatcher->notify();
    BOOST_TEST_REQUIRE(wait([&] { return outbox().empty(); }));
    ids.clear();
    for (auto const& r : rx.requests) ids.push_back(r.header("webhook-id"));
    auto last_a1 = std::find(ids.rbegin(), ids.rend(), a1);
    auto first_a2 = std::find(ids.begin(), ids.end(), a2);
    BOOST_TEST_REQUIRE((first_a2 != ids.end()));
    BOOST_TEST((ids.rend() - last_a1 - 1) < (first_a2 - ids.begin()));
}

BOOST_AUTO_TEST_CASE(slow_webhook_holds_only_itself) {
    rx.script = [](net::server_request const& r) {
        if (r.target == "/slow") return answer_with(200, {}, 30s);
        return answer_with(200);
    };
    start_dispatcher({target("slow", "/slow"), target("fast", "/fast")});
    for (int w = 0; w < 6; ++w) commit("W" + std::to_string(w), 1, {"slow", "fast"});
    BOOST_TEST_REQUIRE(wait([&] { return counters.webhooks["fast"].delivered == 6u; }));
    BOOST_TEST_REQUIRE(wait([&] { return rx.to("/slow").size() >= 4u; }));
    wait([] { return false; }, 300ms);
    BOOST_TEST(rx.to("/slow").size() == 4u);    // at most 4 in flight per webhook
    BOOST_TEST(dispatcher->in_flight() == 4u);

    stop_dispatcher(100ms);
    // Abandoned, not failed: all six still pending, untouched.
    auto rows = outbox();
    BOOST_TEST(rows.size() == 6u);
    for (auto const& d : rows) {
        BOOST_TEST(d.webhook == "slow");
        BOOST_TEST(d.attempts == 0);
        BOOST_TEST(!d.dead);
    }
    BOOST_TEST(counters.webhooks["slow"].failed == 0u);
}

BOOST_AUTO_TEST_CASE(stop_abandons_and_restart_resumes_with_the_same_id) {
    bool hang = true;
    rx.script = [&](auto const&) { return answer_with(200, {}, hang ? 30s : 0ms); };
    start_dispatcher({target("ops", "/hook")});
    auto id = commit("p/e/s/a", 1, {"ops"});
    BOOST_TEST_REQUIRE(wait([&] { return rx.requests.size() == 1u; }));
    auto before = row_of(id);
    BOOST_TEST_REQUIRE(before.has_value());

    auto const t0 = steady::now();
    stop_dispatcher(300ms);
    BOOST_TEST((steady::now() - t0) < 3s);
    auto after = row_of(id);
    BOOST_TEST_REQUIRE(after.has_value());
    BOOST_TEST(after->attempts == 0);
    BOOST_TEST(after->last_error.empty());
    BOOST_TEST((after->next_attempt == before->next_attempt));
    BOOST_TEST(counters.webhooks["ops"].failed == 0u);

    // Restart: close the store (releasing the lock) and open it again.
    st.reset();
    open_store();
    hang = false;
    start_dispatcher({target("ops", "/hook")});
    BOOST_TEST_REQUIRE(wait([&] { return outbox().empty(); }));
    BOOST_TEST_REQUIRE(rx.requests.size() == 2u);
    BOOST_TEST(rx.requests[1].header("webhook-id") == id);
    BOOST_TEST(rx.requests[1].request.body == rx.requests[0].request.body);
    BOOST_TEST(counters.webhooks["ops"].delivered == 1u);
}

BOOST_AUTO_TEST_CASE(unconfigured_webhook_rows_are_left_alone) {
    start_dispatcher({target("ops", "/hook")});
    auto id = commit("p/e/s/a", 1, {"gone"});
    commit("p/e/s/a", 2, {"ops"});
    BOOST_TEST_REQUIRE(wait([&] { return counters.webhooks["ops"].delivered == 1u; }));
    auto row = row_of(id, "gone");
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST(row->attempts == 0);
    BOOST_TEST(rx.requests.size() == 1u);

    // Configuring it later picks the row up.
    dispatcher->configure({target("ops", "/hook"), target("gone", "/gone")});
    BOOST_TEST_REQUIRE(wait([&] { return outbox().empty(); }));
    BOOST_TEST(rx.to("/gone").size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
