#define BOOST_TEST_MODULE failure_text
#include <boost/test/unit_test.hpp>

// Each kind of failed request, produced by a real server on 127.0.0.1 and
// read by the real client, rendered for people exactly once: the text the
// poller logs after "watch NAME: ", the watch.failed event it leads to, and
// what a webhook delivery records. Pins the texts so a second prefix
// ("timeout: timeout: …") or a lost one cannot come back unnoticed.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include "common/scripted_random.hpp"
#include "common/testing.hpp"
#include "core/delivery_policy.hpp"
#include "core/poll_decision.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"

namespace iw = importwatch;
namespace net = importwatch::net;
namespace core = importwatch::core;
namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

enum class behaviour { never_answer, reset, answer };

/// A plain TCP server: reads one request head, then answers `reply` bytes,
/// resets the connection, or holds it open without a word.
struct raw_server {
    raw_server(asio::io_context& ioc, behaviour b, std::string reply = {})
        : acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0}), how(b), bytes(std::move(reply)) {
        asio::co_spawn(ioc, serve(), [](std::exception_ptr) {});
    }
    ~raw_server() {
        boost::system::error_code ec;
        acceptor.close(ec);
        if (held) held->close(ec);
    }
    asio::awaitable<void> serve() {
        auto [aec, socket] = co_await acceptor.async_accept(use_tuple);
        if (aec) co_return;
        std::string head;
        auto [rec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(head), "\r\n\r\n", use_tuple);
        (void)n;
        if (rec) co_return;
        boost::system::error_code ec;
        switch (how) {
        case behaviour::never_answer: held = std::make_unique<tcp::socket>(std::move(socket)); break;
        case behaviour::reset:
            socket.set_option(asio::socket_base::linger(true, 0), ec);   // close() sends RST
            socket.close(ec);
            break;
        case behaviour::answer:
            co_await asio::async_write(socket, asio::buffer(bytes), use_tuple);
            socket.shutdown(tcp::socket::shutdown_send, ec);
            break;
        }
    }
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }

    tcp::acceptor acceptor;
    behaviour how;
    std::string bytes;
    std::unique_ptr<tcp::socket> held;
};

std::string response(std::string status_line, std::string body) {
    return "HTTP/1.1 " + status_line + "\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

struct fixture {
    asio::io_context ioc;
    iw::testing::test_pki pki;
    core::watch_config watch;
    core::polling_config polling;
    std::string const base_url = "https://app.launchdarkly.com";
    iw::testing::scripted_random rng{{0.5}};
    core::sys_ms const now = core::sys_ms{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}} + 19h;

    fixture() {
        watch.name = "vip";
        watch.key = {"default", "production", "vip-users", "imp-1"};
    }

    core::http_outcome get(std::uint16_t port, bool tls, std::shared_ptr<net::ssl::context> trust = {}) {
        net::client_options o;
        o.origin = core::url{tls ? "https" : "http", "127.0.0.1", std::to_string(port), "/", false};
        if (tls) o.tls = trust ? trust : pki.client_context();
        o.timeout = 300ms;
        net::http_client client(ioc.get_executor(), o);
        net::client_request request;
        request.target = "/api/v2/segments/default/production/vip-users/imports/imp-1";
        std::optional<core::http_outcome> out;
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { out = co_await client.send(std::move(request)); },
            [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
        BOOST_REQUIRE_MESSAGE(iw::testing::run_until(ioc, [&] { return out.has_value(); }, 5s),
                              "the request did not finish");
        return std::move(*out);
    }

    /// Polls with `outcome` until the decision stops failing differently:
    /// `polls` times in a row, as the poller would.
    std::vector<core::poll_decision> poll(core::http_outcome const& outcome, int polls = 1) {
        std::vector<core::poll_decision> out;
        core::watch_state state;
        for (int i = 0; i < polls; ++i) {
            out.push_back(core::decide({watch, polling, base_url}, state, outcome, now, rng));
            state = out.back().state;
        }
        return out;
    }

    std::string delivery_error(core::http_outcome const& outcome) {
        return core::judge_delivery(outcome, 1, now, 24h, now, rng).error;
    }
};

json::object data_of(core::event const& e) { return json::parse(e.body).at("data").as_object(); }

} // namespace

BOOST_FIXTURE_TEST_SUITE(failure_text, fixture)

