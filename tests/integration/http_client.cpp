#define BOOST_TEST_MODULE http_client
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/testing.hpp"
#include "core/url.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "sim/misbehaviour.hpp"

namespace iw = importwatch;
namespace net = importwatch::net;
namespace sim = importwatch::sim;
namespace core = importwatch::core;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using iw::testing::run_until;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

long ms_since(steady::time_point start) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count());
}

core::url origin(std::string scheme, std::string host, std::uint16_t port) {
    return core::url{std::move(scheme), std::move(host), std::to_string(port), "/", false};
}

/// A server on 127.0.0.1 whose handler is a plain function (or a coroutine).
struct test_server {
    test_server(asio::io_context& ioc, std::shared_ptr<net::ssl::context> tls, net::request_handler handler,
                net::server_options options = {}) {
        options.tls = std::move(tls);
        server = std::make_unique<net::http_server>(ioc.get_executor(), options, std::move(handler));
        auto ok = server->start();
        BOOST_REQUIRE_MESSAGE(ok.has_value(), (ok ? std::string() : ok.error()));
    }
    std::uint16_t port() const { return server->port(); }
    std::unique_ptr<net::http_server> server;
};

template <class F>
net::request_handler sync_handler(F f) {
    return [f](net::server_request req) -> asio::awaitable<net::server_reply> { co_return f(req); };
}

/// A server that misbehaves as the simulator does: late, reset or cut short.
template <class F>
net::request_handler planned_handler(F f) {
    return [f](net::server_request req) -> asio::awaitable<net::server_reply> {
        co_return co_await sim::deliver(f(req));
    };
}

struct fixture {
    asio::io_context ioc;
    iw::testing::test_pki pki;

    net::client_options options(std::uint16_t port, bool tls = true) {
        net::client_options o;
        o.origin = origin(tls ? "https" : "http", "127.0.0.1", port);
        if (tls) o.tls = pki.client_context();
        o.user_agent = "importwatch-test/1";
        o.timeout = 5s;
        return o;
    }

    core::http_outcome send(net::http_client& client, net::client_request r, std::chrono::milliseconds limit = 10s) {
        std::optional<core::http_outcome> out;
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { out = co_await client.send(std::move(r)); },
            [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
        BOOST_REQUIRE_MESSAGE(run_until(ioc, [&] { return out.has_value(); }, limit), "send did not finish in time");
        return std::move(*out);
    }

    net::client_request get(std::string target = "/") {
        net::client_request r;
        r.target = std::move(target);
        return r;
    }
};

std::string describe(core::http_outcome const& o) {
    return o ? "status " + std::to_string(o->status) : "failure: " + o.error().message;
}

/// A raw TCP server for what http_server cannot do on purpose: answer
/// `Connection: close` and keep the socket open, or act as a proxy.
/// Each accepted connection is handed to `serve` (a coroutine).
struct raw_server {
    raw_server(asio::io_context& ioc, std::function<asio::awaitable<void>(tcp::socket)> serve)
        : acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(
            ioc,
            [this, serve]() -> asio::awaitable<void> {
                for (;;) {
                    auto [ec, s] = co_await acceptor.async_accept(use_tuple);
                    if (ec) co_return;
                    ++accepted;
                    asio::co_spawn(acceptor.get_executor(), serve(std::move(s)), [](std::exception_ptr) {});
                }
            },
            [](std::exception_ptr) {});
    }
    ~raw_server() {
        boost::system::error_code ec;
        acceptor.close(ec);
    }
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }
    tcp::acceptor acceptor;
    int accepted = 0;
};

asio::awaitable<std::string> read_head(tcp::socket& s, std::string& buf) {
    auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(buf), "\r\n\r\n", use_tuple);
    if (ec) co_return std::string();
    std::string head = buf.substr(0, n);
    buf.erase(0, n);
    co_return head;
}

/// Copies bytes one way until either side closes.
asio::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
    std::array<char, 8192> data{};
    for (;;) {
        auto [ec, n] = co_await from->async_read_some(asio::buffer(data), use_tuple);
        if (ec) break;
        auto [wec, wn] = co_await asio::async_write(*to, asio::buffer(data.data(), n), use_tuple);
        if (wec) break;
    }
    boost::system::error_code ignored;
    to->shutdown(tcp::socket::shutdown_send, ignored);
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(http_client, fixture)

