#pragma once
// A small HTTP(S)/1.1 server for the admin endpoints and the simulator.
// Bounded: request size, read time and open connections. Handlers are
// coroutines returning a reply; one that takes its time awaits on its own
// (stop() cancels what it awaits). A reply may instead be written verbatim,
// for peers that misbehave on purpose. HEAD is answered like GET with the
// body left out (the handler sees method "HEAD").
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/expected.hpp"
#include "net/asio.hpp"
#include "net/tls.hpp"

namespace importwatch::net {

struct server_request {
    std::string method;                    // "GET", "POST", …
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;   // names lower-cased
    std::string body;

    /// First header with that (lower-case) name, or nullptr.
    std::string const* header(std::string_view name) const;
};

struct server_reply {
    /// Instead of an HTTP answer: these bytes as they are (through TLS on a
    /// TLS connection), then the connection closes — with a TCP reset when
    /// `reset` (the client may then lose bytes it has not read yet), else
    /// with a FIN and no TLS close_notify.
    struct verbatim_t {
        std::string bytes;
        bool reset = false;
    };

    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
    bool close = false;                    // send Connection: close
    std::optional<verbatim_t> verbatim;    // set: the fields above are not used
};

/// The bytes the server writes for `reply` as the last answer on a
/// connection (HTTP/1.1, Connection: close): where a verbatim answer made
/// from a normal one starts. Throws for a header Beast refuses.
std::string reply_bytes(server_reply reply);

/// Answers one request. The server cancels (terminal cancellation) what a
/// handler awaits when it stops or closes the connection; the handler's
/// awaits then throw operation_aborted (or complete with it, for tokens
/// that do not throw), and nothing is answered.
using request_handler = std::function<asio::awaitable<server_reply>(server_request)>;

struct server_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;                // 0 = ephemeral
    std::shared_ptr<ssl::context> tls;     // null = plain HTTP
    std::string name = "http server";      // in log lines
    /// At the bound a new connection closes the open one that has waited
    /// longest for its request (slowloris, idle keep-alive); only when every
    /// open one is busy answering is the newcomer refused.
    std::size_t max_connections = 64;
    std::size_t max_request_body = 64 * 1024;
    /// A whole request (head and body) must arrive within this from the
    /// moment the server waits for it (accept or the TLS handshake, or the
    /// previous answer on a keep-alive connection); so must the handshake and
    /// the write of an answer.
    std::chrono::milliseconds read_timeout{10'000};
};

/// What a connection makes of the bytes it received, without a socket (for the
/// fuzzers): each complete request in turn, read with the limits a connection
/// applies (headers 16 KiB, body `max_request_body`), up to the first one that
/// does not keep the connection alive; and the status the server refuses the
/// next one with (400, 413 or 431; 0 when the bytes simply end).
struct received_requests {
    std::vector<server_request> requests;
    int refused = 0;
};
received_requests parse_requests(std::string_view bytes, std::size_t max_request_body);

/// What the bounds did so far (for /metrics).
struct server_stats {
    std::uint64_t evicted = 0;             // waiting connections closed to make room
    std::uint64_t refused = 0;             // new connections closed: every slot busy
    std::uint64_t timed_out = 0;           // requests begun but not complete within read_timeout
    std::uint64_t too_large = 0;           // requests refused with 413 or 431
    std::uint64_t tls_failed = 0;          // TLS handshakes that failed (plain HTTP, no client certificate, …)
    std::size_t open = 0;                  // connections open now
};

class http_server {
public:
    http_server(asio::any_io_executor ex, server_options options, request_handler handler);
    ~http_server();
    http_server(http_server const&) = delete;
    http_server& operator=(http_server const&) = delete;

    /// Binds and starts accepting; the error names the address.
    core::expected<void> start();
    /// The bound port (after start).
    std::uint16_t port() const;
    /// The TLS context for connections accepted from now on (null: plain
    /// HTTP); open connections keep theirs. For certificates renewed on reload.
    void set_tls(std::shared_ptr<ssl::context> tls);
    /// Stops accepting and closes every open connection, cancelling what
    /// their handlers await (a handler sleeping before its answer wakes).
    void stop();
    server_stats stats() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace importwatch::net
