// The operator-facing surface of `importwatch run` (docs/operations.md): the
// admin HTTP server, reload by SIGHUP and POST /-/reload, signals, sd_notify
// and the log formats. The simulator (and a webhook receiver) run in this
// process's io_context, pumped while the importwatch binary runs as a child.
#define BOOST_TEST_MODULE admin_and_reload
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <set>
#include <atomic>
#include <mutex>
#include <thread>
#include <sstream>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "common/simulated_launchdarkly.hpp"
#include "common/promtool.hpp"
#include "common/testing.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "sim/simulator.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

constexpr char const* token = "secret-token-XYZ";
constexpr char const* header_secret = "hdr-value-SECRET-123";
constexpr char const* webhook_key = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==";

constexpr char const* scenario_yaml = R"(
token: secret-token-XYZ
imports:
  - { project: p, environment: e, segment: s, import_id: fast,
      steps: [{ status: preparing, for: 300ms }, { status: in_progress, for: 1500ms }, { status: complete }] }
  - { project: p, environment: e, segment: s, import_id: forever, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: slow, steps: [{ status: preparing }],
      faults: [{ type: delay, delay: 4s, count: 1 }] }
  - { project: p, environment: e, segment: s, import_id: extra, steps: [{ status: pending_approval }] }
)";

bool is(boost::json::value const& v, std::string_view s) { return v.is_string() && v.as_string() == s; }
bool is(boost::json::value const& v, bool b) { return v.is_bool() && v.as_bool() == b; }
bool is(boost::json::value const& v, char const* s) { return is(v, std::string_view(s)); }

/// A webhook receiver: records requests, answers 204 after `delay`.
struct webhook_receiver {
    std::vector<net::server_request> received;
    std::chrono::milliseconds delay{0};
    std::unique_ptr<net::http_server> server;

    explicit webhook_receiver(boost::asio::io_context& ioc) {
        net::server_options o;
        server = std::make_unique<net::http_server>(
            ioc.get_executor(), o, [this](net::server_request r) -> asio::awaitable<net::server_reply> {
                received.push_back(r);
                if (delay.count() > 0) {   // the server cancels the wait when it stops
                    asio::steady_timer wait(co_await asio::this_coro::executor, delay);
                    co_await wait.async_wait(asio::use_awaitable);
                }
                net::server_reply reply;
                reply.status = 204;
                co_return reply;
            });
        auto started = server->start();
        BOOST_REQUIRE(started);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()) + "/hook"; }
};

// The simulator over plain HTTP (what is tested here is the admin surface,
// not TLS), a webhook receiver and a free port for the admin server.
struct fixture : simulated_launchdarkly {
    std::unique_ptr<webhook_receiver> hooks = std::make_unique<webhook_receiver>(ioc);
    std::uint16_t admin_port = free_port();

    explicit fixture(std::string const& scenario = scenario_yaml) : simulated_launchdarkly(scenario, transport::plain) {}

    std::string config(std::string const& watches, bool enable_reload = false, std::string const& log_format = "text",
                       std::string const& extra = "") const {
        return simulated_launchdarkly::config(
            {.watches = watches,
             .admin = "  listen: 127.0.0.1:" + std::to_string(admin_port) +
                      "\n  enable_reload: " + (enable_reload ? "true" : "false") + "\n",
             .extra = "shutdown_grace: 3s\n"
                      "events:\n  log: { format: " + log_format + ", level: info }\n"
                      "  webhooks:\n    - name: ops\n      url: " + hooks->url() +
                      "\n      secret_env: HOOK_SECRET\n      headers: { X-Api-Key: " + header_secret + " }\n" +
                      extra});
    }

    std::map<std::string, std::string> env(std::map<std::string, std::string> more = {}) const {
        std::map<std::string, std::string> e{{"SIM_TOKEN", token}, {"HOOK_SECRET", webhook_key},
                                             {"NOTIFY_SOCKET", ""}, {"WATCHDOG_USEC", ""}, {"WATCHDOG_PID", ""}};
        for (auto& [k, v] : more) e[k] = v;
        return e;
    }

    /// One request to the admin server, pumping the simulator meanwhile.
    std::optional<core::http_reply> request(std::string const& method, std::string const& target,
                                            std::string body = {}) {
        net::client_options o;
        o.origin = *core::parse_url("http://127.0.0.1:" + std::to_string(admin_port));
        o.max_connections = 1;
        o.timeout = 5s;
        o.user_agent = "admin-test";
        net::http_client client(ioc.get_executor(), o);
        std::optional<core::http_outcome> out;
        auto task = [&]() -> asio::awaitable<void> {
            static constexpr std::string_view kept[] = {"Content-Type"};
            net::client_request req{method, target, {}, std::move(body), kept};
            auto r = co_await client.send(std::move(req));
            out.emplace(std::move(r));
        };
        boost::asio::co_spawn(ioc, task(), boost::asio::detached);
        run_until(ioc, [&] { return out.has_value(); }, 10s);
        client.shutdown();
        run_until(ioc, [&] { return out.has_value(); }, 1s);
        if (!out || !*out) return std::nullopt;
        return **out;
    }
    std::optional<core::http_reply> get(std::string const& target) { return request("GET", target); }

    int status_of(std::string const& method, std::string const& target) {
        auto r = request(method, target);
        return r ? r->status : -1;
    }

    /// Waits until the admin server answers /healthz.
    bool wait_for_admin(child_process& daemon) {
        return run_until(ioc, [&] {
            if (!daemon.running()) return true;
            return status_of("GET", "/healthz") == 200;
        }, 30s) && daemon.running();
    }

    std::string why_not_up(child_process& daemon) {
        auto rc = daemon.wait(0ms);
        return "admin server on port " + std::to_string(admin_port) + " not up; daemon " +
               (rc ? "exited " + std::to_string(*rc) : std::string("running")) + "; stderr:\n" + daemon.err();
    }

    boost::json::array watches() {
        auto r = get("/v1/watches");
        if (!r || r->status != 200) return {};
        boost::system::error_code ec;
        auto v = boost::json::parse(r->body, ec);
        if (ec || !v.is_array()) return {};
        return v.as_array();
    }
    std::optional<boost::json::object> watch_named(std::string const& name) {
        for (auto const& w : watches())
            if (w.is_object() && w.as_object().contains("name") && is(w.at("name"), name))
                return w.as_object();
        return std::nullopt;
    }
};

/// The value of one sample ("name{labels}") in a Prometheus text exposition.
std::optional<double> sample(std::string const& text, std::string const& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
}

