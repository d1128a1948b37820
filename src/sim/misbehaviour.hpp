#pragma once
// How the simulator (and the tests' servers) misbehave while answering: late,
// with a reset instead of an answer, or with the body cut short. The HTTP
// server only writes bytes verbatim when asked; which bytes is decided here.
#include <chrono>
#include <utility>

#include "net/asio.hpp"
#include "net/http_server.hpp"

namespace importwatch::sim {

/// A reply and how to misbehave while giving it.
struct planned_reply {
    enum class cut_t {
        none,
        reset,       // no answer: the connection is reset (a TCP RST)
        truncate,    // the headers with the full Content-Length, half the body, then a FIN
    };

    planned_reply() = default;
    planned_reply(net::server_reply r) : reply(std::move(r)) {}   // implicit: a plain reply is a plan too

    net::server_reply reply;
    std::chrono::milliseconds delay{0};   // wait this long before answering (or cutting)
    cut_t cut = cut_t::none;
};

/// For a request handler: waits out the delay, then the reply as planned.
/// The wait ends early, with nothing answered, when the server stops.
asio::awaitable<net::server_reply> deliver(planned_reply planned);

} // namespace importwatch::sim
