#include "net/http_client.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <list>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "core/config.hpp"
#include "core/untrusted_text.hpp"
#include "net/http_parse_error.hpp"
#include "net/memory_stream.hpp"

namespace importwatch::net {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using core::failure_kind;
using core::request_failure;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t header_limit = 64 * 1024;

core::unexpected<request_failure> failure(failure_kind kind, std::string message) {
    return {request_failure{kind, std::move(message)}};
}

core::unexpected<request_failure> shutting_down() { return failure(failure_kind::network, "shutting down"); }

bool is_ip_literal(std::string const& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string host_port(std::string const& host, std::string const& port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

std::string message_of(error_code const& ec) {
    auto m = ec.message();
    return m.empty() ? ec.category().name() + (":" + std::to_string(ec.value())) : m;
}

// The errors a server's close of an idle kept-alive connection shows up as.
bool is_stale_error(error_code const& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
           ec == asio::ssl::error::stream_truncated;
}

// The deadline runs out on every layer; Beast reports beast::error::timeout,
// the TLS layer may report what the closed socket gave it instead.
bool timed_out(error_code const& ec, steady::time_point deadline) {
    return ec == beast::error::timeout || steady::now() >= deadline;
}

// getaddrinfo runs on Asio's private thread and cannot be interrupted, so the
// coroutine waits on a timer that either the deadline or the resolve ends.
struct resolve_state {
    explicit resolve_state(asio::any_io_executor ex) : wake(ex) {}
    asio::steady_timer wake;
    bool done = false;
    error_code ec;
    tcp::resolver::results_type results;
};

constexpr std::size_t initial_read_buffer = 16 * 1024;

// Reads one response into a core::http_reply: the status, the first value of
// each header asked for (in the order asked) and the body. Every other field
// is looked at and dropped, where Beast's response_parser would store each in
// a container of its own allocations. The limits are ours: headers 64 KiB,
// the body `max_body`.
class reply_parser final : public http::basic_parser<false> {
public:
    reply_parser(std::span<std::string_view const> keep, std::size_t max_body) : keep_(keep) {
        header_limit(importwatch::net::header_limit);
        body_limit(max_body);
    }

    core::http_reply& reply() { return reply_; }

private:
    void on_request_impl(http::verb, beast::string_view, beast::string_view, int, error_code&) override {}

    void on_response_impl(int code, beast::string_view, int, error_code&) override { reply_.status = code; }

    void on_field_impl(http::field, beast::string_view name_bytes, beast::string_view value, error_code&) override {
        std::string_view const name(name_bytes.data(), name_bytes.size());
        for (std::size_t i = 0; i < keep_.size(); ++i) {
            if (!core::same_header_name(keep_[i], name)) continue;
            // The first of its name counts, placed in the order asked for.
            auto at = reply_.headers.begin();
            for (; at != reply_.headers.end(); ++at) {
                if (at->name == keep_[i]) return;
                std::size_t j = 0;
                while (keep_[j] != at->name) ++j;
                if (j > i) break;
            }
            reply_.headers.insert(at, core::header_field{std::string(keep_[i]), std::string(value.data(), value.size())});
            return;
        }
    }

    void on_header_impl(error_code&) override {}

    void on_body_init_impl(boost::optional<std::uint64_t> const& length, error_code&) override {
        if (length) reply_.body.reserve(static_cast<std::size_t>(*length));   // within body_limit
    }

    std::size_t on_body_impl(beast::string_view body, error_code&) override {
        reply_.body.append(body.data(), body.size());
        return body.size();
    }

    void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}

    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code&) override {
        reply_.body.append(body.data(), body.size());
        return body.size();
    }

    void on_finish_impl(error_code&) override {}

    std::span<std::string_view const> keep_;
    core::http_reply reply_;
};

// A limit the response broke: an invalid response.
std::optional<request_failure> limit_failure(error_code const& ec, std::size_t max_body) {
    if (ec == http::error::header_limit)
        return request_failure{failure_kind::invalid_response, "response headers exceed 64 KiB"};
    if (ec == http::error::body_limit)
        return request_failure{failure_kind::invalid_response,
                               "response body exceeds " + std::to_string(max_body) + " bytes"};
    return std::nullopt;
}

struct connection {
    connection(asio::any_io_executor ex, ssl::context* tls_ctx) : resolver(ex) {
        if (tls_ctx) tls.emplace(ex, *tls_ctx);
        else plain.emplace(ex);
        // Beast reads at most max(512, free capacity) at a time: without room,
        // every response of more than 512 bytes (LD's headers alone are) takes
        // two reads, two wake-ups and two timer re-arms.
        buffer.reserve(initial_read_buffer);
    }

    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