std::vector<std::string> lines_of(std::string const& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

std::size_t count(std::string const& haystack, std::string const& needle) {
    std::size_t n = 0;
    for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
    return n;
}

bool is_rfc3339(boost::json::value const& v) {
    static std::regex const re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$)");
    return v.is_string() && std::regex_match(std::string(v.as_string()), re);
}
bool is_time_or_null(boost::json::value const& v) { return v.is_null() || is_rfc3339(v); }

/// Every field of a /v1/watches object, with its type (docs/operations.md).
void check_watch_shape(boost::json::object const& w) {
    std::set<std::string> keys;
    for (auto const& kv : w) keys.insert(std::string(kv.key()));
    std::set<std::string> const expected{"name", "project", "environment", "segment", "import_id", "status",
                                         "status_since", "terminal", "failed", "last_error", "last_poll",
                                         "next_poll", "paused_until", "token_rejected"};
    BOOST_TEST(keys == expected, boost::test_tools::per_element());
    for (char const* k : {"name", "project", "environment", "segment", "import_id"}) BOOST_TEST(w.at(k).is_string());
    BOOST_TEST((w.at("status").is_null() || w.at("status").is_string()));
    BOOST_TEST(w.at("terminal").is_bool());
    BOOST_TEST(w.at("failed").is_bool());
    BOOST_TEST(w.at("token_rejected").is_bool());
    BOOST_TEST((w.at("last_error").is_null() || w.at("last_error").is_string()));
    for (char const* k : {"status_since", "last_poll", "next_poll", "paused_until"}) {
        BOOST_TEST_INFO(k << " = " << boost::json::serialize(w.at(k)));
        BOOST_TEST(is_time_or_null(w.at(k)));
    }
    if (w.at("status").is_null()) BOOST_TEST(w.at("status_since").is_null());
    else BOOST_TEST(is_rfc3339(w.at("status_since")));
}

/// A unix datagram socket standing in for systemd's NOTIFY_SOCKET. A thread
/// reads it all the time, like systemd: sd_notify blocks on a full queue.
struct notify_socket {
    temp_dir dir;
    std::string path = (dir.path() / "notify").string();
    int fd = -1;
    std::mutex mutex;
    std::vector<std::string> received;
    std::atomic<bool> done{false};
    std::thread reader;

    notify_socket() {
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        BOOST_REQUIRE(fd >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        BOOST_REQUIRE(path.size() < sizeof(a.sun_path));
        std::strcpy(a.sun_path, path.c_str());
        BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
        timeval tv{0, 50'000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        reader = std::thread([this] {
            char buf[8192];
            while (!done) {
                auto n = ::recv(fd, buf, sizeof(buf), 0);
                if (n < 0) continue;
                std::lock_guard lock(mutex);
                received.emplace_back(buf, std::size_t(n));
            }
        });
    }
    ~notify_socket() {
        done = true;
        reader.join();
        ::close(fd);
    }

    std::vector<std::string> messages() {
        std::lock_guard lock(mutex);
        return received;
    }
    /// Index of the first message at or after `from` containing `needle`.
    std::optional<std::size_t> find(std::string const& needle, std::size_t from = 0) {
        auto m = messages();
        for (std::size_t i = from; i < m.size(); ++i)
            if (m[i].find(needle) != std::string::npos) return i;
        return std::nullopt;
    }
    std::size_t count(std::string const& needle) {
        std::size_t n = 0;
        for (auto const& m : messages())
            if (m.find(needle) != std::string::npos) ++n;
        return n;
    }
    std::string all() {
        std::string s;
        for (auto const& m : messages()) s += "[" + m + "] ";
        return s;
    }
};

/// A blocking TCP connection to 127.0.0.1:port (-1 on failure).
int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/// Sends `request` on a fresh connection and returns what comes back until EOF.
std::string raw_exchange(std::uint16_t port, std::string const& request) {
    int fd = connect_to(port);
    if (fd < 0) return {};
    std::size_t sent = 0;
    while (sent < request.size()) {
        auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;   // the server may stop reading once it has refused
        sent += std::size_t(n);
    }
    std::string response;
    char buf[4096];
    for (;;) {
        auto n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        response.append(buf, std::size_t(n));
    }
    ::close(fd);
    return response;
}

} // namespace

