#include "net/http_server.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <map>
#include <optional>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include "net/http_parse_error.hpp"
#include "net/memory_stream.hpp"
#include "core/duration.hpp"
#include "core/log_throttle.hpp"

namespace importwatch::net {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t header_limit = 16 * 1024;
// How long a closing connection may take: TLS close_notify, draining an
// over-limit body so the client reads our answer instead of a reset.
constexpr std::chrono::seconds linger_time{1};
constexpr std::size_t drain_limit = 1024 * 1024;

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

void log_exception(char const* what, std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (std::exception const& ex) {
        spdlog::error("http server: {}: {}", what, ex.what());
    } catch (...) {
        spdlog::error("http server: {}: unknown exception", what);
    }
}

struct session {
    session(tcp::socket socket, std::shared_ptr<ssl::context> tls_ctx) : context(std::move(tls_ctx)) {
        if (context) tls.emplace(beast::tcp_stream(std::move(socket)), *context);
        else plain.emplace(std::move(socket));
    }

    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

    // Also wakes the connection's coroutine from whatever it awaits, the
    // handler's own waits included.
    void abort() {
        closed = true;
        cancel.emit(asio::cancellation_type::terminal);
        error_code ec;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
        lowest().close();
    }

    // SO_LINGER 0 makes close() send a RST: the client sees a reset, not a FIN.
    void reset() {
        closed = true;
        error_code ec;
        lowest().socket().set_option(asio::socket_base::linger(true, 0), ec);
        lowest().close();
    }