BOOST_AUTO_TEST_CASE(timeout) {
    raw_server server(ioc, behaviour::never_answer);
    auto const outcome = get(server.port(), false);
    auto const d = poll(outcome);
    BOOST_TEST(d[0].error.value_or("") == "timeout: reading response");
    BOOST_TEST(d[0].events.empty());
    BOOST_TEST(core::to_string(d[0].result) == "network_error");
    BOOST_TEST(delivery_error(outcome) == "timeout: reading response");
}

BOOST_AUTO_TEST_CASE(connection_reset) {
    raw_server server(ioc, behaviour::reset);
    auto const outcome = get(server.port(), false);
    auto const d = poll(outcome);
    BOOST_TEST(d[0].error.value_or("") == "network: reading response: Connection reset by peer");
    BOOST_TEST(d[0].events.empty());
    BOOST_TEST(delivery_error(outcome) == "network: reading response: Connection reset by peer");
}

BOOST_AUTO_TEST_CASE(tls_failure) {
    // The server's certificate comes from a CA the client does not trust.
    iw::testing::test_pki other;
    net::server_options so;
    so.tls = other.server_context();
    net::http_server server(ioc.get_executor(), so, [](net::server_request) -> asio::awaitable<net::server_reply> {
        co_return net::server_reply{};
    });
    BOOST_REQUIRE(server.start().has_value());
    auto const outcome = get(server.port(), true);
    auto const d = poll(outcome);
    std::string const text =
        "network: tls handshake: certificate verify failed (unable to get local issuer certificate)";
    BOOST_TEST(d[0].error.value_or("") == text);
    BOOST_TEST(d[0].events.empty());
    BOOST_TEST(delivery_error(outcome) == text);
}

BOOST_AUTO_TEST_CASE(invalid_body) {
    raw_server server(ioc, behaviour::answer, response("200 OK", "{\"status\": "));
    auto const outcome = get(server.port(), false);
    auto const d = poll(outcome, core::invalid_responses_to_fail);
    std::string const detail = "malformed JSON: incomplete JSON";
    for (auto const& one : d) BOOST_TEST(one.error.value_or("") == "invalid response: " + detail);
    // The fifth in a row fails the watch: one event, the detail said once.
    BOOST_TEST(d.back().events.size() == 1u);
    BOOST_TEST_REQUIRE(d.back().events.size() == 1u);
    auto const& e = d.back().events[0];
    BOOST_TEST(e.type == core::watch_failed_type);
    BOOST_TEST(e.summary == "vip failed: invalid_response (HTTP 200: " + detail + ") (" + watch.key.path() + ")");
    auto const data = data_of(e);
    BOOST_TEST(data.at("reason").as_string() == "invalid_response");
    BOOST_TEST(data.at("http_status").as_int64() == 200);
    BOOST_TEST(data.at("message").as_string() == detail);
    // A webhook receiver answering 200 with any body has taken the event.
    BOOST_TEST(delivery_error(outcome) == "");
}

BOOST_AUTO_TEST_CASE(server_error) {
    raw_server server(ioc, behaviour::answer, response("503 Service Unavailable", ""));
    auto const outcome = get(server.port(), false);
    auto const d = poll(outcome);
    BOOST_TEST(d[0].error.value_or("") == "HTTP 503 from LaunchDarkly");
    BOOST_TEST(d[0].events.empty());
    BOOST_TEST(core::to_string(d[0].result) == "server_error");
    BOOST_TEST(delivery_error(outcome) == "HTTP 503");
}

BOOST_AUTO_TEST_CASE(client_error) {
    raw_server server(ioc, behaviour::answer,
                      response("404 Not Found", R"({"code":"not_found","message":"Invalid resource identifier"})"));
    auto const outcome = get(server.port(), false);
    auto const d = poll(outcome);
    BOOST_TEST(d[0].error.value_or("") == "HTTP 404 from LaunchDarkly: Invalid resource identifier");
    BOOST_TEST_REQUIRE(d[0].events.size() == 1u);
    auto const& e = d[0].events[0];
    BOOST_TEST(e.type == core::watch_failed_type);
    BOOST_TEST(e.summary == "vip failed: not_found (HTTP 404: Invalid resource identifier) (" + watch.key.path() + ")");
    auto const data = data_of(e);
    BOOST_TEST(data.at("reason").as_string() == "not_found");
    BOOST_TEST(data.at("http_status").as_int64() == 404);
    BOOST_TEST(data.at("message").as_string() == "Invalid resource identifier");
    BOOST_TEST(delivery_error(outcome) == "HTTP 404");
}

BOOST_AUTO_TEST_SUITE_END()