BOOST_AUTO_TEST_CASE(admin_endpoints_metrics_secrets_and_sigterm) {
    fixture f;
    auto cfg = f.dir.write("config.yaml", f.config(watch_entry("fast", "fast") + watch_entry("forever", "forever") +
                                                   watch_entry("slow", "slow") + watch_entry("missing", "missing")));
    child_process daemon({"run", "--config", cfg}, f.env());
    BOOST_REQUIRE_MESSAGE(f.wait_for_admin(daemon), f.why_not_up(daemon));
    // A request that never finishes: the server's read time is bounded (10 s),
    // checked at the end.
    auto const slow_started = std::chrono::steady_clock::now();
    int const slowloris = connect_to(f.admin_port);
    BOOST_REQUIRE(slowloris >= 0);
    std::string const partial = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    BOOST_REQUIRE(::send(slowloris, partial.data(), partial.size(), MSG_NOSIGNAL) == ssize_t(partial.size()));

    // "slow" answers its first poll after 4 s: not observed yet.
    {
        auto slow = f.watch_named("slow");
        BOOST_REQUIRE(slow);
        check_watch_shape(*slow);
        BOOST_TEST(slow->at("status").is_null());
        BOOST_TEST(slow->at("status_since").is_null());
        BOOST_TEST(is(slow->at("terminal"), false));
        BOOST_TEST(is(slow->at("failed"), false));
        BOOST_TEST(slow->at("last_error").is_null());
        auto metrics = f.get("/metrics");
        BOOST_REQUIRE(metrics);
        BOOST_TEST(sample(metrics->body, R"(importwatch_watches{status="none"})").value_or(0) >= 1);
    }

    // /healthz, /readyz
    {
        auto h = f.get("/healthz");
        BOOST_REQUIRE(h);
        BOOST_TEST(h->status == 200);
        BOOST_TEST(h->body.starts_with("ok"));
        BOOST_TEST(f.status_of("GET", "/readyz") == 200);
        BOOST_TEST(f.status_of("GET", "/healthz?probe=1") == 200);
    }

    // Wait for every watch to be observed (slow after its 4 s delay), fast to
    // complete and missing (404) to fail.
    bool settled = run_until(f.ioc, [&] {
        auto fast = f.watch_named("fast");
        auto slow = f.watch_named("slow");
        auto missing = f.watch_named("missing");
        return fast && is(fast->at("status"), "complete") && slow && is(slow->at("status"), "preparing") && missing &&
               is(missing->at("failed"), true) && !f.hooks->received.empty();
    }, 20s);
    BOOST_TEST_INFO(daemon.err());
    BOOST_REQUIRE(settled);

    // /v1/watches: shape and values.
    {
        auto r = f.get("/v1/watches");
        BOOST_REQUIRE(r);
        BOOST_TEST(r->status == 200);
        BOOST_TEST(r->header("Content-Type").value_or("").starts_with("application/json"));
        auto all = f.watches();
        BOOST_TEST(all.size() == 4u);
        for (auto const& w : all) {
            BOOST_REQUIRE(w.is_object());
            check_watch_shape(w.as_object());
        }
        auto fast = *f.watch_named("fast");
        BOOST_TEST(is(fast.at("terminal"), true));
        BOOST_TEST(is(fast.at("failed"), false));
        BOOST_TEST(fast.at("next_poll").is_null());
        BOOST_TEST(is_rfc3339(fast.at("last_poll")));
        BOOST_TEST(is(fast.at("project"), "p"));
        BOOST_TEST(is(fast.at("environment"), "e"));
        BOOST_TEST(is(fast.at("segment"), "s"));
        BOOST_TEST(is(fast.at("import_id"), "fast"));
        auto forever = *f.watch_named("forever");
        BOOST_TEST(is(forever.at("status"), "in_progress"));
        BOOST_TEST(is(forever.at("terminal"), false));
        BOOST_TEST(is_rfc3339(forever.at("next_poll")));
        auto missing = *f.watch_named("missing");
        BOOST_TEST(missing.at("status").is_null());
        BOOST_TEST(missing.at("last_error").is_string());
        BOOST_TEST(is_rfc3339(missing.at("last_poll")));
    }

    // /metrics: every documented name, sane values, promtool-clean.
    {
        auto r = f.get("/metrics");
        BOOST_REQUIRE(r);
        BOOST_TEST(r->status == 200);
        BOOST_TEST(r->header("Content-Type").value_or("").starts_with("text/plain"));
        auto const& m = r->body;
        BOOST_TEST_INFO(m);
        for (char const* name :
             {"importwatch_build_info{version=", "importwatch_watches{status=", "importwatch_polls_total{result=",
              "importwatch_poll_duration_seconds_bucket{le=", "importwatch_poll_duration_seconds_sum ",
              "importwatch_poll_duration_seconds_count ", "importwatch_transitions_total{status=",
              "importwatch_rate_limit_pauses_total ", "importwatch_webhook_deliveries_total{webhook=\"ops\",result=",
              "importwatch_webhook_queue_depth{webhook=\"ops\"}", "importwatch_webhook_dead_letters_total{webhook=\"ops\"}",
              "importwatch_webhook_oldest_pending_seconds{webhook=\"ops\"}", "importwatch_failed_watches ",
              "importwatch_stalled_watches ", "importwatch_last_successful_poll_timestamp_seconds ",
              "importwatch_scheduler_lag_seconds ", "importwatch_config_last_reload_successful "}) {
            BOOST_TEST_INFO(name);
            BOOST_TEST(m.find(std::string("\n") + name) != std::string::npos);
        }
        for (char const* result : {"ok", "rate_limited", "client_error", "server_error", "network_error",
                                   "invalid_response"})
            BOOST_TEST(sample(m, std::string("importwatch_polls_total{result=\"") + result + "\"}").has_value());
        BOOST_TEST(sample(m, R"(importwatch_polls_total{result="ok"})").value_or(0) > 0);
        BOOST_TEST(sample(m, R"(importwatch_polls_total{result="client_error"})").value_or(0) >= 1);   // 404
        BOOST_TEST(sample(m, R"(importwatch_transitions_total{status="complete"})").value_or(0) == 1);
        BOOST_TEST(sample(m, R"(importwatch_transitions_total{status="in_progress"})").value_or(0) >= 2);
        BOOST_TEST(sample(m, R"(importwatch_watches{status="complete"})").value_or(-1) == 1);
        BOOST_TEST(sample(m, R"(importwatch_watches{status="in_progress"})").value_or(-1) == 1);
        BOOST_TEST(sample(m, R"(importwatch_watches{status="preparing"})").value_or(-1) == 1);
        BOOST_TEST(sample(m, R"(importwatch_watches{status="none"})").value_or(-1) == 1);   // missing
        BOOST_TEST(sample(m, "importwatch_failed_watches").value_or(-1) == 1);
        BOOST_TEST(sample(m, "importwatch_stalled_watches").value_or(-1) == 0);
        BOOST_TEST(sample(m, "importwatch_config_last_reload_successful").value_or(-1) == 1);
        BOOST_TEST(sample(m, "importwatch_poll_duration_seconds_count").value_or(0) > 0);
        BOOST_TEST(sample(m, R"(importwatch_poll_duration_seconds_bucket{le="+Inf"})").value_or(-1) ==
                   sample(m, "importwatch_poll_duration_seconds_count").value_or(-2));
        auto const last_ok = sample(m, "importwatch_last_successful_poll_timestamp_seconds").value_or(0);
        auto const now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        BOOST_TEST(last_ok > now - 60);
        BOOST_TEST(last_ok < now + 60);
        BOOST_TEST(sample(m, R"(importwatch_webhook_deliveries_total{webhook="ops",result="delivered"})").value_or(0) >= 1);
        BOOST_TEST(sample(m, "importwatch_scheduler_lag_seconds").value_or(-1) >= 0);
        if (auto check = promtool_check(f.dir, m)) {
            BOOST_TEST_INFO(check->second);
            BOOST_TEST(check->first == 0);
            BOOST_TEST(check->second.empty());
        } else {
            BOOST_TEST_MESSAGE("promtool not found (apt-get install prometheus): skipping `promtool check metrics`");
        }
    }

    // Methods and paths.
    BOOST_TEST(f.status_of("POST", "/healthz") == 405);
    BOOST_TEST(f.status_of("POST", "/readyz") == 405);
    BOOST_TEST(f.status_of("POST", "/metrics") == 405);
    BOOST_TEST(f.status_of("POST", "/v1/watches") == 405);
    BOOST_TEST(f.status_of("GET", "/-/reload") == 405);
    BOOST_TEST(f.status_of("GET", "/nope") == 404);
    BOOST_TEST(f.status_of("GET", "/") == 404);
    BOOST_TEST(f.status_of("GET", "/v1/watches/extra") == 404);
    BOOST_TEST(f.status_of("POST", "/-/reload") == 403);   // admin.enable_reload: false

    // Oversized requests are refused; the daemon keeps serving.
    {
        std::string big_body(100 * 1024, 'x');
        auto r = raw_exchange(f.admin_port, "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                                std::to_string(big_body.size()) + "\r\n\r\n" + big_body);
        BOOST_TEST_INFO(r.substr(0, 200));
        BOOST_TEST(r.starts_with("HTTP/1.1 413"));
        auto h = raw_exchange(f.admin_port, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                                std::string(64 * 1024, 'y') + "\r\nConnection: close\r\n\r\n");
        BOOST_TEST_INFO(h.substr(0, 200));
        BOOST_TEST(h.starts_with("HTTP/1.1 431"));
        BOOST_TEST(daemon.running());
        auto metrics = f.get("/metrics");
        BOOST_REQUIRE(metrics);
        BOOST_TEST(sample(metrics->body, "importwatch_admin_requests_too_large_total").value_or(0) == 2);
        BOOST_TEST(f.status_of("GET", "/healthz") == 200);
    }

    // The number of open admin connections is bounded (64): each connection
    // beyond it evicts the one that has waited longest for its request, so the
    // oldest idle ones are closed and the newest stay.
    {
        std::vector<int> fds;
        for (int i = 0; i < 100; ++i)
            if (int fd = connect_to(f.admin_port); fd >= 0) fds.push_back(fd);
        BOOST_REQUIRE(fds.size() == 100u);
        std::set<std::size_t> closed;
        auto const deadline = std::chrono::steady_clock::now() + 3s;
        while (closed.size() < 36 && std::chrono::steady_clock::now() < deadline) {
            std::vector<pollfd> pfds;
            std::vector<std::size_t> index;
            for (std::size_t i = 0; i < fds.size(); ++i)
                if (!closed.count(i)) pfds.push_back({fds[i], POLLIN, 0}), index.push_back(i);
            ::poll(pfds.data(), pfds.size(), 100);
            for (std::size_t j = 0; j < pfds.size(); ++j) {
                if (!pfds[j].revents) continue;
                char c;
                if (::recv(pfds[j].fd, &c, 1, MSG_DONTWAIT) <= 0) closed.insert(index[j]);
            }
        }
        BOOST_TEST(closed.size() >= 36u);              // at most 64 stay open
        BOOST_TEST(!closed.count(fds.size() - 1));     // the newest is never the one evicted
        std::size_t old_closed = 0;
        for (auto i : closed) old_closed += i < 50;
        BOOST_TEST(old_closed >= 36u);                 // the oldest went first
        BOOST_TEST(daemon.running());
        BOOST_TEST(f.status_of("GET", "/healthz") == 200);
        for (int fd : fds) ::close(fd);
        auto metrics = f.get("/metrics");
        BOOST_REQUIRE(metrics);
        BOOST_TEST(sample(metrics->body, "importwatch_admin_connections_evicted_total").value_or(0) >= 36);
    }

    // `importwatch healthcheck` against the running daemon.
    {
        child_process hc({"healthcheck", "--url", "http://127.0.0.1:" + std::to_string(f.admin_port) + "/healthz"});
        BOOST_TEST(hc.wait(15s).value_or(-1) == 0);
    }

    // Secrets never appear in stderr, /metrics or /v1/watches. The receiver
    // saw the header, so it was configured.
    {
        BOOST_REQUIRE(!f.hooks->received.empty());
        auto const* h = f.hooks->received.front().header("x-api-key");
        BOOST_TEST((h && *h == header_secret));
        auto metrics = f.get("/metrics");
        auto watches = f.get("/v1/watches");
        BOOST_REQUIRE((metrics && watches));
        for (std::string secret : {std::string(token), std::string(header_secret), std::string(webhook_key)}) {
            BOOST_TEST(daemon.err().find(secret) == std::string::npos);
            BOOST_TEST(metrics->body.find(secret) == std::string::npos);
            BOOST_TEST(watches->body.find(secret) == std::string::npos);
        }
    }

    // The unfinished request has been dropped by now (request timeout 5 s).
    {
        pollfd p{slowloris, POLLIN, 0};
        bool dropped = false;
        while (!dropped && std::chrono::steady_clock::now() - slow_started < 30s) {
            if (::poll(&p, 1, 100) > 0) {
                char c;
                dropped = ::recv(slowloris, &c, 1, MSG_DONTWAIT) <= 0;
                if (!dropped) break;   // an answer to a request never sent
            }
            f.pump(10ms);
        }
        BOOST_TEST(dropped);
        ::close(slowloris);
    }

    // SIGTERM: exit 0 promptly.
    auto const t0 = std::chrono::steady_clock::now();
    daemon.signal(SIGTERM);
    auto rc = f.serve_until_exit(daemon, 15s);
    BOOST_TEST_INFO(daemon.err());
    BOOST_REQUIRE(rc.has_value());
    BOOST_TEST(*rc == 0);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 10s));

    // Text log lines all have the text shape (docs/events.md).
    {
        static std::regex const text_line(R"(^\S+Z (trace|debug|info|warn|error) .*)");
        for (auto const& l : lines_of(daemon.err())) {
            BOOST_TEST_INFO(l);
            BOOST_TEST(std::regex_match(l, text_line));
        }
        for (std::string secret : {std::string(token), std::string(header_secret), std::string(webhook_key)})
            BOOST_TEST(daemon.err().find(secret) == std::string::npos);
    }

    // Nothing listens any more: healthcheck exits 1.
    child_process hc({"healthcheck", "--url", "http://127.0.0.1:" + std::to_string(f.admin_port) + "/healthz"});
    BOOST_TEST(hc.wait(15s).value_or(-1) == 1);
}

