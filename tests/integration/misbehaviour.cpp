#define BOOST_TEST_MODULE misbehaviour
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "net/http_server.hpp"
#include "sim/misbehaviour.hpp"

// What sim::deliver makes of a plan: the verbatim bytes the server is to
// write (the server's side of that is in http_server, the client's in
// http_client and simulator).

using namespace importwatch;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

net::server_reply delivered(sim::planned_reply plan) {
    asio::io_context ioc;
    std::optional<net::server_reply> out;
    asio::co_spawn(ioc, sim::deliver(std::move(plan)), [&](std::exception_ptr e, net::server_reply r) {
        if (e) std::rethrow_exception(e);
        out = std::move(r);
    });
    ioc.run();
    BOOST_TEST_REQUIRE(out.has_value());
    return std::move(*out);
}

net::server_reply json_reply(std::string body) {
    net::server_reply r;
    r.body = std::move(body);
    r.content_type = "application/json";
    r.headers = {{"Date", "Tue, 01 Jul 2025 10:00:00 GMT"}};
    return r;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_plain_reply_comes_as_it_is) {
    auto r = delivered(json_reply("{}"));
    BOOST_TEST(!r.verbatim.has_value());
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == "{}");
    BOOST_TEST(r.content_type == "application/json");
}

BOOST_AUTO_TEST_CASE(a_delay_is_waited_out_first) {
    sim::planned_reply plan = json_reply("{}");
    plan.delay = 200ms;
    auto const start = steady::now();
    auto r = delivered(plan);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count() >= 190);
    BOOST_TEST(r.body == "{}");
}

BOOST_AUTO_TEST_CASE(reset_is_a_reset_without_a_byte) {
    sim::planned_reply plan = json_reply("never sent");
    plan.cut = sim::planned_reply::cut_t::reset;
    auto r = delivered(plan);
    BOOST_TEST_REQUIRE(r.verbatim.has_value());
    BOOST_TEST(r.verbatim->reset);
    BOOST_TEST(r.verbatim->bytes.empty());
}

// The headers the server would send, the full Content-Length among them,
// then half the body; then a FIN, not a reset, so the client reads them all.
BOOST_AUTO_TEST_CASE(truncate_sends_the_whole_head_and_half_the_body) {
    sim::planned_reply plan = json_reply(std::string(1001, 'z'));
    plan.cut = sim::planned_reply::cut_t::truncate;
    auto r = delivered(plan);
    BOOST_TEST_REQUIRE(r.verbatim.has_value());
    BOOST_TEST(!r.verbatim->reset);
    auto const& bytes = r.verbatim->bytes;
    auto const whole = net::reply_bytes(json_reply(std::string(1001, 'z')));
    BOOST_TEST(whole.starts_with(bytes));
    auto const end = bytes.find("\r\n\r\n");
    BOOST_TEST_REQUIRE(end != std::string::npos);
    auto const head = bytes.substr(0, end + 2);
    BOOST_TEST(head.starts_with("HTTP/1.1 200 OK\r\n"), head);
    BOOST_TEST(head.find("\r\nContent-Length: 1001\r\n") != std::string::npos, head);
    BOOST_TEST(head.find("\r\nContent-Type: application/json\r\n") != std::string::npos, head);
    BOOST_TEST(head.find("\r\nDate: Tue, 01 Jul 2025 10:00:00 GMT\r\n") != std::string::npos, head);
    BOOST_TEST(head.find("\r\nConnection: close\r\n") != std::string::npos, head);
    BOOST_TEST(bytes.substr(end + 4) == std::string(500, 'z'));
}