    void close() {
        resolver.cancel();
        if (resolving) resolving->wake.cancel();
        error_code ec;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
        lowest().close();
    }

    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
    tcp::resolver resolver;
    std::shared_ptr<resolve_state> resolving;
    beast::flat_buffer buffer;      // one per connection, reused across requests
    std::string request;            // the request head being written, reused likewise
    bool open = false;
    std::size_t exchanges = 0;      // completed request/response pairs
};

struct exchange_result {
    core::http_outcome outcome;
    bool keep = false;              // the connection may serve another request
    bool stale = false;             // failed before any response byte: retry elsewhere
};

using opened = core::expected<void, request_failure>;

} // namespace

struct http_client::impl : std::enable_shared_from_this<http_client::impl> {
    impl(asio::any_io_executor ex, client_options opts) : ex_(std::move(ex)), options_(std::move(opts)) {
        if (options_.max_connections == 0) options_.max_connections = 1;
        if (options_.origin.port.empty()) options_.origin.port = options_.origin.tls() ? "443" : "80";
        bool default_port = options_.origin.port == (options_.origin.tls() ? "443" : "80");
        host_header_ = options_.origin.host.find(':') != std::string::npos ? "[" + options_.origin.host + "]"
                                                                            : options_.origin.host;
        if (!default_port) host_header_ += ":" + options_.origin.port;
    }

    struct waiter {
        explicit waiter(asio::any_io_executor ex) : timer(ex) {}
        asio::steady_timer timer;
        std::unique_ptr<connection> handed;   // an idle connection given to this waiter
        bool slot = false;                    // or the right to open a new one
    };

    asio::any_io_executor ex_;
    client_options options_;
    std::string host_header_;
    std::vector<std::unique_ptr<connection>> idle_;   // a stack: the most recently used first
    std::set<connection*> live_;                      // idle and in use, for shutdown()
    std::list<std::shared_ptr<waiter>> waiters_;
    std::size_t in_use_ = 0;                          // connections (or slots) held by senders
    std::size_t opened_ = 0;
    bool stopping_ = false;

    std::unique_ptr<connection> new_connection() {
        if (options_.origin.tls() && !options_.tls) return nullptr;
        auto c = std::make_unique<connection>(ex_, options_.origin.tls() ? options_.tls.get() : nullptr);
        live_.insert(c.get());
        return c;
    }

    void drop(std::unique_ptr<connection> c) {
        if (!c) return;
        c->close();
        live_.erase(c.get());
    }