BOOST_AUTO_TEST_CASE(get_over_https_sends_headers_and_maps_the_response) {
    std::optional<net::server_request> seen;
    test_server server(ioc, pki.server_context(), sync_handler([&](net::server_request const& req) {
                           seen = req;
                           net::server_reply r;
                           r.status = 429;
                           r.body = "slow down";
                           r.content_type = "application/json";
                           r.headers = {{"Retry-After", "7"},
                                        {"X-Ratelimit-Reset", "1700000000000"},
                                        {"X-Ratelimit-Global-Remaining", "0"},
                                        {"X-Ratelimit-Route-Remaining", "3"},
                                        {"Date", "Tue, 14 Nov 2023 22:13:20 GMT"}};
                           return r;
                       }));
    net::http_client client(ioc.get_executor(), options(server.port()));
    auto req = get("/api/v2/thing?x=1");
    req.headers = {{"Authorization", "tok"}, {"LD-API-Version", "20240415"}};
    static constexpr std::string_view kept[] = {"Retry-After", "x-ratelimit-reset", "X-Ratelimit-Global-Remaining",
                                                "X-Ratelimit-Route-Remaining", "Date", "Content-Type", "ETag"};
    req.keep_headers = kept;
    auto out = send(client, req);
    BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
    BOOST_TEST(out->status == 429);
    BOOST_TEST(out->body == "slow down");
    // The reply keeps exactly the headers asked for, found case-insensitively.
    BOOST_TEST(out->header("retry-after").value_or("") == "7");
    BOOST_TEST(out->header("X-RATELIMIT-RESET").value_or("") == "1700000000000");
    BOOST_TEST(out->header("X-Ratelimit-Global-Remaining").value_or("") == "0");
    BOOST_TEST(out->header("X-Ratelimit-Route-Remaining").value_or("") == "3");
    BOOST_TEST(out->header("Date").value_or("") == "Tue, 14 Nov 2023 22:13:20 GMT");
    BOOST_TEST(out->header("Content-Type").value_or("") == "application/json");
    BOOST_TEST(!out->header("Server").has_value());
    BOOST_TEST(out->headers.size() == 6u);

    BOOST_REQUIRE(seen.has_value());
    BOOST_TEST(seen->method == "GET");
    BOOST_TEST(seen->target == "/api/v2/thing?x=1");
    BOOST_REQUIRE(seen->header("host"));
    BOOST_TEST(*seen->header("host") == "127.0.0.1:" + std::to_string(server.port()));
    BOOST_REQUIRE(seen->header("user-agent"));
    BOOST_TEST(*seen->header("user-agent") == "importwatch-test/1");
    BOOST_REQUIRE(seen->header("authorization"));
    BOOST_TEST(*seen->header("authorization") == "tok");
    BOOST_REQUIRE(seen->header("ld-api-version"));
}

BOOST_AUTO_TEST_CASE(post_sends_body_with_content_length) {
    std::optional<net::server_request> seen;
    test_server server(ioc, pki.server_context(), sync_handler([&](net::server_request const& req) {
                           seen = req;
                           return net::server_reply{};
                       }));
    net::http_client client(ioc.get_executor(), options(server.port()));
    net::client_request req;
    req.method = "POST";
    req.target = "/hook";
    req.body = R"({"a":1})";
    req.headers = {{"Content-Type", "application/cloudevents+json"}};
    auto out = send(client, req);
    BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
    BOOST_REQUIRE(seen.has_value());
    BOOST_TEST(seen->method == "POST");
    BOOST_TEST(seen->body == R"({"a":1})");
    BOOST_REQUIRE(seen->header("content-length"));
    BOOST_TEST(*seen->header("content-length") == "7");
    BOOST_TEST(*seen->header("content-type") == "application/cloudevents+json");
}