BOOST_AUTO_TEST_CASE(post_reload_applies_rejects_and_keeps_old_config) {
    fixture f;
    auto const base = watch_entry("forever", "forever");
    auto cfg = f.dir.write("config.yaml", f.config(base, true));
    child_process daemon({"run", "--config", cfg}, f.env());
    BOOST_REQUIRE_MESSAGE(f.wait_for_admin(daemon), f.why_not_up(daemon));
    BOOST_TEST(f.status_of("GET", "/readyz") == 200);

    // Applied: the new watch is polled.
    f.dir.write("config.yaml", f.config(base + watch_entry("extra", "extra"), true));
    auto r = f.request("POST", "/-/reload");
    BOOST_REQUIRE(r);
    BOOST_TEST(r->status == 200);
    BOOST_TEST(run_until(f.ioc, [&] { return f.requests_for("extra").size() >= 2; }, 10s));
    BOOST_TEST(f.watches().size() == 2u);

    // Removed, then added back: it carries on from its stored state (the same
    // status_since), not from a first observation.
    auto const extra_since = f.watch_named("extra").value_or(boost::json::object{})["status_since"];
    BOOST_TEST_REQUIRE(extra_since.is_string());
    f.dir.write("config.yaml", f.config(base, true));
    BOOST_TEST(f.status_of("POST", "/-/reload") == 200);
    BOOST_TEST(f.watches().size() == 1u);
    f.pump(1100ms);   // a first observation now would have a later status_since
    f.dir.write("config.yaml", f.config(base + watch_entry("extra", "extra"), true));
    auto const polled = f.requests_for("extra").size();
    BOOST_TEST(f.status_of("POST", "/-/reload") == 200);
    BOOST_TEST(run_until(f.ioc, [&] { return f.requests_for("extra").size() >= polled + 1; }, 10s));
    auto const back = f.watch_named("extra");
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->at("status_since") == extra_since);
    BOOST_TEST(is(back->at("status"), "pending_approval"));

    // Invalid: 400 with the error; the old config keeps running.
    f.dir.write("config.yaml", f.config(base + watch_entry("extra", "extra"), true) + "  - { name: bad, project: p }\n");
    r = f.request("POST", "/-/reload");
    BOOST_REQUIRE(r);
    BOOST_TEST(r->status == 400);
    BOOST_TEST_INFO(r->body);
    BOOST_TEST(r->body.find("config.yaml") != std::string::npos);
    BOOST_TEST(r->body.find("environment") != std::string::npos);   // the missing key
    BOOST_TEST(daemon.err().find("reload rejected") != std::string::npos);
    auto metrics = f.get("/metrics");
    BOOST_REQUIRE(metrics);
    BOOST_TEST(sample(metrics->body, "importwatch_config_last_reload_successful").value_or(-1) == 0);
    auto const before = f.requests_for("extra").size();
    BOOST_TEST(run_until(f.ioc, [&] { return f.requests_for("extra").size() >= before + 2; }, 10s));
    BOOST_TEST(f.watches().size() == 2u);
    BOOST_TEST(daemon.running());

    // A disabled reload (by a reload) answers 403 afterwards.
    f.dir.write("config.yaml", f.config(base + watch_entry("extra", "extra"), false));
    r = f.request("POST", "/-/reload");
    BOOST_REQUIRE(r);
    BOOST_TEST(r->status == 200);
    BOOST_TEST(f.status_of("POST", "/-/reload") == 403);
    metrics = f.get("/metrics");
    BOOST_REQUIRE(metrics);
    BOOST_TEST(sample(metrics->body, "importwatch_config_last_reload_successful").value_or(-1) == 1);

    BOOST_TEST(f.stop(daemon, 10s) == 0);
}