    // An idle connection, or the right to open one (a new unopened
    // connection), when either is free at once: most sends, taken without a
    // coroutine of their own.
    std::optional<std::unique_ptr<connection>> try_acquire() {
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            ++in_use_;
            return c;
        }
        if (in_use_ + idle_.size() < options_.max_connections) {
            ++in_use_;
            return new_connection();
        }
        return std::nullopt;
    }

    // Waits for a connection another send gives back, or the deadline.
    asio::awaitable<core::expected<std::unique_ptr<connection>, request_failure>> acquire(steady::time_point deadline) {
        auto w = std::make_shared<waiter>(ex_);
        w->timer.expires_at(deadline);
        waiters_.push_back(w);
        co_await w->timer.async_wait(use_tuple);
        if (w->handed) co_return std::move(w->handed);
        if (w->slot) co_return new_connection();
        waiters_.remove(w);
        if (stopping_) co_return shutting_down();
        co_return failure(failure_kind::timeout, "waiting for a free connection");
    }

    // Gives the connection (or its slot) to the first waiter still in time.
    void release(std::unique_ptr<connection> c, bool keep) {
        if (stopping_) keep = false;
        if (!keep) {
            drop(std::move(c));
            c.reset();
        }
        while (!waiters_.empty() && !stopping_) {
            auto w = waiters_.front();
            waiters_.pop_front();
            if (w->timer.expiry() <= steady::now()) continue;   // it wakes up to its own timeout
            if (c) w->handed = std::move(c);
            else w->slot = true;
            w->timer.cancel();
            return;
        }
        --in_use_;
        if (c) idle_.push_back(std::move(c));
    }

    void shutdown() {
        stopping_ = true;
        for (auto* c : live_) c->close();
        for (auto& c : idle_) live_.erase(c.get());
        idle_.clear();
        auto waiters = std::move(waiters_);
        waiters_.clear();
        for (auto& w : waiters) w->timer.cancel();
    }

    // The bytes Beast's serializer wrote for this request, without a field
    // container or serializer: request line, Host, User-Agent, the common
    // block, the caller's fields (a later one of the same name replaces an
    // earlier, as fields::set did), Content-Length when there is a body or
    // the method is POST or PUT (as prepare_payload did), the blank line.
    // The body is written after these bytes, from the request.
    void serialize_head(std::string& out, client_request const& r) const {
        out.clear();
        auto replaced = [&](std::size_t from, std::string_view name) {
            for (std::size_t i = from; i < r.headers.size(); ++i)
                if (core::same_header_name(r.headers[i].first, name)) return true;
            return false;
        };
        auto field = [&](std::string_view name, std::string_view value) {
            out.append(name).append(": ").append(value).append("\r\n");
        };
        bool const sized = r.method == "POST" || r.method == "PUT" || !r.body.empty();
        out.append(r.method).append(" ");
        // Through a plain-http proxy the target is the absolute URL (RFC 9112 §3.2.2).
        if (options_.proxy && !options_.origin.tls()) out.append("http://").append(host_header_);
        out.append(r.target.empty() ? std::string_view("/") : std::string_view(r.target)).append(" HTTP/1.1\r\n");
        if (!replaced(0, "Host")) field("Host", host_header_);
        if (!options_.user_agent.empty() && !replaced(0, "User-Agent")) field("User-Agent", options_.user_agent);
        if (r.common_headers) out.append(r.common_headers->bytes());
        for (std::size_t i = 0; i < r.headers.size(); ++i) {
            auto const& [name, value] = r.headers[i];
            if (replaced(i + 1, name)) continue;
            if (sized && (core::same_header_name(name, "Content-Length") ||
                          core::same_header_name(name, "Transfer-Encoding")))
                continue;
            field(name, value);
        }
        if (sized) {
            char digits[24];
            auto const end = std::to_chars(digits, digits + sizeof digits, r.body.size()).ptr;
            field("Content-Length", std::string_view(digits, static_cast<std::size_t>(end - digits)));
        }
        out.append("\r\n");
    }

    template <class Stream>
    asio::awaitable<exchange_result> exchange_on(Stream& stream, connection& c, client_request const& req,
                                                 std::span<std::string_view const> keep, steady::time_point deadline) {
        serialize_head(c.request, req);
        std::array<asio::const_buffer, 2> const bytes{asio::buffer(c.request), asio::buffer(req.body)};
        c.lowest().expires_at(deadline);
        auto [wec, written] = co_await asio::async_write(stream, bytes, use_tuple);
        (void)written;
        if (wec) {
            if (timed_out(wec, deadline))
                co_return exchange_result{failure(failure_kind::timeout, "writing request")};
            co_return exchange_result{failure(failure_kind::network, "writing request: " + message_of(wec)), false,
                                      is_stale_error(wec)};
        }

        reply_parser parser(keep, options_.max_body);
        c.lowest().expires_at(deadline);
        auto [rec, read] = co_await http::async_read(stream, c.buffer, parser, use_tuple);
        (void)read;
        if (rec) {
            bool const nothing_received = !parser.got_some() && c.buffer.size() == 0;
            c.buffer.clear();
            if (auto limit = limit_failure(rec, options_.max_body)) co_return exchange_result{core::unexpected{*limit}};
            if (timed_out(rec, deadline))
                co_return exchange_result{failure(failure_kind::timeout, "reading response")};
            if (is_http_parse_error(rec))
                co_return exchange_result{
                    failure(failure_kind::invalid_response, message_of(rec))};
            co_return exchange_result{failure(failure_kind::network, "reading response: " + message_of(rec)), false,
                                      nothing_received && is_stale_error(rec)};
        }

        ++c.exchanges;
        bool const keep_alive = parser.keep_alive() && !parser.need_eof();
        co_return exchange_result{std::move(parser.reply()), keep_alive, false};
    }

    asio::awaitable<opened> open(connection& c, steady::time_point deadline) {
        auto const& origin = options_.origin;
        bool const via_proxy = options_.proxy.has_value();
        std::string const& host = via_proxy ? options_.proxy->host : origin.host;
        std::string port = via_proxy ? options_.proxy->port : origin.port;
        if (port.empty()) port = "80";
        std::string const where = host_port(host, port);

        tcp::resolver::results_type endpoints;
        error_code ec;
        auto address = asio::ip::make_address(host, ec);
        if (!ec) {
            unsigned long p = 0;
            try {
                p = std::stoul(port);
            } catch (...) {
                co_return failure(failure_kind::network, "connect " + where + ": invalid port");
            }
            if (p > 65535) co_return failure(failure_kind::network, "connect " + where + ": invalid port");
            endpoints = tcp::resolver::results_type::create(tcp::endpoint(address, static_cast<std::uint16_t>(p)),
                                                            host, port);
        } else {
            auto st = std::make_shared<resolve_state>(ex_);
            c.resolving = st;
            st->wake.expires_at(deadline);
            c.resolver.async_resolve(host, port, [st](error_code e, tcp::resolver::results_type r) {
                st->done = true;
                st->ec = e;
                st->results = std::move(r);
                st->wake.cancel();
            });
            co_await st->wake.async_wait(use_tuple);
            c.resolving.reset();
            if (stopping_) co_return shutting_down();
            if (!st->done) {
                c.resolver.cancel();
                co_return failure(failure_kind::timeout, "resolving " + host);
            }
            if (st->ec) co_return failure(failure_kind::network, "resolve " + host + ": " + message_of(st->ec));
            endpoints = std::move(st->results);
        }

        c.lowest().expires_at(deadline);
        auto [cec, ep] = co_await c.lowest().async_connect(endpoints, use_tuple);
        (void)ep;
        if (cec) {
            if (timed_out(cec, deadline)) co_return failure(failure_kind::timeout, "connecting to " + where);
            co_return failure(failure_kind::network, "connect " + where + ": " + message_of(cec));
        }
        ++opened_;
        {
            error_code nec;
            c.lowest().socket().set_option(tcp::no_delay(true), nec);
        }

        if (origin.tls()) {
            if (via_proxy) {
                auto tunnel = co_await connect_tunnel(c, deadline);
                if (!tunnel) co_return tunnel;
            }
            auto* ssl_handle = c.tls->native_handle();
            if (is_ip_literal(origin.host)) {
                // No SNI for IP literals (RFC 6066 §3); match the iPAddress SAN.
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), origin.host.c_str());
            } else {
                SSL_set_tlsext_host_name(ssl_handle, origin.host.c_str());
                // SSL_set1_host is the check ssl::host_name_verification makes
                // (X509_check_host), but done inside chain verification, so a
                // mismatch reports "hostname mismatch" instead of a bare failure.
                SSL_set1_host(ssl_handle, origin.host.c_str());
            }
            c.lowest().expires_at(deadline);
            auto [hec] = co_await c.tls->async_handshake(ssl::stream_base::client, use_tuple);
            if (hec) {
                if (timed_out(hec, deadline)) co_return failure(failure_kind::timeout, "tls handshake");
                long const verify = SSL_get_verify_result(ssl_handle);
                if (verify != X509_V_OK)
                    co_return failure(failure_kind::network, std::string("tls handshake: certificate verify failed (") +
                                                                 X509_verify_cert_error_string(verify) + ")");
                co_return failure(failure_kind::network, "tls handshake: " + message_of(hec));
            }
        }
        c.open = true;
        co_return opened{};
    }

    asio::awaitable<opened> connect_tunnel(connection& c, steady::time_point deadline) {
        std::string const authority = host_port(options_.origin.host, options_.origin.port);
        http::request<http::empty_body> req{http::verb::connect, authority, 11};
        req.set(http::field::host, authority);
        if (!options_.user_agent.empty()) req.set(http::field::user_agent, options_.user_agent);
        c.lowest().expires_at(deadline);
        auto [wec, n] = co_await http::async_write(c.lowest(), req, use_tuple);
        (void)n;
        if (wec) {
            if (timed_out(wec, deadline)) co_return failure(failure_kind::timeout, "proxy CONNECT");
            co_return failure(failure_kind::network, "proxy CONNECT " + authority + ": " + message_of(wec));
        }
        http::response_parser<http::empty_body> parser;
        parser.skip(true);   // a 2xx answer to CONNECT has no body: the tunnel follows
        parser.header_limit(header_limit);
        c.lowest().expires_at(deadline);
        auto [rec, m] = co_await http::async_read(c.lowest(), c.buffer, parser, use_tuple);
        (void)m;
        if (rec) {
            if (timed_out(rec, deadline)) co_return failure(failure_kind::timeout, "proxy CONNECT");
            co_return failure(failure_kind::network, "proxy CONNECT " + authority + ": " + message_of(rec));
        }
        auto status = parser.get().result_int();
        if (status / 100 != 2)
            co_return failure(failure_kind::network, "proxy CONNECT " + authority + ": proxy answered " +
                                                         std::to_string(status));
        if (c.buffer.size() != 0)
            co_return failure(failure_kind::network, "proxy CONNECT " + authority + ": unexpected data after reply");
        co_return opened{};
    }
};

