#include "sim/misbehaviour.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace importwatch::sim {

asio::awaitable<net::server_reply> deliver(planned_reply planned) {
    if (planned.delay.count() > 0) {
        // Throws operation_aborted when the server stops: it answers nothing then.
        asio::steady_timer timer(co_await asio::this_coro::executor, planned.delay);
        co_await timer.async_wait(asio::use_awaitable);
    }
    switch (planned.cut) {
    case planned_reply::cut_t::none: break;
    case planned_reply::cut_t::reset: {
        net::server_reply r;
        r.verbatim.emplace();
        r.verbatim->reset = true;
        co_return r;
    }
    case planned_reply::cut_t::truncate: {
        // What the server would have sent, less the second half of the body:
        // the client must notice the cut.
        auto const body = planned.reply.body.size();
        auto bytes = net::reply_bytes(std::move(planned.reply));
        bytes.resize(bytes.size() - (body - body / 2));
        net::server_reply r;
        r.verbatim.emplace();
        r.verbatim->bytes = std::move(bytes);
        co_return r;
    }
    }
    co_return std::move(planned.reply);
}

} // namespace importwatch::sim