BOOST_AUTO_TEST_CASE(sighup_reload_json_logs_and_sd_notify) {
    fixture f;
    notify_socket notify;
    // The file says text; --log-format json must win, also after reloads.
    auto const a = watch_entry("alpha", "forever");
    auto const b = watch_entry("beta", "extra");
    auto cfg = f.dir.write("config.yaml", f.config(a + b, false, "text"));
    child_process daemon({"run", "--config", cfg, "--log-format", "json"},
                         f.env({{"NOTIFY_SOCKET", notify.path}, {"WATCHDOG_USEC", "200000"}}));
    BOOST_REQUIRE_MESSAGE(f.wait_for_admin(daemon), f.why_not_up(daemon));

    // READY=1 with a STATUS= line; WATCHDOG=1 again and again.
    BOOST_TEST(run_until(f.ioc, [&] { return notify.find("READY=1").has_value(); }, 10s));
    {
        auto i = notify.find("READY=1");
        BOOST_REQUIRE(i);
        BOOST_TEST_INFO(notify.all());
        BOOST_TEST(std::regex_search(notify.messages()[*i],
                                     std::regex(R"(STATUS=2 watches: \d polling, \d complete, \d failed(\n|$))")));
    }
    BOOST_TEST(run_until(f.ioc, [&] { return notify.count("WATCHDOG=1") >= 4; }, 10s));
    BOOST_TEST(run_until(f.ioc, [&] {
        return f.requests_for("forever").size() >= 2 && f.requests_for("extra").size() >= 2;
    }, 10s));

    // SIGHUP: beta removed, gamma added; alpha unchanged keeps its state.
    f.dir.write("config.yaml", f.config(a + watch_entry("gamma", "fast"), false, "text"));
    auto const reloads_before = count(daemon.err(), "configuration reloaded");
    auto const notified = notify.messages().size();
    daemon.signal(SIGHUP);
    BOOST_TEST(run_until(f.ioc, [&] { return count(daemon.err(), "configuration reloaded") > reloads_before; }, 10s));
    {
        // The log line can be read before the reader thread has the datagram sent ahead of it.
        run_until(f.ioc, [&] { return notify.find("RELOADING=1", notified).has_value(); }, 5s);
        BOOST_TEST_INFO(notify.all());
        auto reloading = notify.find("RELOADING=1", notified);
        BOOST_REQUIRE(reloading);
        BOOST_TEST(std::regex_search(notify.messages()[*reloading], std::regex(R"(MONOTONIC_USEC=\d+)")));
        BOOST_TEST(run_until(f.ioc, [&] { return notify.find("READY=1", *reloading + 1).has_value(); }, 10s));
    }
    BOOST_TEST(run_until(f.ioc, [&] { return f.requests_for("fast").size() >= 1; }, 10s));
    auto const beta_polls = f.requests_for("extra").size();
    auto const alpha_polls = f.requests_for("forever").size();
    f.pump(1500ms);
    BOOST_TEST(f.requests_for("extra").size() <= beta_polls + 1);   // at most one in flight at the reload
    BOOST_TEST(f.requests_for("forever").size() > alpha_polls + 2);
    BOOST_TEST(!f.watch_named("beta").has_value());
    BOOST_TEST(f.watch_named("gamma").has_value());

    // Invalid config on SIGHUP: error logged, old config keeps running.
    f.dir.write("config.yaml", "watches: [\n");
    auto const errors_before = count(daemon.err(), "reload rejected");
    daemon.signal(SIGHUP);
    BOOST_TEST(run_until(f.ioc, [&] { return count(daemon.err(), "reload rejected") > errors_before; }, 10s));
    auto const alpha_after = f.requests_for("forever").size();
    BOOST_TEST(run_until(f.ioc, [&] { return f.requests_for("forever").size() >= alpha_after + 3; }, 10s));
    BOOST_TEST(daemon.running());
    BOOST_TEST(f.watch_named("gamma").has_value());

    // SIGTERM: STOPPING=1, exit 0.
    auto const before_stop = notify.messages().size();
    daemon.signal(SIGTERM);
    auto rc = f.serve_until_exit(daemon, 15s);
    BOOST_TEST_INFO(daemon.err());
    BOOST_TEST(rc.value_or(-1) == 0);
    BOOST_TEST(run_until(f.ioc, [&] { return notify.find("STOPPING=1", before_stop).has_value(); }, 5s));

    // Every stderr line is a JSON object with ts, level, msg; event lines carry
    // the CloudEvent. alpha saw `none -> in_progress` once, despite the reloads.
    auto const log = daemon.err();
    std::size_t events = 0, alpha_first = 0;
    bool saw_error_line = false;
    for (auto const& l : lines_of(log)) {
        BOOST_TEST_INFO(l);
        boost::system::error_code ec;
        auto v = boost::json::parse(l, ec);
        BOOST_REQUIRE(!ec);
        BOOST_REQUIRE(v.is_object());
        auto const& o = v.as_object();
        BOOST_TEST((o.contains("ts") && is_rfc3339(o.at("ts"))));
        BOOST_TEST((o.contains("level") && o.at("level").is_string()));
        BOOST_TEST((o.contains("msg") && o.at("msg").is_string()));
        if (o.contains("level") && is(o.at("level"), "error") && l.find("reload rejected") != std::string::npos)
            saw_error_line = true;
        if (o.contains("event")) {
            ++events;
            auto const& e = o.at("event");
            BOOST_REQUIRE(e.is_object());
            BOOST_TEST(is(e.at("specversion"), "1.0"));
            BOOST_TEST(e.at("type").is_string());
            if (is(e.at("type"), "importwatch.import.status_changed") && is(e.at("data").at("watch"), "alpha") &&
                e.at("data").at("previous_status").is_null())
                ++alpha_first;
        }
    }
    BOOST_TEST(saw_error_line);
    // Non-event lines carry structured fields beside ts, level and msg.
    {
        auto const first = lines_of(log).front();
        BOOST_TEST_INFO(first);
        auto o = boost::json::parse(first).as_object();
        BOOST_TEST(o.contains("version"));
        BOOST_TEST((o.contains("watches") && o.at("watches").is_number() && o.at("watches").to_number<int>() == 2));
    }
    BOOST_TEST(events >= 3u);   // alpha, beta, gamma first observations
    BOOST_TEST(alpha_first == 1u);
    for (std::string secret : {std::string(token), std::string(header_secret), std::string(webhook_key)})
        BOOST_TEST(log.find(secret) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(sigint_not_ready_during_shutdown_grace_then_exit_zero) {
    fixture f;
    f.hooks->delay = 20s;   // deliveries hang: shutdown waits shutdown_grace (3 s) for them
    auto cfg = f.dir.write("config.yaml", f.config(watch_entry("forever", "forever"), true));
    child_process daemon({"run", "--config", cfg}, f.env());
    BOOST_REQUIRE_MESSAGE(f.wait_for_admin(daemon), f.why_not_up(daemon));
    BOOST_TEST(f.status_of("GET", "/readyz") == 200);
    BOOST_REQUIRE(run_until(f.ioc, [&] { return !f.hooks->received.empty(); }, 10s));

    auto const t0 = std::chrono::steady_clock::now();
    daemon.signal(SIGINT);
    bool saw_503 = false;
    run_until(f.ioc, [&] {
        if (!daemon.running()) return true;
        if (f.status_of("GET", "/readyz") == 503) saw_503 = true;
        return saw_503;
    }, 10s);
    BOOST_TEST(saw_503);
    if (daemon.running()) {
        // No reload while stopping (it would start polling again).
        auto r = f.request("POST", "/-/reload");
        BOOST_TEST((!r || r->status == 503));
        BOOST_TEST(daemon.err().find("configuration reloaded") == std::string::npos);
    }
    BOOST_TEST(run_until(f.ioc, [&] { return !daemon.running(); }, 15s));
    BOOST_TEST_INFO(daemon.err());
    BOOST_TEST(daemon.wait(0ms).value_or(-1) == 0);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 12s));
}

