#pragma once
// An HTTP(S) client for one origin with a pool of keep-alive connections.
// Generic: it knows requests and responses, not imports or webhooks.
//
//  - at most `max_connections` connections; callers beyond that wait for one;
//  - TLS 1.2+, SNI, peer and host name verification (the ssl::context decides
//    what is trusted); plain http only when the URL says so (config allows
//    that only for loopback);
//  - `timeout` bounds each request as a whole: resolve or reuse, connect,
//    handshake, write, read to the last body byte;
//  - response headers over 64 KiB or a body over `max_body` are invalid
//    responses; the connection is then dropped;
//  - a kept-alive connection the server closed before any response byte is
//    retried once at once on a new connection (not an error);
//  - the connection is dropped after errors, timeouts and `Connection: close`;
//  - optional HTTP proxy (CONNECT for https); never for loopback hosts.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/http_exchange.hpp"
#include "core/url.hpp"
#include "net/asio.hpp"
#include "net/tls.hpp"

namespace importwatch::net {

struct client_options {
    core::url origin;                                // scheme, host, port (target ignored)
    std::shared_ptr<ssl::context> tls;               // required for https
    std::size_t max_connections = 2;
    std::chrono::milliseconds timeout{10'000};
    std::size_t max_body = 1024 * 1024;
    std::optional<core::url> proxy;                  // http://host:port
    std::string user_agent;
};

/// Header fields that many requests carry unchanged (the poller's token, API
/// version and Accept), serialized once when made: a request then carries a
/// pointer instead of copies, and the client writes the bytes as they are.
class header_block {
public:
    header_block() = default;
    explicit header_block(std::vector<std::pair<std::string, std::string>> fields);
    /// The fields as given (what tests and fakes read).
    std::vector<std::pair<std::string, std::string>> const& fields() const { return fields_; }
    /// "Name: value\r\n" for each field, in order.
    std::string_view bytes() const { return bytes_; }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
    std::string bytes_;
};

struct client_request {
    std::string method = "GET";                      // GET or POST
    std::string target;                              // path and query
    /// Sent last; a field of the same name as Host, User-Agent or an earlier
    /// one replaces it.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    /// The response headers the reply keeps (case-insensitive; others are
    /// dropped, so a reply costs only what the caller reads). The names must
    /// outlive the send: constants, as a rule.
    std::span<std::string_view const> keep_headers;
    /// Sent after Host and User-Agent, before `headers`; no name in it may
    /// be one of those (the block is written as it is, not merged).
    std::shared_ptr<header_block const> common_headers = nullptr;
};

/// Sends one request and gets what came back: all the poller needs of HTTP
/// (its in-process tests give it a fake).
class transport {
public:
    virtual ~transport() = default;
    /// Never throws for network trouble (request_failure).
    virtual asio::awaitable<core::http_outcome> send(client_request request) = 0;
    /// Makes waiting and in-flight sends finish as network failures.
    virtual void shutdown() = 0;
};

class http_client final : public transport {
public:
    http_client(asio::any_io_executor ex, client_options options);
    ~http_client() override;
    http_client(http_client const&) = delete;
    http_client& operator=(http_client const&) = delete;

    /// Sends one request; never throws for network trouble (request_failure).
    asio::awaitable<core::http_outcome> send(client_request request) override;

    /// Closes idle connections and makes waiting and in-flight sends finish
    /// with operation_aborted as a network failure.
    void shutdown() override;

    /// Connections opened so far (for tests: reuse means this stays small).
    std::size_t connections_opened() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

/// A client as the configuration describes it: what a reload compares to
/// decide whether a pool must be rebuilt (every field counts, by the defaulted
/// ==, so a new field cannot be forgotten).
struct client_settings {
    core::url origin;                                // scheme, host, port (target ignored)
    std::optional<std::string> ca_file;              // nullopt: the system trust store
    std::optional<std::string> proxy;                // nullopt: HTTPS_PROXY / NO_PROXY
    std::size_t max_connections = 2;
    std::chrono::milliseconds timeout{10'000};
    std::string user_agent = "importwatch/" IMPORTWATCH_VERSION;
    bool operator==(client_settings const&) const = default;
};

/// Builds the client `settings` describe: the TLS trust for https origins,
/// the proxy (proxy_for). Errors name the setting: "ca_file …: no such file",
/// "proxy is not an absolute http URL".
core::expected<std::shared_ptr<http_client>> make_client(asio::any_io_executor ex, client_settings const& settings);

/// What send() makes of the bytes of one response, without a socket (for the
/// fuzzers): the same parser limits (headers 64 KiB, body `max_body`), the same
/// reply (keeping `keep_headers`) or invalid-response failure. The bytes arrive
/// in reads of at most `read_size` (at least 1); running out before the
/// response ends is a network failure, as a connection closed mid-response is.
core::http_outcome parse_response(std::string_view bytes, std::size_t max_body,
                                  std::span<std::string_view const> keep_headers, std::size_t read_size = 16 * 1024);

/// The proxy for `target` from HTTPS_PROXY/https_proxy (HTTP_PROXY for http
/// targets) and NO_PROXY; never for loopback hosts. `env` is injected for tests.
std::optional<core::url> proxy_from_environment(core::url const& target,
                                                std::optional<std::string> const& https_proxy,
                                                std::optional<std::string> const& http_proxy,
                                                std::optional<std::string> const& no_proxy);

/// The proxy to reach `target` through: none for loopback hosts,
/// else `configured` when given, else the process environment (as
/// proxy_from_environment; an empty variable counts as unset).
core::expected<std::optional<core::url>> proxy_for(core::url const& target,
                                                   std::optional<std::string> const& configured);

} // namespace importwatch::net
