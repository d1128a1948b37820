#include "common/admin_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/testing.hpp"
#include "net/http_client.hpp"

namespace importwatch::testing {

std::optional<core::http_reply> admin_request(boost::asio::io_context& ioc, std::uint16_t port,
                                              std::string const& method, std::string const& target,
                                              std::chrono::milliseconds timeout) {
    net::client_options o;
    o.origin = *core::parse_url("http://127.0.0.1:" + std::to_string(port));
    o.max_connections = 1;
    o.timeout = timeout;
    o.user_agent = "admin-test";
    net::http_client client(ioc.get_executor(), o);
    auto out = std::make_shared<std::optional<core::http_outcome>>();
    auto task = [](net::http_client& c, net::client_request req,
                   std::shared_ptr<std::optional<core::http_outcome>> result) -> asio::awaitable<void> {
        auto r = co_await c.send(std::move(req));
        result->emplace(std::move(r));
    };
    static constexpr std::string_view kept[] = {"Content-Type"};
    net::client_request request;
    request.method = method;
    request.target = target;
    request.keep_headers = kept;
    boost::asio::co_spawn(ioc, task(client, std::move(request), out), boost::asio::detached);
    run_until(ioc, [&] { return out->has_value(); }, timeout + std::chrono::seconds(1));
    client.shutdown();
    run_until(ioc, [&] { return out->has_value(); }, std::chrono::seconds(1));
    if (!*out || !**out) return std::nullopt;
    return ***out;
}

} // namespace importwatch::testing