header_block::header_block(std::vector<std::pair<std::string, std::string>> fields) : fields_(std::move(fields)) {
    for (auto const& [name, value] : fields_) bytes_.append(name).append(": ").append(value).append("\r\n");
}

http_client::http_client(asio::any_io_executor ex, client_options options)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options))) {}

http_client::~http_client() { impl_->shutdown(); }

// The send itself, not a hand-over to a coroutine of the impl: one coroutine
// frame fewer per request. (Not a plain function returning impl_->send(...)
// either: GCC 12 frees the by-value parameter twice in that forwarding shape.)
// Holding `self` keeps the pool alive past the client while sends are in flight.
asio::awaitable<core::http_outcome> http_client::send(client_request request) {
    auto self = impl_;
    auto const deadline = steady::now() + self->options_.timeout;
    if (self->stopping_) co_return shutting_down();
    if (self->options_.origin.tls() && !self->options_.tls)
        co_return failure(failure_kind::network, "tls: no client context for " + self->options_.origin.host);

    std::unique_ptr<connection> conn;
    if (auto ready = self->try_acquire()) {
        conn = std::move(*ready);
    } else {
        auto acquired = co_await self->acquire(deadline);
        if (!acquired) co_return failure(acquired.error().kind, acquired.error().message);
        conn = std::move(*acquired);
    }

    for (int attempt = 0;; ++attempt) {
        bool const reused = conn->exchanges > 0;
        std::optional<exchange_result> result;
        if (!conn->open) {
            auto ok = co_await self->open(*conn, deadline);
            if (!ok) result.emplace(exchange_result{failure(ok.error().kind, ok.error().message)});
        }
        // exchange_on awaited here, not through a function choosing the
        // stream: one coroutine frame fewer per request.
        if (!result && conn->tls)
            result.emplace(co_await self->exchange_on(*conn->tls, *conn, request, request.keep_headers, deadline));
        else if (!result)
            result.emplace(co_await self->exchange_on(*conn->plain, *conn, request, request.keep_headers, deadline));
        if (self->stopping_) {
            self->release(std::move(conn), false);
            co_return shutting_down();
        }
        if (result->stale && reused && attempt == 0) {
            // The server closed this kept-alive connection while it was
            // idle: once more at once, on a new connection.
            self->drop(std::move(conn));
            conn = self->new_connection();
            continue;
        }
        self->release(std::move(conn), result->keep);
        co_return std::move(result->outcome);
    }
}

