#define BOOST_TEST_MODULE http_server
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cerrno>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/log_capture.hpp"
#include "common/testing.hpp"
#include "core/url.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"

namespace iw = importwatch;
namespace net = importwatch::net;
namespace core = importwatch::core;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using iw::testing::log_capture;
using iw::testing::run_until;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

long ms_since(steady::time_point start) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count());
}

/// A blocking POSIX client for byte-level checks (resets, truncation, idle
/// sockets); it runs on its own thread while the test thread runs the server.
struct raw_client {
    struct result {
        std::string data;
        bool eof = false;
        int error = 0;   // errno; EAGAIN means our own 5 s receive timeout
    };

    explicit raw_client(std::uint16_t port) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        connected = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~raw_client() { close(); }
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }

    bool send(std::string const& s) const {
        return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    }

    /// Reads until `enough(data)`, end of stream or an error.
    result read(std::function<bool(std::string const&)> const& enough = {}) const {
        result r;
        char buf[4096];
        for (;;) {
            if (enough && enough(r.data)) return r;
            auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n == 0) {
                r.eof = true;
                return r;
            }
            if (n < 0) {
                r.error = errno;
                return r;
            }
            r.data.append(buf, static_cast<std::size_t>(n));
        }
    }

    int fd = -1;
    bool connected = false;
};

/// True once `data` holds a whole response with a Content-Length body.
bool whole_response(std::string const& data) {
    auto end = data.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    auto cl = data.find("Content-Length: ");
    if (cl == std::string::npos || cl > end) return true;
    auto length = std::stoul(data.substr(cl + 16, data.find("\r\n", cl) - cl - 16));
    return data.size() >= end + 4 + length;
}

std::string const get_request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";


/// Waits `d` in a handler, as a handler that takes its time does.
asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

struct fixture {
    asio::io_context ioc;
    std::unique_ptr<net::http_server> server;
    int calls = 0;

    std::uint16_t serve(std::function<net::server_reply(net::server_request const&)> f,
                        net::server_options o = {}) {
        return serve_async(
            [this, f](net::server_request req) -> asio::awaitable<net::server_reply> {
                ++calls;
                co_return f(req);
            },
            o);
    }

    std::uint16_t serve_async(net::request_handler handler, net::server_options o = {}) {
        server = std::make_unique<net::http_server>(ioc.get_executor(), o, std::move(handler));
        auto ok = server->start();
        BOOST_REQUIRE_MESSAGE(ok.has_value(), (ok ? std::string() : ok.error()));
        BOOST_REQUIRE(server->port() != 0);
        return server->port();
    }

    /// stop(), then runs the io_context until no work is left (at most 5 s)
    /// and joins `client`: the milliseconds that took. A server that holds
    /// nothing open after stop() lets the run end at once.
    long stop_and_drain(std::thread& client) {
        server->stop();
        auto const start = steady::now();
        ioc.restart();
        ioc.run_for(5s);   // returns as soon as no work is left
        auto const elapsed = ms_since(start);
        client.join();
        BOOST_TEST(ioc.stopped());
        return elapsed;
    }

    /// Runs `f` on a thread while this thread runs the io_context.
    template <class F>
    auto off_thread(F f) {
        std::optional<decltype(f())> result;
        std::atomic<bool> done{false};
        std::thread t([&] {
            result = f();
            done = true;
        });
        run_until(ioc, [&] { return done.load(); }, 20s);
        t.join();
        return std::move(*result);
    }

