#pragma once
// The admin HTTP server (docs/operations.md): /healthz, /readyz, /metrics, /v1/watches
// and POST /-/reload, on admin.listen. Answers are built by pure functions of
// the engine's state; the server is net::http_server with tight limits.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/expected.hpp"
#include "net/asio.hpp"
#include "net/http_server.hpp"

namespace importwatch::daemon {

class engine;

// The bounds against hostile or broken admin clients (README "Limits"). At
// the connection bound a newcomer evicts the connection that has waited
// longest for its request, so probes get through a slowloris flood.
inline constexpr std::size_t admin_max_connections = 64;
inline constexpr std::size_t admin_max_request_body = 4 * 1024;
inline constexpr std::chrono::seconds admin_request_timeout{5};
/// admin.tls files (certificate chain, key, client CA bundle) are read up to this.
inline constexpr std::size_t admin_max_tls_file_bytes = std::size_t{1} << 20;

/// What admin.tls, admin.basic_auth, admin.open_paths and enable_reload make
/// of the server, with the TLS files read and checked: built at start and on
/// reload before anything changes, so a broken certificate changes nothing.
struct admin_settings {
    std::shared_ptr<net::ssl::context> tls;        // null: plain HTTP
    std::map<std::string, std::string> users;      // empty: no authentication
    std::vector<std::string> open_paths;
    bool enable_reload = false;
};
/// The error names the key and the file.
core::expected<admin_settings> load_admin_settings(core::admin_config const& admin);

/// Requests refused for want of valid credentials (for /metrics).
struct admin_auth_failures {
    std::uint64_t missing = 0;                     // no Authorization header
    std::uint64_t invalid = 0;                     // malformed, unknown user or wrong password
};

class admin_server {
public:
    /// Applies a new config (coalesced with other reload requests) and
    /// returns the error when it is invalid.
    using reload_fn = std::function<asio::awaitable<core::expected<void>>()>;

    admin_server(asio::any_io_executor ex, engine& e, reload_fn reload);
    ~admin_server();

    /// Binds `listen` ("HOST:PORT"); the error names the address.
    core::expected<void> start(std::string const& listen, admin_settings settings);
    void stop();
    void set_ready(bool ready);
    /// New TLS context, users, open paths and reload switch (on reload);
    /// connections already open keep their TLS context.
    void apply(admin_settings settings);
    void set_reload_enabled(bool enabled);
    std::uint16_t port() const;
    /// The answer to one parsed request, as the server gives it (for the
    /// fuzzers); a permitted reload completes once the reload ran.
    asio::awaitable<net::server_reply> handle(net::server_request req);

private:
    struct impl;
    static asio::awaitable<net::server_reply> answer(std::shared_ptr<impl> self, net::server_request req);
    std::shared_ptr<impl> impl_;
};

/// Prometheus text exposition of everything the engine counts.
std::string render_metrics(engine& e);
/// The admin server's own bounds and refused credentials, in the same format.
std::string render_admin_metrics(net::server_stats const& stats, admin_auth_failures const& auth);
/// The /v1/watches JSON array.
std::string render_watches(engine& e);

/// "HOST:PORT" -> host and port; IPv6 as "[::1]:9464".
core::expected<std::pair<std::string, std::uint16_t>> parse_listen_address(std::string const& listen);

} // namespace importwatch::daemon