void http_client::shutdown() { impl_->shutdown(); }

std::size_t http_client::connections_opened() const { return impl_->opened_; }

core::http_outcome parse_response(std::string_view bytes, std::size_t max_body,
                                  std::span<std::string_view const> keep_headers, std::size_t read_size) {
    memory_stream stream(bytes, read_size);
    beast::flat_buffer buffer;
    buffer.reserve(initial_read_buffer);
    reply_parser parser(keep_headers, max_body);
    error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec) {
        if (auto limit = limit_failure(ec, max_body)) return core::unexpected{*limit};
        if (is_http_parse_error(ec)) return failure(failure_kind::invalid_response, message_of(ec));
        return failure(failure_kind::network, "reading response: " + message_of(ec));
    }
    return std::move(parser.reply());
}

core::expected<std::shared_ptr<http_client>> make_client(asio::any_io_executor ex, client_settings const& settings) {
    client_options options;
    options.origin = settings.origin;
    if (settings.origin.tls()) {
        auto tls = make_client_context(settings.ca_file);
        if (!tls) return core::fail(tls.error());
        options.tls = std::move(*tls);
    }
    auto proxy = proxy_for(settings.origin, settings.proxy);
    if (!proxy) return core::fail(proxy.error());
    options.proxy = std::move(*proxy);
    options.max_connections = settings.max_connections;
    options.timeout = settings.timeout;
    options.user_agent = settings.user_agent;
    return std::make_shared<http_client>(std::move(ex), std::move(options));
}