BOOST_AUTO_TEST_CASE(start_up_failures_exit_with_their_codes_in_the_log_format) {
    fixture f;
    // An invalid config with --log-format json: one JSON error line, exit 2.
    auto bad = f.dir.write("bad.yaml", "watches: [\n");
    child_process invalid({"run", "--config", bad, "--log-format", "json"}, f.env());
    BOOST_TEST(invalid.wait(15s).value_or(-1) == 2);
    auto const err = invalid.err();
    BOOST_TEST_INFO(err);
    BOOST_TEST(err.find("bad.yaml") != std::string::npos);
    for (auto const& l : lines_of(err)) {
        BOOST_TEST_INFO(l);
        boost::system::error_code ec;
        auto v = boost::json::parse(l, ec);
        BOOST_TEST((!ec && v.is_object() && is(v.at("level"), "error") && v.as_object().contains("msg")));
    }

    // admin.listen already taken: exit 1 naming the address.
    boost::asio::ip::tcp::acceptor taken(f.ioc, {boost::asio::ip::make_address("127.0.0.1"), f.admin_port});
    auto cfg = f.dir.write("config.yaml", f.config(watch_entry("forever", "forever")));
    child_process busy({"run", "--config", cfg}, f.env());
    BOOST_TEST(run_until(f.ioc, [&] { return !busy.running(); }, 15s));
    BOOST_TEST_INFO(busy.err());
    BOOST_TEST(busy.wait(0ms).value_or(-1) == 1);
    BOOST_TEST(busy.err().find("127.0.0.1:" + std::to_string(f.admin_port)) != std::string::npos);
}

namespace {

/// Raises this process's soft open-file limit to at least `n` (the tests
/// below hold over a thousand sockets); false when the hard limit is lower.
bool allow_open_files(rlim_t n) {
    rlimit l{};
    if (::getrlimit(RLIMIT_NOFILE, &l) != 0) return false;
    if (l.rlim_cur >= n) return true;
    if (l.rlim_max != RLIM_INFINITY && l.rlim_max < n) return false;
    l.rlim_cur = n;
    return ::setrlimit(RLIMIT_NOFILE, &l) == 0;
}

/// The status code of an HTTP/1.1 response ("HTTP/1.1 200 OK…" -> 200), or -1.
int status_code(std::string const& response) {
    if (!response.starts_with("HTTP/1.1 ") || response.size() < 12) return -1;
    return std::atoi(response.substr(9, 3).c_str());
}

/// A header's value in a raw response head ("" when absent).
std::string header_value(std::string const& head, std::string const& name) {
    std::string lower_head = head;
    for (auto& c : lower_head) c = char(std::tolower(static_cast<unsigned char>(c)));
    auto const key = "\r\n" + name + ":";
    auto p = lower_head.find(key);
    if (p == std::string::npos) return {};
    p += key.size();
    auto const end = head.find("\r\n", p);
    auto v = head.substr(p, end - p);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    return v;
}

} // namespace