    core::http_outcome send(std::uint16_t port, net::client_request req) {
        net::client_options o;
        o.origin = core::url{"http", "127.0.0.1", std::to_string(port), "/", false};
        o.timeout = 3s;
        net::http_client client(ioc.get_executor(), o);
        std::optional<core::http_outcome> out;
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { out = co_await client.send(req); },
            [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
        BOOST_REQUIRE(run_until(ioc, [&] { return out.has_value(); }, 5s));
        return std::move(*out);
    }
};

net::server_reply route(net::server_request const& req) {
    net::server_reply r;
    if (req.method == "GET" && req.target == "/hello") {
        r.body = "hello " + (req.header("x-name") ? *req.header("x-name") : std::string("?"));
    } else if (req.method == "POST" && req.target == "/echo") {
        r.body = req.body;
        r.content_type = "application/json";
        r.headers = {{"X-Seen", req.header("content-type") ? *req.header("content-type") : ""}};
    } else if (req.target == "/boom") {
        throw std::runtime_error("handler bug");
    } else {
        r.status = 404;
        r.body = "no route";
    }
    return r;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(http_server, fixture)

BOOST_AUTO_TEST_CASE(routes_requests_to_the_handler) {
    auto port = serve(route);
    net::client_request hello;
    hello.target = "/hello";
    hello.headers = {{"X-Name", "ada"}};
    auto a = send(port, hello);
    BOOST_REQUIRE(a.has_value());
    BOOST_TEST(a->status == 200);
    BOOST_TEST(a->body == "hello ada");   // header names reach the handler lower-cased

    net::client_request echo;
    echo.method = "POST";
    echo.target = "/echo";
    echo.body = R"({"x":1})";
    echo.headers = {{"Content-Type", "application/json"}};
    static constexpr std::string_view kept[] = {"Content-Type"};
    echo.keep_headers = kept;
    auto b = send(port, echo);
    BOOST_REQUIRE(b.has_value());
    BOOST_TEST(b->status == 200);
    BOOST_TEST(b->body == R"({"x":1})");
    BOOST_TEST(b->header("Content-Type").value_or("") == "application/json");

    net::client_request missing;
    missing.target = "/nowhere";
    auto c = send(port, missing);
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(c->status == 404);
}

BOOST_AUTO_TEST_CASE(handler_exception_answers_500_and_keeps_serving) {
    auto port = serve(route);
    net::client_request boom;
    boom.target = "/boom";
    auto a = send(port, boom);
    BOOST_REQUIRE(a.has_value());
    BOOST_TEST(a->status == 500);
    net::client_request hello;
    hello.target = "/hello";
    auto b = send(port, hello);
    BOOST_REQUIRE(b.has_value());
    BOOST_TEST(b->status == 200);
}

BOOST_AUTO_TEST_CASE(request_body_over_the_limit_answers_413) {
    net::server_options o;
    o.max_request_body = 1024;
    auto port = serve(route, o);
    net::client_request fits;
    fits.method = "POST";
    fits.target = "/echo";
    fits.body = std::string(1024, 'a');
    auto a = send(port, fits);
    BOOST_REQUIRE(a.has_value());
    BOOST_TEST(a->status == 200);
    BOOST_TEST(calls == 1);

    auto too_big = fits;
    too_big.body = std::string(1025, 'a');
    auto b = send(port, too_big);
    BOOST_REQUIRE_MESSAGE(b.has_value(), (b ? std::string() : b.error().message));
    BOOST_TEST(b->status == 413);
    BOOST_TEST(calls == 1);   // the handler never saw it

    // A large body sent in full still gets the answer, not a reset.
    too_big.body = std::string(512 * 1024, 'a');
    auto c = send(port, too_big);
    BOOST_REQUIRE_MESSAGE(c.has_value(), (c ? std::string() : c.error().message));
    BOOST_TEST(c->status == 413);
}

BOOST_AUTO_TEST_CASE(oversized_headers_are_refused) {
    auto port = serve(route);
    auto r = off_thread([port] {
        raw_client c(port);
        c.send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'h') + "\r\n\r\n");
        return c.read();
    });
    BOOST_TEST(r.data.starts_with("HTTP/1.1 431 "), r.data.substr(0, 40));
    BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_CASE(garbage_gets_400) {
    auto port = serve(route);
    auto r = off_thread([port] {
        raw_client c(port);
        c.send("NOT HTTP AT ALL\r\n\r\n");
        return c.read();
    });
    BOOST_TEST(r.data.starts_with("HTTP/1.1 400 "), r.data.substr(0, 40));
    BOOST_TEST(r.eof);
}

BOOST_AUTO_TEST_CASE(read_timeout_closes_a_silent_connection) {
    net::server_options o;
    o.read_timeout = 200ms;
    auto port = serve(route, o);
    auto [r, elapsed] = off_thread([port] {
        raw_client c(port);
        auto start = steady::now();
        auto res = c.read();
        return std::pair{res, ms_since(start)};
    });
    BOOST_TEST(r.eof, "error " << r.error);
    BOOST_TEST(r.data.empty());
    BOOST_TEST(elapsed >= 150);
    BOOST_TEST(elapsed < 2000);
}

BOOST_AUTO_TEST_CASE(a_slow_request_is_cut_by_the_read_timeout) {
    net::server_options o;
    o.read_timeout = 300ms;
    auto port = serve(route, o);
    auto r = off_thread([port] {
        raw_client c(port);
        c.send("GET /hello HTTP/1.1\r\n");   // and never the rest
        return c.read();
    });
    BOOST_TEST((r.eof || r.error == ECONNRESET));
    BOOST_TEST(r.error != EAGAIN);
    BOOST_TEST(calls == 0);
}

// At the bound a newcomer evicts the connection that has waited longest for
// its request (slowloris, idle keep-alive), so a flood of slow clients cannot
// lock new ones out.
BOOST_AUTO_TEST_CASE(connection_limit_evicts_the_connection_waiting_longest) {
    net::server_options o;
    o.max_connections = 2;
    auto port = serve(route, o);
    struct outcome {
        bool a_served = false, b_served = false, c_served = false, b_served_again = false;
        raw_client::result a_after;
    };
    auto res = off_thread([port] {
        outcome out;
        raw_client a(port), b(port);
        a.send(get_request);
        out.a_served = a.read(whole_response).data.starts_with("HTTP/1.1 404");   // a waits from here on
        b.send(get_request);
        out.b_served = b.read(whole_response).data.starts_with("HTTP/1.1 404");   // b waits since later
        raw_client c(port);
        c.send(get_request);
        out.c_served = c.read(whole_response).data.starts_with("HTTP/1.1 404");
        out.a_after = a.read();
        b.send(get_request);
        out.b_served_again = b.read(whole_response).data.starts_with("HTTP/1.1 404");
        return out;
    });
    BOOST_TEST(res.a_served);
    BOOST_TEST(res.b_served);
    BOOST_TEST(res.c_served);
    BOOST_TEST(res.a_after.data.empty(), res.a_after.data);
    BOOST_TEST((res.a_after.eof || res.a_after.error == ECONNRESET));
    BOOST_TEST(res.b_served_again);
    BOOST_TEST(server->stats().evicted == 1u);
    BOOST_TEST(server->stats().refused == 0u);
}

// Only when every open connection is busy answering is a newcomer refused.
BOOST_AUTO_TEST_CASE(connection_limit_refuses_only_when_every_connection_is_busy) {
    net::server_options o;
    o.max_connections = 2;
    std::atomic<int> answering{0};
    auto port = serve_async(
        [&answering](net::server_request) -> asio::awaitable<net::server_reply> {
            ++answering;
            co_await sleep(1s);   // answered after a second: busy, not waiting
            co_return net::server_reply{};
        },
        o);
    struct outcome {
        bool busy = false, a_served = false, d_served = false;
        raw_client::result c;
    };
    auto res = off_thread([port, &answering] {
        outcome out;
        raw_client a(port), b(port);
        a.send(get_request);
        b.send(get_request);
        auto const deadline = steady::now() + 5s;
        while (answering < 2 && steady::now() < deadline) std::this_thread::sleep_for(5ms);
        out.busy = answering == 2;
        {
            raw_client c(port);
            c.send(get_request);
            out.c = c.read();
        }
        out.a_served = a.read(whole_response).data.starts_with("HTTP/1.1 200");
        raw_client d(port);
        d.send(get_request);
        out.d_served = d.read(whole_response).data.starts_with("HTTP/1.1 200");
        return out;
    });
    BOOST_REQUIRE(res.busy);
    BOOST_TEST(res.c.data.empty(), res.c.data);
    BOOST_TEST((res.c.eof || res.c.error == ECONNRESET));
    BOOST_TEST(res.a_served);
    BOOST_TEST(res.d_served);   // a (served, now waiting) made room
    BOOST_TEST(server->stats().refused == 1u);
}

// HEAD: the GET's status and headers, Content-Length included, and no body;
// the connection stays usable.
BOOST_AUTO_TEST_CASE(head_sends_the_headers_without_the_body) {
    // The handler sees the method and answers HEAD like GET.
    auto port = serve([](net::server_request const& req) {
        net::server_reply r;
        r.body = "hello " + (req.header("x-name") ? *req.header("x-name") : std::string("?"));
        return r;
    });
    auto res = off_thread([port] {
        raw_client c(port);
        c.send("HEAD /hello HTTP/1.1\r\nHost: x\r\nX-Name: sam\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n"
               "X-Name: sam\r\nConnection: close\r\n\r\n");
        return c.read();
    });
    BOOST_TEST_INFO(res.data);
    auto const split = res.data.find("\r\n\r\n");
    BOOST_REQUIRE(split != std::string::npos);
    auto const head = res.data.substr(0, split);
    auto const rest = res.data.substr(split + 4);
    BOOST_TEST(head.starts_with("HTTP/1.1 200"));
    BOOST_TEST(head.find("Content-Length: 9") != std::string::npos);   // "hello sam"
    BOOST_TEST(rest.starts_with("HTTP/1.1 200"));
    BOOST_TEST(rest.ends_with("\r\n\r\nhello sam"));
}

BOOST_AUTO_TEST_CASE(keep_alive_and_connection_close) {
    auto port = serve([](net::server_request const& req) {
        net::server_reply r;
        r.body = "ok";
        r.close = req.target == "/last";
        return r;
    });
    auto r = off_thread([port] {
        raw_client c(port);
        c.send(get_request);
        auto first = c.read(whole_response);
        c.send("GET /last HTTP/1.1\r\nHost: x\r\n\r\n");
        auto second = c.read();   // to the end: the server closes after it
        return std::pair{first, second};
    });
    BOOST_TEST(r.first.data.starts_with("HTTP/1.1 200"));
    BOOST_TEST(r.first.data.find("Connection: close") == std::string::npos);
    BOOST_TEST(r.second.data.starts_with("HTTP/1.1 200"));
    BOOST_TEST(r.second.data.find("Connection: close") != std::string::npos);
    BOOST_TEST(r.second.eof);
}

// A verbatim reply with `reset`: no answer, and the client sees a reset, not
// an end of stream.
BOOST_AUTO_TEST_CASE(verbatim_reset_resets_the_connection) {
    auto port = serve([](net::server_request const&) {
        net::server_reply r;
        r.body = "never sent";
        r.verbatim.emplace();
        r.verbatim->reset = true;
        return r;
    });
    auto r = off_thread([port] {
        raw_client c(port);
        c.send(get_request);
        return c.read();
    });
    BOOST_TEST(r.error == ECONNRESET, "error " << r.error << " eof " << r.eof);
    BOOST_TEST(r.data.empty());
}

// Verbatim bytes go out as they are, whatever they claim (here a longer body
// than follows), then the connection ends with a FIN: the client reads every
// byte, then the end of stream.
BOOST_AUTO_TEST_CASE(verbatim_bytes_are_written_as_they_are_then_the_connection_ends) {
    std::string const bytes = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(500, 'z');
    auto port = serve([&bytes](net::server_request const&) {
        net::server_reply r;
        r.body = "not this";
        r.verbatim.emplace();
        r.verbatim->bytes = bytes;
        return r;
    });
    auto r = off_thread([port] {
        raw_client c(port);
        c.send(get_request);   // keep-alive asked for: the connection ends anyway
        return c.read();
    });
    BOOST_TEST(r.eof, "error " << r.error);
    BOOST_TEST(r.error == 0);
    BOOST_TEST(r.data == bytes);
}

// reply_bytes: exactly what the server writes for that reply as the last
// answer on a connection.
BOOST_AUTO_TEST_CASE(reply_bytes_are_what_the_server_writes) {
    auto const make = [] {
        net::server_reply r;
        r.status = 201;
        r.headers = {{"X-Made", "here"}, {"Date", "Tue, 01 Jul 2025 10:00:00 GMT"}};
        r.body = "made";
        r.content_type = "application/json";
        r.close = true;
        return r;
    };
    auto port = serve([&make](net::server_request const&) { return make(); });
    auto r = off_thread([port] {
        raw_client c(port);
        c.send(get_request);
        return c.read();
    });
    BOOST_TEST(r.eof);
    BOOST_TEST(r.data == net::reply_bytes(make()));
    BOOST_TEST(r.data.starts_with("HTTP/1.1 201 Created\r\n"), r.data);
    BOOST_TEST(r.data.find("\r\nContent-Length: 4\r\n") != std::string::npos, r.data);
    BOOST_TEST(r.data.find("\r\nConnection: close\r\n") != std::string::npos, r.data);
}

BOOST_AUTO_TEST_CASE(a_handler_may_take_its_time) {
    auto port = serve_async([](net::server_request) -> asio::awaitable<net::server_reply> {
        co_await sleep(300ms);
        co_return net::server_reply{};
    });
    auto [r, elapsed] = off_thread([port] {
        raw_client c(port);
        auto start = steady::now();
        c.send(get_request);
        auto res = c.read(whole_response);
        return std::pair{res, ms_since(start)};
    });
    BOOST_TEST(r.data.starts_with("HTTP/1.1 200"));
    BOOST_TEST(elapsed >= 290);
}

// stop() wakes handlers from what they await, so a run of the io_context
// ends at once: a wait that throws ends the handler, and a handler that
// takes the error code and awaits again is thrown at. Neither answers, and
// nothing is logged as an error.
BOOST_AUTO_TEST_CASE(stop_cancels_what_handlers_await) {
    log_capture logs;
    int woken = 0;   // handlers that saw their wait cancelled
    int finished = 0;   // handlers that got past their waits
    auto port = serve_async([&](net::server_request req) -> asio::awaitable<net::server_reply> {
        ++calls;
        asio::steady_timer t(co_await asio::this_coro::executor, 60s);
        if (req.target == "/throwing") {
            co_await t.async_wait(asio::use_awaitable);
        } else {
            auto [ec] = co_await t.async_wait(use_tuple);
            if (ec == asio::error::operation_aborted) ++woken;
            t.expires_after(60s);
            co_await t.async_wait(use_tuple);
        }
        ++finished;
        co_return net::server_reply{};
    });
    std::optional<raw_client::result> throwing, tuple;
    std::thread t([&] {
        raw_client a(port), b(port);
        a.send("GET /throwing HTTP/1.1\r\nHost: x\r\n\r\n");
        b.send("GET /tuple HTTP/1.1\r\nHost: x\r\n\r\n");
        throwing = a.read();   // until stop() closes the connection
        tuple = b.read();
    });
    BOOST_REQUIRE(run_until(ioc, [&] { return calls == 2; }, 5s));
    BOOST_TEST(stop_and_drain(t) < 1000);
    BOOST_TEST(woken == 1);
    BOOST_TEST(finished == 0);
    for (auto const* r : {&*throwing, &*tuple}) {
        BOOST_TEST(r->data.empty(), r->data);
        BOOST_TEST((r->eof || r->error == ECONNRESET), "error " << r->error);
    }
    BOOST_TEST(logs.out.str().find("error") == std::string::npos, logs.out.str());
}

BOOST_AUTO_TEST_CASE(stop_closes_open_connections_so_run_returns) {
    net::server_options o;
    o.read_timeout = 30s;
    auto port = serve(route, o);
    std::atomic<bool> served{false}, closed{false};
    std::thread t([&] {
        raw_client c(port);
        c.send(get_request);
        served = c.read(whole_response).data.starts_with("HTTP/1.1");
        auto rest = c.read();   // idle, kept alive: until stop() closes it
        closed = rest.eof || rest.error == ECONNRESET;
    });
    BOOST_REQUIRE(run_until(ioc, [&] { return served.load(); }, 5s));
    BOOST_TEST(stop_and_drain(t) < 1000);
    BOOST_TEST(closed.load());
}

BOOST_AUTO_TEST_CASE(start_reports_a_busy_port) {
    auto port = serve(route);
    net::server_options o;
    o.port = port;
    net::http_server second(ioc.get_executor(), o, [](net::server_request) -> asio::awaitable<net::server_reply> {
        co_return net::server_reply{};
    });
    auto ok = second.start();
    BOOST_REQUIRE(!ok.has_value());
    BOOST_TEST(ok.error().starts_with("listen 127.0.0.1:" + std::to_string(port) + ": "), ok.error());
}

BOOST_AUTO_TEST_SUITE_END()