std::optional<core::url> proxy_from_environment(core::url const& target,
                                                std::optional<std::string> const& https_proxy,
                                                std::optional<std::string> const& http_proxy,
                                                std::optional<std::string> const& no_proxy) {
    std::string const host = lower(target.host);
    if (host == "localhost" || (host.size() > 10 && host.ends_with(".localhost"))) return std::nullopt;
    {
        error_code ec;
        auto address = asio::ip::make_address(host, ec);
        if (!ec && address.is_loopback()) return std::nullopt;
    }

    auto const& chosen = target.tls() ? https_proxy : http_proxy;
    if (!chosen) return std::nullopt;
    std::string value(core::trim(*chosen));
    if (value.empty()) return std::nullopt;

    if (no_proxy) {
        std::string_view list = *no_proxy;
        while (!list.empty()) {
            auto comma = list.find(',');
            std::string entry = lower(core::trim(list.substr(0, comma)));
            list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
            if (entry.empty()) continue;
            if (entry == "*") return std::nullopt;
            if (entry.starts_with("*.")) entry.erase(0, 2);
            else if (entry.starts_with(".")) entry.erase(0, 1);
            if (entry.starts_with("[")) {
                auto close = entry.find(']');
                entry = entry.substr(1, close == std::string::npos ? std::string::npos : close - 1);
            } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
                entry.erase(entry.find(':'));   // "host:port": the port is not compared
            }
            if (entry.empty()) continue;
            if (host == entry) return std::nullopt;
            if (host.size() > entry.size() && host.ends_with(entry) && host[host.size() - entry.size() - 1] == '.')
                return std::nullopt;
        }
    }

    if (value.find("://") == std::string::npos) value = "http://" + value;
    auto proxy = core::parse_url(value);
    if (!proxy || proxy->scheme != "http") return std::nullopt;
    return proxy;
}

core::expected<std::optional<core::url>> proxy_for(core::url const& target,
                                                   std::optional<std::string> const& configured) {
    if (core::is_loopback_host(target.host)) return std::optional<core::url>{};
    if (configured) {
        auto proxy = core::parse_url(*configured);
        if (!proxy) return core::fail("proxy is not an absolute http URL");
        return std::optional<core::url>(*proxy);
    }
    auto env = [](char const* upper, char const* lower) -> std::optional<std::string> {
        if (char const* v = std::getenv(upper); v && *v) return std::string(v);
        if (char const* v = std::getenv(lower); v && *v) return std::string(v);
        return std::nullopt;
    };
    return proxy_from_environment(target, env("HTTPS_PROXY", "https_proxy"), env("HTTP_PROXY", "http_proxy"),
                                  env("NO_PROXY", "no_proxy"));
}

} // namespace importwatch::net
