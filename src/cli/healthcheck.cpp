// `importwatch healthcheck`: for container HEALTHCHECK lines (exit 0 on 200).
// An https URL is verified like any other TLS peer (--ca-file or the system
// store, and the host name): the admin certificate must name the URL's host.
#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "core/url.hpp"
#include "cli/commands.hpp"
#include "net/http_client.hpp"

namespace importwatch::cli {

int healthcheck_command(std::string const& url_text, std::optional<std::string> const& ca_file) {
    auto url = core::parse_url(url_text);
    if (!url) {
        std::cerr << "importwatch: --url: not an http(s) URL: " << url_text << "\n";
        return exit_usage;
    }
    asio::io_context ioc(1);
    net::client_options o;
    o.origin = *url;
    if (url->tls()) {
        auto tls = net::make_client_context(ca_file);
        if (!tls) {
            std::cerr << "importwatch: " << tls.error() << "\n";
            return exit_failure;
        }
        o.tls = *tls;
    }
    o.max_connections = 1;
    o.timeout = std::chrono::seconds(5);
    o.user_agent = std::string("importwatch/") + IMPORTWATCH_VERSION;
    net::http_client client(ioc.get_executor(), o);
    int rc = exit_failure;
    auto ask = [&]() -> asio::awaitable<void> {
        net::client_request request;
        request.target = url->target;
        auto r = co_await client.send(std::move(request));
        if (r && r->status == 200) rc = exit_ok;
        else if (r) std::cerr << "importwatch: " << url->redacted() << " answered " << r->status << "\n";
        else std::cerr << "importwatch: " << url->redacted() << ": " << core::to_text(r.error()) << "\n";
    };
    asio::co_spawn(ioc, ask(), asio::detached);
    ioc.run();
    return rc;
}

} // namespace importwatch::cli