BOOST_AUTO_TEST_CASE(keep_alive_reuses_one_connection) {
    int calls = 0;
    test_server server(ioc, pki.server_context(), sync_handler([&](net::server_request const&) {
                           ++calls;
                           net::server_reply r;
                           r.body = std::to_string(calls);
                           return r;
                       }));
    net::http_client client(ioc.get_executor(), options(server.port()));
    for (int i = 1; i <= 10; ++i) {
        auto out = send(client, get());
        BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
        BOOST_TEST(out->body == std::to_string(i));
    }
    BOOST_TEST(client.connections_opened() == 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_sends_stay_within_max_connections) {
    int in_flight = 0, max_in_flight = 0, calls = 0;
    test_server server(ioc, pki.server_context(),
                       [&](net::server_request) -> asio::awaitable<net::server_reply> {
                           ++calls;
                           max_in_flight = std::max(max_in_flight, ++in_flight);
                           asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
                           co_await t.async_wait(use_tuple);
                           --in_flight;
                           co_return net::server_reply{};
                       });
    auto o = options(server.port());
    o.max_connections = 2;
    net::http_client client(ioc.get_executor(), o);
    int done = 0, ok = 0;
    for (int i = 0; i < 8; ++i) {
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                auto out = co_await client.send(get());
                ok += out.has_value() && out->status == 200;
                ++done;
            },
            [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    }
    BOOST_REQUIRE(run_until(ioc, [&] { return done == 8; }));
    BOOST_TEST(ok == 8);
    BOOST_TEST(calls == 8);
    BOOST_TEST(max_in_flight == 2);   // both connections used, never a third
    BOOST_TEST(client.connections_opened() == 2u);
}

BOOST_AUTO_TEST_CASE(slow_server_times_out_within_the_request_timeout) {
    test_server server(ioc, pki.server_context(), planned_handler([](net::server_request const&) {
                           sim::planned_reply r;
                           r.delay = 3s;
                           return r;
                       }));
    auto o = options(server.port());
    o.timeout = 300ms;
    net::http_client client(ioc.get_executor(), o);
    auto start = steady::now();
    auto out = send(client, get());
    auto elapsed = ms_since(start);
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST((out.error().kind == core::failure_kind::timeout));
    // The kind is said once, when the failure is written for people.
    BOOST_TEST(out.error().message == "reading response");
    BOOST_TEST(core::to_text(out.error()) == "timeout: reading response");
    BOOST_TEST(elapsed >= 290);
    BOOST_TEST(elapsed < 1500);
}

BOOST_AUTO_TEST_CASE(body_over_the_limit_is_an_invalid_response) {
    test_server server(ioc, pki.server_context(), sync_handler([](net::server_request const& req) {
                           net::server_reply r;
                           r.body = std::string(req.target == "/big" ? 2001 : 2000, 'x');
                           return r;
                       }));
    auto o = options(server.port());
    o.max_body = 2000;
    net::http_client client(ioc.get_executor(), o);
    auto at_limit = send(client, get("/fits"));
    BOOST_REQUIRE_MESSAGE(at_limit.has_value(), describe(at_limit));
    BOOST_TEST(at_limit->body.size() == 2000u);
    auto out = send(client, get("/big"));
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST((out.error().kind == core::failure_kind::invalid_response));
    BOOST_TEST(out.error().message == "response body exceeds 2000 bytes");
    // The connection is dropped after it: the next request opens a new one.
    auto again = send(client, get("/fits"));
    BOOST_REQUIRE_MESSAGE(again.has_value(), describe(again));
    BOOST_TEST(client.connections_opened() == 2u);
}

BOOST_AUTO_TEST_CASE(headers_over_64_kib_are_an_invalid_response) {
    test_server server(ioc, pki.server_context(), sync_handler([](net::server_request const& req) {
                           net::server_reply r;
                           // Two fields: Beast caps a single field value below 64 KiB.
                           auto size = req.target == "/huge" ? 35 * 1024 : 30 * 1024;
                           r.headers = {{"X-Padding-1", std::string(size, 'p')}, {"X-Padding-2", std::string(size, 'q')}};
                           return r;
                       }));
    net::http_client client(ioc.get_executor(), options(server.port()));
    auto fits = send(client, get("/large"));
    BOOST_REQUIRE_MESSAGE(fits.has_value(), describe(fits));
    auto out = send(client, get("/huge"));
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST((out.error().kind == core::failure_kind::invalid_response));
    BOOST_TEST(out.error().message == "response headers exceed 64 KiB");
}

BOOST_AUTO_TEST_CASE(idle_connection_closed_by_the_server_is_retried_once_on_a_new_one) {
    int calls = 0;
    net::server_options so;
    so.read_timeout = 150ms;   // the server drops kept-alive connections idle this long
    test_server server(
        ioc, pki.server_context(),
        sync_handler([&](net::server_request const&) {
            ++calls;
            return net::server_reply{};
        }),
        so);
    net::http_client client(ioc.get_executor(), options(server.port()));
    auto first = send(client, get());
    BOOST_REQUIRE_MESSAGE(first.has_value(), describe(first));
    ioc.restart();
    ioc.run_for(500ms);   // let the server's idle timeout close the connection
    auto second = send(client, get());
    BOOST_REQUIRE_MESSAGE(second.has_value(), describe(second));
    BOOST_TEST(second->status == 200);
    BOOST_TEST(calls == 2);
    BOOST_TEST(client.connections_opened() == 2u);
}

BOOST_AUTO_TEST_CASE(reset_on_a_fresh_connection_is_a_network_failure_without_retry) {
    int calls = 0;
    test_server server(ioc, pki.server_context(), planned_handler([&](net::server_request const&) {
                           ++calls;
                           sim::planned_reply r;
                           r.cut = sim::planned_reply::cut_t::reset;
                           return r;
                       }));
    net::http_client client(ioc.get_executor(), options(server.port()));
    auto out = send(client, get());
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST((out.error().kind == core::failure_kind::network));
    BOOST_TEST(calls == 1);
    BOOST_TEST(client.connections_opened() == 1u);
}

BOOST_AUTO_TEST_CASE(truncated_body_is_a_network_failure_and_not_retried) {
    int calls = 0;
    test_server server(ioc, pki.server_context(), planned_handler([&](net::server_request const& req) {
                           ++calls;
                           sim::planned_reply r;
                           r.reply.body = std::string(1000, 'b');
                           if (req.target == "/cut") r.cut = sim::planned_reply::cut_t::truncate;
                           return r;
                       }));
    net::http_client client(ioc.get_executor(), options(server.port()));
    auto first = send(client, get("/ok"));
    BOOST_REQUIRE_MESSAGE(first.has_value(), describe(first));
    // On the kept-alive connection: response bytes arrived, so no retry.
    auto out = send(client, get("/cut"));
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST((out.error().kind == core::failure_kind::network));
    BOOST_TEST(out.error().message.starts_with("reading response: "));
    BOOST_TEST(calls == 2);
}

BOOST_AUTO_TEST_CASE(connection_close_is_honoured) {
    // This server answers `Connection: close` but leaves the socket open and
    // never reads again: a client that reused it would hang into its timeout.
    raw_server server(ioc, [](tcp::socket s) -> asio::awaitable<void> {
        std::string buf;
        auto head = co_await read_head(s, buf);
        if (head.empty()) co_return;
        std::string res = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        co_await asio::async_write(s, asio::buffer(res), use_tuple);
        asio::steady_timer hold(s.get_executor(), 5s);
        co_await hold.async_wait(use_tuple);
    });
    auto o = options(server.port(), false);
    o.timeout = 1s;
    net::http_client client(ioc.get_executor(), o);
    for (int i = 0; i < 3; ++i) {
        auto out = send(client, get());
        BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
        BOOST_TEST(out->body == "ok");
    }
    BOOST_TEST(server.accepted == 3);
    BOOST_TEST(client.connections_opened() == 3u);
}

BOOST_AUTO_TEST_CASE(redirects_are_returned_not_followed) {
    int calls = 0;
    test_server server(ioc, pki.server_context(), sync_handler([&](net::server_request const&) {
                           ++calls;
                           net::server_reply r;
                           r.status = 302;
                           r.headers = {{"Location", "/elsewhere"}};
                           r.body = "moved";
                           return r;
                       }));
    net::http_client client(ioc.get_executor(), options(server.port()));
    auto out = send(client, get("/here"));
    BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
    BOOST_TEST(out->status == 302);
    BOOST_TEST(out->body == "moved");
    BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(connection_refused_names_the_address) {
    auto const port = iw::testing::free_port();   // nothing listens there
    net::http_client client(ioc.get_executor(), options(port));
    auto out = send(client, get());
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST((out.error().kind == core::failure_kind::network));
    BOOST_TEST(out.error().message == "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

BOOST_AUTO_TEST_CASE(shutdown_aborts_in_flight_and_waiting_sends_promptly) {
    test_server server(ioc, pki.server_context(), planned_handler([](net::server_request const&) {
                           sim::planned_reply r;
                           r.delay = 5s;
                           return r;
                       }));
    auto o = options(server.port());
    o.max_connections = 1;
    o.timeout = 10s;
    net::http_client client(ioc.get_executor(), o);
    std::vector<core::http_outcome> results;
    for (int i = 0; i < 2; ++i)   // one in flight, one waiting for the connection
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { results.push_back(co_await client.send(get())); },
            [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    ioc.run_for(300ms);
    BOOST_REQUIRE(results.empty());
    auto start = steady::now();
    client.shutdown();
    BOOST_REQUIRE(run_until(ioc, [&] { return results.size() == 2; }, 3s));
    BOOST_TEST(ms_since(start) < 500);
    for (auto const& r : results) {
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST((r.error().kind == core::failure_kind::network));
        BOOST_TEST(r.error().message == "shutting down");
    }
    auto after = send(client, get());
    BOOST_REQUIRE(!after.has_value());
    BOOST_TEST(after.error().message == "shutting down");
}

BOOST_AUTO_TEST_CASE(waiting_for_a_connection_counts_against_the_timeout) {
    test_server server(ioc, pki.server_context(), planned_handler([](net::server_request const&) {
                           sim::planned_reply r;
                           r.delay = 2s;
                           return r;
                       }));
    auto o = options(server.port());
    o.max_connections = 1;
    o.timeout = 400ms;
    net::http_client client(ioc.get_executor(), o);
    std::vector<core::http_outcome> results;
    for (int i = 0; i < 2; ++i)
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { results.push_back(co_await client.send(get())); },
            [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    auto start = steady::now();
    BOOST_REQUIRE(run_until(ioc, [&] { return results.size() == 2; }, 3s));
    BOOST_TEST(ms_since(start) < 1000);
    for (auto const& r : results) {
        BOOST_REQUIRE(!r.has_value());
        BOOST_TEST((r.error().kind == core::failure_kind::timeout));
    }
}

BOOST_AUTO_TEST_CASE(https_through_a_connect_proxy) {
    test_server server(ioc, pki.server_context(), sync_handler([](net::server_request const& req) {
                           net::server_reply r;
                           r.body = "via " + req.target;
                           return r;
                       }));
    std::vector<std::string> proxied;
    auto const server_port = server.port();
    raw_server proxy(ioc, [&, server_port](tcp::socket s) -> asio::awaitable<void> {
        std::string buf;
        auto head = co_await read_head(s, buf);
        proxied.push_back(head.substr(0, head.find("\r\n")));
        auto client_side = std::make_shared<tcp::socket>(std::move(s));
        auto upstream = std::make_shared<tcp::socket>(client_side->get_executor());
        auto [ec] = co_await upstream->async_connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_port), use_tuple);
        std::string answer = ec ? "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
                                : "HTTP/1.1 200 Connection established\r\n\r\n";
        co_await asio::async_write(*client_side, asio::buffer(answer), use_tuple);
        if (ec) co_return;
        auto ex = client_side->get_executor();
        asio::co_spawn(ex, pump(client_side, upstream), [](std::exception_ptr) {});
        co_await pump(upstream, client_side);
    });
    auto o = options(server.port());
    o.origin.host = "localhost";   // a DNS name through the tunnel: SNI + name check
    o.proxy = origin("http", "127.0.0.1", proxy.port());
    net::http_client client(ioc.get_executor(), o);
    auto out = send(client, get("/x"));
    BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
    BOOST_TEST(out->body == "via /x");
    auto again = send(client, get("/y"));
    BOOST_REQUIRE_MESSAGE(again.has_value(), describe(again));
    BOOST_REQUIRE(proxied.size() == 1u);   // the tunnel is kept alive
    BOOST_TEST(proxied[0] == "CONNECT localhost:" + std::to_string(server.port()) + " HTTP/1.1");
}

BOOST_AUTO_TEST_CASE(plain_http_through_a_proxy_uses_the_absolute_form) {
    std::vector<std::string> lines;
    raw_server proxy(ioc, [&](tcp::socket s) -> asio::awaitable<void> {
        std::string buf;
        for (;;) {
            auto head = co_await read_head(s, buf);
            if (head.empty()) co_return;
            lines.push_back(head.substr(0, head.find("\r\n")));
            std::string res = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nproxy";
            co_await asio::async_write(s, asio::buffer(res), use_tuple);
        }
    });
    net::client_options o;
    o.origin = origin("http", "example.test", 8080);
    o.proxy = origin("http", "127.0.0.1", proxy.port());
    net::http_client client(ioc.get_executor(), o);
    auto out = send(client, get("/a?b=c"));
    BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
    BOOST_TEST(out->body == "proxy");
    BOOST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0] == "GET http://example.test:8080/a?b=c HTTP/1.1");
}

BOOST_AUTO_TEST_CASE(proxy_from_environment_cases) {
    struct row {
        std::string name;
        std::string target;
        std::optional<std::string> https_proxy, http_proxy, no_proxy;
        std::optional<std::string> expected;   // "host:port" of the proxy, or none
    };
    std::vector<row> rows = {
        {"https uses HTTPS_PROXY", "https://app.launchdarkly.com/", "http://proxy:3128", {}, {}, "proxy:3128"},
        {"http uses HTTP_PROXY", "http://hooks.example/", "http://sproxy:1", "http://hproxy:2", {}, "hproxy:2"},
        {"https ignores HTTP_PROXY", "https://app.launchdarkly.com/", {}, "http://hproxy:2", {}, {}},
        {"no scheme means http", "https://a.example/", "proxy.corp:8080", {}, {}, "proxy.corp:8080"},
        {"default port 80", "https://a.example/", "http://proxy.corp", {}, {}, "proxy.corp:80"},
        {"empty proxy value", "https://a.example/", "", {}, {}, {}},
        {"loopback ip never proxied", "https://127.0.0.1/", "http://proxy:3128", {}, {}, {}},
        {"127/8 never proxied", "https://127.1.2.3:8443/", "http://proxy:3128", {}, {}, {}},
        {"ipv6 loopback never proxied", "https://[::1]:8443/", "http://proxy:3128", {}, {}, {}},
        {"localhost never proxied", "https://localhost:8443/", "http://proxy:3128", {}, {}, {}},
        {"NO_PROXY star", "https://a.example/", "http://proxy:3128", {}, "*", {}},
        {"NO_PROXY exact", "https://a.example/", "http://proxy:3128", {}, "b.example, a.example", {}},
        {"NO_PROXY suffix", "https://hooks.corp.example/", "http://proxy:3128", {}, "corp.example", {}},
        {"NO_PROXY dotted suffix", "https://hooks.corp.example/", "http://proxy:3128", {}, ".corp.example", {}},
        {"NO_PROXY is case-insensitive", "https://HOOKS.Corp.Example/", "http://proxy:3128", {}, "corp.EXAMPLE",
         {}},
        {"NO_PROXY suffix is label-aligned", "https://evilcorp.example/", "http://proxy:3128", {}, "corp.example",
         "proxy:3128"},
        {"NO_PROXY with port", "https://a.example/", "http://proxy:3128", {}, "a.example:443", {}},
        {"NO_PROXY other hosts", "https://a.example/", "http://proxy:3128", {}, "b.example,c.example",
         "proxy:3128"},
        {"NO_PROXY ip", "https://10.1.2.3/", "http://proxy:3128", {}, "10.1.2.3", {}},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            auto target = core::parse_url(r.target);
            BOOST_REQUIRE(target.has_value());
            auto got = net::proxy_from_environment(*target, r.https_proxy, r.http_proxy, r.no_proxy);
            BOOST_TEST(got.has_value() == r.expected.has_value());
            if (got && r.expected) {
                BOOST_TEST(got->scheme == "http");
                BOOST_TEST(got->host + ":" + got->port == *r.expected);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// Both pools (LaunchDarkly and webhooks) pick their proxy through proxy_for.
BOOST_AUTO_TEST_CASE(proxy_for_loopback_configured_and_environment) {
    auto const remote = *core::parse_url("https://hooks.example.com/x");
    auto const local = *core::parse_url("http://127.0.0.1:8080/x");
    ::setenv("HTTPS_PROXY", "http://env-proxy:3128", 1);
    ::unsetenv("NO_PROXY");
    ::unsetenv("no_proxy");

    // Loopback is never proxied, not even through a configured proxy.
    auto none = net::proxy_for(local, std::string("http://cfg-proxy:3128"));
    BOOST_TEST_REQUIRE(none.has_value());
    BOOST_TEST(!none->has_value());

    // A configured proxy wins over the environment.
    auto configured = net::proxy_for(remote, std::string("http://cfg-proxy:3128"));
    BOOST_TEST_REQUIRE((configured.has_value() && configured->has_value()));
    BOOST_TEST((*configured)->host == "cfg-proxy");

    auto from_env = net::proxy_for(remote, std::nullopt);
    BOOST_TEST_REQUIRE((from_env.has_value() && from_env->has_value()));
    BOOST_TEST((*from_env)->host == "env-proxy");

    // An empty variable counts as unset.
    ::setenv("HTTPS_PROXY", "", 1);
    ::unsetenv("https_proxy");
    auto empty = net::proxy_for(remote, std::nullopt);
    BOOST_TEST_REQUIRE(empty.has_value());
    BOOST_TEST(!empty->has_value());
    ::unsetenv("HTTPS_PROXY");

    BOOST_TEST(!net::proxy_for(remote, std::string("not a url")).has_value());
}