    // Held for the connection's life: a reload may replace the server's.
    std::shared_ptr<ssl::context> context;
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
    // Bound to the connection's coroutine: abort() cancels what it awaits.
    asio::cancellation_signal cancel;
    bool closed = false;
    // Waiting for a request (handshake, head or body) since when: such a
    // connection may be evicted for a newcomer; one being answered may not.
    bool waiting = true;
    std::chrono::steady_clock::time_point waiting_since = std::chrono::steady_clock::now();
};

core::sys_ms wall_clock() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

// Every request is read with our limits.
void set_limits(http::request_parser<http::string_body>& parser, std::size_t max_request_body) {
    parser.header_limit(header_limit);
    parser.body_limit(max_request_body);
}

struct refusal {
    http::status status;
    char const* body;
};

// The answer to a request that broke a limit or is not HTTP; nullopt for
// other read errors (end of stream, timeout, reset), which just close.
std::optional<refusal> refusal_for(error_code const& ec) {
    if (ec == http::error::body_limit) return refusal{http::status::payload_too_large, "request body too large\n"};
    if (ec == http::error::header_limit)
        return refusal{http::status::request_header_fields_too_large, "request headers too large\n"};
    if (ec && is_http_parse_error(ec)) return refusal{http::status::bad_request, "bad request\n"};
    return std::nullopt;
}

http::response<http::string_body> make_response(server_reply& reply, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
    res.set(http::field::server, "importwatch");
    res.set(http::field::content_type, reply.content_type);
    for (auto const& [k, v] : reply.headers) res.insert(k, v);
    res.body() = std::move(reply.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

// What a handler sees of a request (the body moved out).
server_request request_of(http::request<http::string_body>& msg) {
    server_request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (auto const& f : msg) req.headers.emplace_back(lower(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    return req;
}

} // namespace

std::string const* server_request::header(std::string_view name) const {
    for (auto const& [k, v] : headers)
        if (k == name) return &v;
    return nullptr;
}

struct http_server::impl : std::enable_shared_from_this<http_server::impl> {
    impl(asio::any_io_executor ex, server_options opts, request_handler handler)
        : ex_(ex), options_(std::move(opts)), handler_(std::move(handler)), acceptor_(ex) {}

    asio::any_io_executor ex_;
    server_options options_;
    request_handler handler_;
    tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    bool stopped_ = false;
    bool started_ = false;
    std::uint64_t next_id_ = 0;
    std::map<std::uint64_t, std::shared_ptr<session>> sessions_;
    server_stats stats_;
    core::log_throttle throttle_;

    /// A bound bit: one log line a minute per kind, with the count held back.
    void log_bound(std::string const& kind, std::string const& what) {
        auto held = throttle_.admit(kind, wall_clock());
        if (!held) return;
        if (*held) spdlog::warn("{}: {} ({} more since the last such line)", options_.name, what, *held);
        else spdlog::warn("{}: {}", options_.name, what);
    }

    /// Closes the connection that has waited longest for its request; false
    /// when every open connection is busy answering.
    bool evict_longest_waiting() {
        auto victim = sessions_.end();
        for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
            if (it->second->waiting && (victim == sessions_.end() ||
                                        it->second->waiting_since < victim->second->waiting_since))
                victim = it;
        if (victim == sessions_.end()) return false;
        victim->second->abort();
        sessions_.erase(victim);   // its coroutine unwinds on its own
        ++stats_.evicted;
        log_bound("evicted", fmt::format("{} connections open: closed the one waiting longest for its request",
                                         options_.max_connections));
        return true;
    }

    void count_timeout() {
        ++stats_.timed_out;
        log_bound("timed_out", fmt::format("closed a connection whose request did not arrive within {}",
                                           core::format_duration(options_.read_timeout)));
    }

    core::expected<void> start() {
        std::string const where = options_.host + ":" + std::to_string(options_.port);
        if (started_) return core::fail("listen " + where + ": already started");
        error_code ec;
        tcp::endpoint endpoint;
        auto address = asio::ip::make_address(options_.host, ec);
        if (!ec) {
            endpoint = tcp::endpoint(address, options_.port);
        } else {
            tcp::resolver resolver(ex_);
            auto results = resolver.resolve(options_.host, std::to_string(options_.port), ec);
            if (ec || results.empty())
                return core::fail("listen " + where + ": cannot resolve " + options_.host +
                                  (ec ? ": " + ec.message() : ""));
            endpoint = results.begin()->endpoint();
        }
        acceptor_.open(endpoint.protocol(), ec);
        if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor_.bind(endpoint, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            error_code ignored;
            acceptor_.close(ignored);
            return core::fail("listen " + where + ": " + ec.message());
        }
        port_ = acceptor_.local_endpoint(ec).port();
        started_ = true;
        asio::co_spawn(ex_, accept_loop(shared_from_this()),
                       [](std::exception_ptr e) { log_exception("accept loop", e); });
        return {};
    }

    void stop() {
        stopped_ = true;
        error_code ec;
        acceptor_.close(ec);
        for (auto& [id, s] : sessions_) s->abort();
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
        asio::steady_timer pause(self->ex_);
        while (!self->stopped_) {
            auto [ec, socket] = co_await self->acceptor_.async_accept(use_tuple);
            if (self->stopped_) break;
            if (ec) {
                if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) break;
                // Out of descriptors and the like: breathe instead of spinning.
                spdlog::warn("http server: accept: {}", ec.message());
                pause.expires_after(std::chrono::milliseconds(100));
                co_await pause.async_wait(use_tuple);
                continue;
            }
            if (self->sessions_.size() >= self->options_.max_connections && !self->evict_longest_waiting()) {
                // Every slot is busy answering (each within read_timeout):
                // only then is the newcomer closed at once.
                error_code ignored;
                socket.shutdown(tcp::socket::shutdown_both, ignored);
                socket.close(ignored);
                ++self->stats_.refused;
                self->log_bound("refused", fmt::format("{} connections open and all busy: refused a new one",
                                                       self->options_.max_connections));
                continue;
            }
            auto s = std::make_shared<session>(std::move(socket), self->options_.tls);
            auto const id = ++self->next_id_;
            self->sessions_.emplace(id, s);
            asio::co_spawn(self->ex_, serve(self, s, id),
                           [](std::exception_ptr e) { log_exception("connection", e); });
        }
    }

    static asio::awaitable<void> serve(std::shared_ptr<impl> self, std::shared_ptr<session> s, std::uint64_t id) {
        struct forget {
            impl& owner;
            std::uint64_t id;
            ~forget() { owner.sessions_.erase(id); }
        } guard{*self, id};

        if (s->tls) {
            s->lowest().expires_after(self->options_.read_timeout);
            auto [ec] = co_await s->tls->async_handshake(ssl::stream_base::server, use_tuple);
            if (ec == beast::error::timeout) self->count_timeout();
            else if (ec && ec != asio::error::eof && ec != ssl::error::stream_truncated) {
                // Plain HTTP on a TLS port, no or an untrusted client
                // certificate, scanners: the connection closes unanswered.
                // (A bare connect and close, as a TCP probe does, is not counted.)
                ++self->stats_.tls_failed;
                self->log_bound("tls_failed", "closed a connection whose TLS handshake failed: " + ec.message());
            }
            if (ec) {
                s->abort();
                co_return;
            }
            co_await self->serve_on(*s->tls, s);
        } else {
            co_await self->serve_on(*s->plain, s);
        }
        s->abort();
    }

    template <class Stream>
    asio::awaitable<void> serve_on(Stream& stream, std::shared_ptr<session> const& connection) {
        session& s = *connection;
        beast::flat_buffer buffer;
        for (;;) {
            if (stopped_) co_return;
            http::request_parser<http::string_body> parser;
            set_limits(parser, options_.max_request_body);
            s.lowest().expires_after(options_.read_timeout);
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
            (void)n;
            s.waiting = false;
            // An idle keep-alive connection closing is normal; a request begun
            // and not finished in time is the bound biting.
            if (ec == beast::error::timeout && (parser.got_some() || buffer.size() > 0)) count_timeout();
            if (ec == http::error::body_limit || ec == http::error::header_limit) {
                ++stats_.too_large;
                log_bound("too_large", fmt::format("refused a request over the size limit ({} bytes of head, {} of body)",
                                                   header_limit, options_.max_request_body));
            }
            if (auto r = refusal_for(ec)) {
                co_await refuse(stream, s, r->status, r->body);
                co_return;
            }
            if (ec) co_return;   // end of stream, read timeout, reset, stop()

            auto& msg = parser.get();
            bool const head = msg.method() == http::verb::head;
            unsigned const version = msg.version();
            bool const client_keep_alive = msg.keep_alive();
            server_request req = request_of(msg);

            server_reply reply;
            std::optional<std::string> failed;   // what the handler threw
            try {
                reply = co_await answer(handler_, std::move(req), connection);
            } catch (boost::system::system_error const& e) {
                // Cancelled by stop() or a closing connection: not a failure.
                if (!(s.closed && e.code() == asio::error::operation_aborted)) failed = e.what();
            } catch (std::exception const& e) {
                failed = e.what();
            } catch (...) {
                failed = "unknown exception";
            }
            if (failed) spdlog::error("http server: handler for {}: {}", std::string(msg.target()), *failed);
            if (stopped_ || s.closed) co_return;
            if (failed) {
                reply = server_reply{};
                reply.status = 500;
                reply.body = "internal error\n";
            }

            if (reply.verbatim) {
                co_await write_verbatim(stream, s, *reply.verbatim);
                co_return;
            }

            bool const keep_alive = client_keep_alive && !reply.close;
            http::response<http::string_body> res;
            try {
                res = make_response(reply, version, keep_alive);
            } catch (std::exception const& e) {
                // A header Beast refuses (too long, bad characters): the
                // handler's bug, answered like an exception in it.
                spdlog::error("http server: reply to {}: {}", std::string(msg.target()), e.what());
                server_reply internal;
                internal.status = 500;
                internal.body = "internal error\n";
                res = make_response(internal, version, keep_alive);
            }

            s.lowest().expires_after(options_.read_timeout);
            if (head) {
                // Content-Length says what GET would send; no body follows.
                http::response_serializer<http::string_body> sr{res};
                auto [hec, hn] = co_await http::async_write_header(stream, sr, use_tuple);
                (void)hn;
                if (hec) co_return;
                if (!res.keep_alive()) {
                    co_await close_gracefully(stream, s, false);
                    co_return;
                }
                s.waiting = true;
                s.waiting_since = std::chrono::steady_clock::now();
                continue;
            }
            auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
            (void)wn;
            if (wec) co_return;
            if (!res.keep_alive()) {
                co_await close_gracefully(stream, s, false);
                co_return;
            }
            s.waiting = true;
            s.waiting_since = std::chrono::steady_clock::now();
        }
    }

    // The handler's answer, on a coroutine of its own bound to the
    // connection's signal: abort() cancels what the handler awaits, and every
    // await after that throws, so a handler need not check after each one.
    // Bound for the handler only: a slot bound to the whole connection costs
    // every read and write of it (a slowloris flood under ASan showed it).
    // The handler's coroutine holds the connection, so the signal outlives it.
    asio::awaitable<server_reply> answer(request_handler const& handler, server_request req,
                                         std::shared_ptr<session> const& connection) {
        auto run = [](request_handler const& h, server_request r,
                      std::shared_ptr<session>) -> asio::awaitable<server_reply> { co_return co_await h(std::move(r)); };
        co_return co_await asio::co_spawn(
            ex_, run(handler, std::move(req), connection),
            asio::bind_cancellation_slot(connection->cancel.slot(), asio::use_awaitable));
    }

    // The bytes as they are, then a close: a FIN (no TLS close_notify), or a
    // reset (SO_LINGER 0) when asked.
    template <class Stream>
    asio::awaitable<void> write_verbatim(Stream& stream, session& s, server_reply::verbatim_t const& v) {
        if (!v.bytes.empty()) {
            s.lowest().expires_after(options_.read_timeout);
            auto [ec, n] = co_await asio::async_write(stream, asio::buffer(v.bytes), use_tuple);
            (void)ec;
            (void)n;
        }
        if (v.reset) s.reset();
        else s.abort();
    }

    template <class Stream>
    asio::awaitable<void> refuse(Stream& stream, session& s, http::status status, std::string body) {
        http::response<http::string_body> res{status, 11};
        res.set(http::field::server, "importwatch");
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = std::move(body);
        res.keep_alive(false);
        res.prepare_payload();
        s.lowest().expires_after(linger_time);
        auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
        (void)n;
        if (!ec) co_await close_gracefully(stream, s, true);
    }

    // Half-closes and, for a refused request, reads what the client still
    // sends: closing with unread data would send a RST that can destroy our
    // answer in the client's receive queue.
    template <class Stream>
    asio::awaitable<void> close_gracefully(Stream& stream, session& s, bool drain) {
        if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
            (void)drain;
            s.lowest().expires_after(linger_time);
            co_await stream.async_shutdown(use_tuple);
        } else {
            (void)stream;
            error_code ec;
            s.lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
            if (drain && !ec) {
                s.lowest().expires_after(linger_time);
                std::array<char, 16 * 1024> sink{};
                std::size_t total = 0;
                while (total < drain_limit && !stopped_) {
                    auto [rec, n] = co_await s.lowest().async_read_some(asio::buffer(sink), use_tuple);
                    if (rec) break;
                    total += n;
                }
            }
        }
        s.abort();
    }
};

received_requests parse_requests(std::string_view bytes, std::size_t max_request_body) {
    received_requests out;
    memory_stream stream(bytes, bytes.size());
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        set_limits(parser, max_request_body);
        error_code ec;
        http::read(stream, buffer, parser, ec);
        if (auto r = refusal_for(ec)) out.refused = static_cast<int>(r->status);
        if (ec) return out;
        auto& msg = parser.get();
        bool const keep_alive = msg.keep_alive();
        out.requests.push_back(request_of(msg));
        if (!keep_alive) return out;
    }
}

std::string reply_bytes(server_reply reply) {
    auto res = make_response(reply, 11, false);
    std::ostringstream out;
    out << res;
    return std::move(out).str();
}

http_server::http_server(asio::any_io_executor ex, server_options options, request_handler handler)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options), std::move(handler))) {}

http_server::~http_server() { impl_->stop(); }

core::expected<void> http_server::start() { return impl_->start(); }

std::uint16_t http_server::port() const { return impl_->port_; }

void http_server::stop() { impl_->stop(); }

void http_server::set_tls(std::shared_ptr<ssl::context> tls) { impl_->options_.tls = std::move(tls); }

server_stats http_server::stats() const {
    auto s = impl_->stats_;
    s.open = impl_->sessions_.size();
    return s;
}

} // namespace importwatch::net