// Finding: 16 slow connections denied the admin server for 10 s each. Now a
// thousand slowloris connections (a partial request, a byte now and then,
// reconnecting when closed) cannot keep /healthz from answering at once:
// newcomers evict the connection that waited longest, and a request must
// arrive within 5 s.
BOOST_AUTO_TEST_CASE(slowloris_flood_cannot_deny_health_probes) {
    BOOST_REQUIRE_MESSAGE(allow_open_files(4096), "the hard open-file limit is below 4096");
    fixture f;
    auto cfg = f.dir.write("config.yaml", f.config(watch_entry("forever", "forever")));
    child_process daemon({"run", "--config", cfg}, f.env());
    BOOST_REQUIRE_MESSAGE(f.wait_for_admin(daemon), f.why_not_up(daemon));

    constexpr std::size_t flood = 1000;
    std::string const partial = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    auto open_one = [&] {
        int fd = connect_to(f.admin_port);
        if (fd >= 0) ::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        return fd;
    };
    std::vector<int> conns;
    for (std::size_t i = 0; i < flood; ++i) conns.push_back(open_one());
    BOOST_REQUIRE(std::count(conns.begin(), conns.end(), -1) == 0);

    // 7 s, past the 5 s request deadline: every 250 ms a probe asks /healthz,
    // then each connection drips a byte (a closed one is opened again, as
    // slowloris tools do). The probe measures the server with the flood open,
    // not the kernel's accept queue behind a burst of hundreds of reconnects.
    std::vector<double> latencies_ms;
    std::size_t failed_probes = 0, reconnects = 0;
    auto const until = std::chrono::steady_clock::now() + 7s;
    while (std::chrono::steady_clock::now() < until) {
        auto const t = std::chrono::steady_clock::now();
        auto const r = raw_exchange(f.admin_port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        latencies_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
        if (status_code(r) != 200 || r.find("\r\n\r\nok") == std::string::npos) ++failed_probes;
        for (auto& fd : conns) {
            if (::send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) continue;
            if (errno == EAGAIN) continue;
            ::close(fd);
            fd = open_one();
            ++reconnects;
        }
        f.pump(250ms);
    }
    // `importwatch healthcheck`, still under the flood.
    child_process hc({"healthcheck", "--url", "http://127.0.0.1:" + std::to_string(f.admin_port) + "/healthz"});
    auto const hc_rc = hc.wait(15s);

    std::sort(latencies_ms.begin(), latencies_ms.end());
    auto const median = latencies_ms[latencies_ms.size() / 2];
    auto const p90 = latencies_ms[latencies_ms.size() * 9 / 10];
    auto const worst = latencies_ms.back();
    BOOST_TEST_MESSAGE("slowloris: " << flood << " connections, " << reconnects << " reopened after eviction; "
                                     << latencies_ms.size() << " probes, median " << median << " ms, p90 "
                                     << p90 << " ms, worst " << worst << " ms");
    BOOST_TEST(failed_probes == 0u);
    BOOST_TEST(latencies_ms.size() >= 10u);
    // The 100 ms target is for the real build; the ASan build is several
    // times slower at everything, and still must never be denied.
    double const target = sanitized ? 500.0 : 100.0;
    BOOST_TEST(median < target);
    BOOST_TEST(p90 < target);
    BOOST_TEST(worst < 10 * target);   // a loaded CI machine may stall a probe; never for long
    BOOST_TEST(reconnects > 0u);  // the server did close slowloris connections
    BOOST_TEST(hc_rc.value_or(-1) == 0);

    for (int fd : conns) ::close(fd);
    auto metrics = f.get("/metrics");
    BOOST_REQUIRE(metrics);
    BOOST_TEST_INFO(metrics->body);
    BOOST_TEST(sample(metrics->body, "importwatch_admin_connections_evicted_total").value_or(0) >= flood - 64);
    BOOST_TEST(sample(metrics->body, "importwatch_admin_connections").value_or(1e9) <= 64);
    BOOST_TEST(sample(metrics->body, "importwatch_admin_request_timeouts_total").has_value());
    BOOST_TEST(daemon.err().find("admin server: 64 connections open") != std::string::npos);
    BOOST_TEST(f.stop(daemon, 10s) == 0);
}

// HEAD on every GET endpoint answers like GET, without a body: a HEAD and a
// GET pipelined on one connection must come back as two clean responses.
BOOST_AUTO_TEST_CASE(head_answers_like_get_without_a_body) {
    fixture f;
    auto cfg = f.dir.write("config.yaml", f.config(watch_entry("forever", "forever")));
    child_process daemon({"run", "--config", cfg}, f.env());
    BOOST_REQUIRE_MESSAGE(f.wait_for_admin(daemon), f.why_not_up(daemon));
    BOOST_REQUIRE(run_until(f.ioc, [&] { return f.requests_for("forever").size() >= 1; }, 10s));

    for (char const* path : {"/healthz", "/readyz", "/metrics", "/v1/watches"}) {
        BOOST_TEST_CONTEXT(path) {
            std::string const p = path;
            auto const both = raw_exchange(f.admin_port, "HEAD " + p + " HTTP/1.1\r\nHost: x\r\n\r\nGET " + p +
                                                             " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            BOOST_TEST_INFO(both.substr(0, 600));
            auto const head_end = both.find("\r\n\r\n");
            BOOST_REQUIRE(head_end != std::string::npos);
            auto const head = both.substr(0, head_end + 2);
            // No body after the HEAD response: the next bytes are the GET's status line.
            auto const rest = both.substr(head_end + 4);
            BOOST_TEST(rest.starts_with("HTTP/1.1 "));
            auto const get_end = rest.find("\r\n\r\n");
            BOOST_REQUIRE(get_end != std::string::npos);
            auto const get_head = rest.substr(0, get_end + 2);
            auto const get_body = rest.substr(get_end + 4);

            BOOST_TEST(status_code(head) == 200);
            BOOST_TEST(status_code(head) == status_code(rest));
            BOOST_TEST(header_value(head, "content-type") == header_value(get_head, "content-type"));
            auto const length = header_value(head, "content-length");
            BOOST_TEST(!length.empty());
            BOOST_TEST(header_value(get_head, "content-length") == std::to_string(get_body.size()));
            if (p == "/healthz" || p == "/readyz") {
                // Bodies that do not change between the two requests: the exact length.
                BOOST_TEST(length == std::to_string(get_body.size()));
            } else {
                // /metrics and /v1/watches move between the two; the length is of a real body.
                auto const n = std::atoll(length.c_str());
                BOOST_TEST(n > static_cast<long long>(get_body.size()) / 2);
                BOOST_TEST(n < static_cast<long long>(get_body.size()) * 2);
            }
        }
    }
    // The wrong method still says which ones are allowed.
    auto const r = raw_exchange(f.admin_port, "DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST(status_code(r) == 405);
    BOOST_TEST(header_value(r, "allow") == "GET, HEAD");
    BOOST_TEST(f.stop(daemon, 10s) == 0);
}

// Finding: 2.4 M SIGHUPs in 10 s caused 507 k reloads. Thousands of SIGHUPs
// in a second (and POST /-/reload beside them) now cost a couple of reloads: one runs,
// one waits, everything else joins the waiting one.
BOOST_AUTO_TEST_CASE(sighup_storm_is_coalesced) {
    fixture f;
    auto cfg = f.dir.write("config.yaml", f.config(watch_entry("forever", "forever"), true));
    child_process daemon({"run", "--config", cfg}, f.env());
    BOOST_REQUIRE_MESSAGE(f.wait_for_admin(daemon), f.why_not_up(daemon));

    // Spread over most of a second: sent all at once, the kernel would merge
    // them into a few pending signals and test nothing.
    auto const t0 = std::chrono::steady_clock::now();
    int sent = 0;
    for (; sent < 5000 && std::chrono::steady_clock::now() - t0 < 900ms; ++sent) {
        ::kill(daemon.pid(), SIGHUP);
        std::this_thread::sleep_until(t0 + sent * 160us);
    }
    auto const storm = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(sent >= 1000);
    // A reload asked for after the storm: answered by the pending reload (or
    // one after it), which proves the daemon took every signal in.
    auto r = f.request("POST", "/-/reload");
    BOOST_REQUIRE(r);
    BOOST_TEST(r->status == 200);
    BOOST_TEST(daemon.running());
    BOOST_TEST(f.status_of("GET", "/healthz") == 200);
    auto const reloads = count(daemon.err(), "configuration reloaded");
    auto const storm_ms = std::chrono::duration<double, std::milli>(storm).count();
    BOOST_TEST_MESSAGE(sent << " SIGHUPs sent in " << storm_ms << " ms: " << reloads << " reloads");
    BOOST_TEST(reloads >= 1u);
    BOOST_TEST(reloads <= 3u);
    auto metrics = f.get("/metrics");
    BOOST_REQUIRE(metrics);
    BOOST_TEST(sample(metrics->body, "importwatch_config_reload_requests_coalesced_total").value_or(0) >= 1);
    BOOST_TEST(sample(metrics->body, "importwatch_config_last_reload_successful").value_or(-1) == 1);
    // Polling carries on.
    auto const polls = f.requests_for("forever").size();
    BOOST_TEST(run_until(f.ioc, [&] { return f.requests_for("forever").size() >= polls + 2; }, 10s));
    BOOST_TEST(f.stop(daemon, 10s) == 0);
}

// Finding: Retry-After: 999999999 paused everything for the 1 h cap, logged
// once, while /v1/watches showed next_poll in the past. The pause now shows in
// /v1/watches (paused_until, next_poll no earlier), in STATUS= and in
// importwatch_rate_limit_paused_until_timestamp_seconds; /readyz stays 200.
BOOST_AUTO_TEST_CASE(long_rate_limit_pause_is_visible) {
    fixture f(R"(
token: secret-token-XYZ
imports:
  - { project: p, environment: e, segment: s, import_id: forever, steps: [{ status: in_progress }] }
  - { project: p, environment: e, segment: s, import_id: limited, steps: [{ status: in_progress }],
      faults: [{ type: rate_limit, from: 500ms, count: 1, retry_after: 277777h }] }
)");
    notify_socket notify;
    auto cfg = f.dir.write("config.yaml", f.config(watch_entry("forever", "forever") + watch_entry("limited", "limited")));
    child_process daemon({"run", "--config", cfg}, f.env({{"NOTIFY_SOCKET", notify.path}}));
    BOOST_REQUIRE_MESSAGE(f.wait_for_admin(daemon), f.why_not_up(daemon));

    std::optional<double> until;
    BOOST_REQUIRE(run_until(f.ioc, [&] {
        auto m = f.get("/metrics");
        if (!m) return false;
        until = sample(m->body, "importwatch_rate_limit_paused_until_timestamp_seconds");
        return until.value_or(0) > 0;
    }, 15s));
    auto const now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    // Retry-After of ~1e9 s is capped at 1 h.
    BOOST_TEST(*until > now + 3500);
    BOOST_TEST(*until <= now + 3600 + 1);

    for (char const* name : {"forever", "limited"}) {
        BOOST_TEST_CONTEXT(name) {
            std::optional<boost::json::object> w;
            // A poll in flight when the pause began has no next_poll until it returns.
            BOOST_REQUIRE(run_until(f.ioc, [&] {
                w = f.watch_named(name);
                return w && w->at("next_poll").is_string();
            }, 10s));
            check_watch_shape(*w);
            BOOST_REQUIRE(is_rfc3339(w->at("paused_until")));
            auto const paused = core::parse_rfc3339(std::string(w->at("paused_until").as_string()));
            auto const next = core::parse_rfc3339(std::string(w->at("next_poll").as_string()));
            BOOST_REQUIRE((paused && next));
            BOOST_TEST(std::abs(double(paused->time_since_epoch().count()) / 1000.0 - *until) < 0.002);
            BOOST_TEST((*next >= *paused));
        }
    }
    BOOST_TEST(f.status_of("GET", "/readyz") == 200);   // a pause is not unreadiness
    BOOST_TEST(run_until(f.ioc, [&] { return notify.find("rate limited").has_value(); }, 5s));
    {
        BOOST_TEST_INFO(notify.all());
        auto i = notify.find("rate limited");
        BOOST_REQUIRE(i);
        auto const msg = notify.messages()[*i];
        BOOST_TEST(msg.starts_with("STATUS="));
        BOOST_TEST(msg.find("\n") == std::string::npos);   // one line
    }
    // Shutting down mid-pause is prompt.
    auto const t0 = std::chrono::steady_clock::now();
    BOOST_TEST(f.stop(daemon, 15s) == 0);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 10s));
}
