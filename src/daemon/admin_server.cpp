#include "daemon/admin_server.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <boost/asio/thread_pool.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "core/import.hpp"
#include "core/log_throttle.hpp"
#include "core/untrusted_text.hpp"
#include "daemon/admin_auth.hpp"
#include "daemon/bounded_file.hpp"
#include "daemon/clock.hpp"
#include "daemon/engine.hpp"
#include "daemon/process_metrics.hpp"
#include "net/http_server.hpp"

namespace importwatch::daemon {
namespace {

// Prometheus escapes \\, \" and \n in label values; every other control or
// bidi character (and invalid UTF-8) is first spelled out by core::printable.
std::string escape_label(std::string_view v) {
    std::string out;
    for (char c : core::printable(std::string(v))) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

/// Writes families in the Prometheus text format (0.0.4).
class exposition {
public:
    /// The samples of one family, each written under the family's name.
    class family_samples {
    public:
        family_samples(exposition& x, std::string_view name) : x_(x), name_(name) {}
        void sample(double value, std::string_view labels = {}) { x_.sample(name_, {}, value, labels); }
        /// A histogram's name_bucket, name_sum and name_count series.
        void sample(std::string_view suffix, double value, std::string_view labels = {}) {
            x_.sample(name_, suffix, value, labels);
        }

    private:
        exposition& x_;
        std::string_view name_;
    };

    family_samples family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
        return {*this, name};
    }
    /// A family of one sample.
    void single(std::string_view name, std::string_view type, std::string_view help, double value,
                std::string_view labels = {}) {
        family(name, type, help).sample(value, labels);
    }
    /// Room for `bytes` of text at once: growing a ~90 MB text by doubling
    /// would hold the old and the new buffer together.
    void reserve(std::size_t bytes) { out_.reserve(bytes); }
    std::string take() { return std::move(out_); }

private:
    void sample(std::string_view name, std::string_view suffix, double value, std::string_view labels) {
        out_ += name;
        out_ += suffix;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        out_ += fmt::format("{}", value);
        out_ += '\n';
    }

    std::string out_;
};

std::string label(std::string_view name, std::string_view value) {
    return fmt::format("{}=\"{}\"", name, escape_label(value));
}

double unix_seconds(core::sys_ms t) { return double(t.time_since_epoch().count()) / 1000.0; }

/// Stalled: a stalled event was sent for the current status, which is not terminal.
bool stalled(watch_slot const& s) { return s.state.stall_reported && !s.state.terminal(); }

/// The labels of importwatch_watch_info: the watch, what it polls, then its
/// configured labels (valid label names, none of these five; see the config parser).
std::string watch_info_labels(core::watch_config const& w) {
    std::string_view const own[] = {w.name, w.key.project, w.key.environment, w.key.segment, w.key.import_id};
    static_assert(std::size(own) == std::size(core::watch_info_labels));
    std::string out;
    for (std::size_t i = 0; i < std::size(own); ++i)
        out += (i ? "," : "") + label(core::watch_info_labels[i], own[i]);
    for (auto const& [key, value] : w.labels) out += "," + label(key, value);
    return out;
}

/// The process_* families as the Prometheus client libraries name them.
void process_families(exposition& x) {
    auto const p = read_process_stats();
    auto one = [&](char const* name, char const* type, char const* help, std::optional<double> v) {
        if (!v) return;
        x.single(name, type, help, *v);
    };
    one("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", p.cpu_seconds);
    one("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds);
    one("process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds);
    one("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtual_bytes);
    one("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.resident_bytes);
    one("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
        p.start_time_seconds);
}

boost::json::value time_or_null(std::optional<core::sys_ms> t) {
    if (!t) return nullptr;
    return boost::json::value(core::format_rfc3339(*t));
}

} // namespace

std::string render_metrics(engine& e) {
    auto& m = e.counters();
    auto const now = wall_now();
    exposition x;
    x.reserve(16 * 1024 + e.poller().watches().size() * 1024);   // ~0.9 KiB of series per watch

    x.single("importwatch_build_info", "gauge", "Build information.", 1, label("version", IMPORTWATCH_VERSION));

    std::map<std::string_view, std::size_t> by_status;
    for (auto const status : core::status_labels) by_status[status] = 0;
    std::size_t failed = 0, stalled_watches = 0;
    for (auto const& s : e.poller().watches()) {
        if (s.removed) continue;
        ++by_status[core::status_label(s.state.status)];
        if (s.state.failure) ++failed;
        if (stalled(s)) ++stalled_watches;
    }
    auto watches_by_status = x.family("importwatch_watches", "gauge", "Watches by last observed import status.");
    for (auto const& [status, n] : by_status) watches_by_status.sample(double(n), label("status", status));

    auto polls = x.family("importwatch_polls_total", "counter", "Polls of the LaunchDarkly API by result.");
    for (std::size_t i = 0; i < m.polls.size(); ++i)
        polls.sample(double(m.polls[i]), label("result", core::to_string(static_cast<core::poll_result>(i))));

    auto duration = x.family("importwatch_poll_duration_seconds", "histogram", "Duration of one poll request.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < m.poll_duration.bounds.size(); ++i) {
        cumulative += m.poll_duration.counts[i];
        duration.sample("_bucket", double(cumulative), label("le", fmt::format("{}", m.poll_duration.bounds[i])));
    }
    duration.sample("_bucket", double(m.poll_duration.count), label("le", "+Inf"));
    duration.sample("_sum", m.poll_duration.sum);
    duration.sample("_count", double(m.poll_duration.count));

    auto transitions = x.family("importwatch_transitions_total", "counter",
                                "Observed import status changes by new status.");
    for (std::size_t i = 0; i < m.transitions.size(); ++i)
        transitions.sample(double(m.transitions[i]),
                           label("status", core::to_string(static_cast<core::import_status>(i))));

    auto limits = x.family("importwatch_limit_reached_total", "counter",
        "Times a bound against bad input or overload was reached, by limit (see the README's Limits).");
    for (char const* name : limit_names) {
        auto const it = m.limits_reached.find(name);
        limits.sample(double(it == m.limits_reached.end() ? 0 : it->second), label("limit", name));
    }

    x.single("importwatch_rate_limit_pauses_total", "counter", "Process-wide pauses for 429s and remaining=0 holds.",
             double(m.rate_limit_pauses));
    x.single("importwatch_rate_limit_paused_seconds_total", "counter", "Time all requests were held by rate limits.",
             std::chrono::duration<double>(m.rate_limit_paused).count());
    auto const paused = e.poller().paused_until(now);
    x.single("importwatch_rate_limit_paused_until_timestamp_seconds", "gauge",
             "Unix time the current rate-limit pause ends; 0 when not paused.",
             paused ? unix_seconds(*paused) : 0.0);

    x.single("importwatch_state_commits_total", "counter",
             "Transactions that committed watch decisions; decisions that complete together share one.",
             double(e.state().decision_transactions()));
    x.single("importwatch_state_decisions_committed_total", "counter",
             "Watch decisions (state changes and their events) committed.",
             double(e.state().decisions_committed()));

    auto backlog = e.state().backlog();
    std::set<std::string> webhooks;
    for (auto const& w : e.current_config().webhooks) webhooks.insert(w.name);
    auto deliveries = x.family("importwatch_webhook_deliveries_total", "counter",
                               "Webhook delivery attempts by outcome.");
    for (auto const& name : webhooks) {
        auto const& c = m.webhooks[name];
        deliveries.sample(double(c.delivered), label("webhook", name) + "," + label("result", "delivered"));
        deliveries.sample(double(c.failed), label("webhook", name) + "," + label("result", "failed"));
        deliveries.sample(double(c.dead), label("webhook", name) + "," + label("result", "dead"));
    }
    auto dead_letters = x.family("importwatch_webhook_dead_letters_total", "counter",
                                 "Deliveries that became dead letters.");
    for (auto const& name : webhooks) dead_letters.sample(double(m.webhooks[name].dead), label("webhook", name));
    auto queue_depth = x.family("importwatch_webhook_queue_depth", "gauge", "Pending webhook deliveries.");
    for (auto const& name : webhooks) {
        std::size_t depth = 0;
        if (backlog) if (auto it = backlog->find(name); it != backlog->end()) depth = it->second.pending;
        queue_depth.sample(double(depth), label("webhook", name));
    }
    auto oldest_pending = x.family("importwatch_webhook_oldest_pending_seconds", "gauge",
                                   "Age of the oldest pending delivery.");
    for (auto const& name : webhooks) {
        double age = 0;
        if (backlog)
            if (auto it = backlog->find(name); it != backlog->end() && it->second.oldest)
                age = std::max(0.0, std::chrono::duration<double>(now - *it->second.oldest).count());
        oldest_pending.sample(age, label("webhook", name));
    }

    x.single("importwatch_failed_watches", "gauge", "Watches currently failed.", double(failed));
    x.single("importwatch_stalled_watches", "gauge", "Watches whose status lasted longer than stall_after.",
             double(stalled_watches));
    x.single("importwatch_last_successful_poll_timestamp_seconds", "gauge", "Unix time of the last successful poll.",
             unix_seconds(m.last_successful_poll));
    x.single("importwatch_scheduler_lag_seconds", "gauge", "How late the most overdue poll is.",
             std::chrono::duration<double>(e.poller().scheduler_lag(now)).count());
    x.single("importwatch_config_last_reload_successful", "gauge", "Whether the last reload was applied.",
             m.config_last_reload_successful ? 1 : 0);
    auto const refused = refused_files();
    auto files_refused = x.family("importwatch_config_files_refused_total", "counter",
        "Config, watch and secret files refused: not a regular file, or over the size limit.");
    files_refused.sample(double(refused.not_regular), label("reason", "not_regular"));
    files_refused.sample(double(refused.too_large), label("reason", "too_large"));
    x.single("importwatch_config_reload_requests_coalesced_total", "counter",
             "Reload requests folded into a reload already pending.", double(m.reload_requests_coalesced));

    x.single("importwatch_api_token_rejected", "gauge",
             "1 while LaunchDarkly rejects the API token: a poll got HTTP 401 and none has succeeded since.",
             e.poller().token_rejected() ? 1 : 0);
    x.single("importwatch_heartbeat_timestamp_seconds", "gauge",
             fmt::format("Unix time of the event loop's last heartbeat tick (every {}s, also when every import "
                         "is terminal).",
                         heartbeat_period.count()),
             unix_seconds(e.loop().last_tick()));
    x.single("importwatch_event_loop_lag_seconds", "gauge", "How late the event loop's last heartbeat tick ran.",
             std::chrono::duration<double>(e.loop().lag()).count());

    // One series (or one per status) for each watch, labelled with its name;
    // a watch removed by a reload is gone from them.
    std::vector<watch_slot const*> watches;
    for (auto const& s : e.poller().watches())
        if (!s.removed) watches.push_back(&s);
    auto info = x.family("importwatch_watch_info", "gauge",
                         "A watch: its name, what it polls and its configured labels; always 1.");
    for (auto const* s : watches) info.sample(1, watch_info_labels(s->config));
    auto status_of = x.family("importwatch_watch_status", "gauge",
        "1 for the watch's last observed import status (none before the first), 0 for every other.");
    for (auto const* s : watches) {
        std::string_view const current = core::status_label(s->state.status);
        auto const watch = label("watch", s->config.name);
        for (auto const status : core::status_labels)
            status_of.sample(current == status ? 1 : 0, watch + "," + label("status", status));
    }
    auto status_since = x.family("importwatch_watch_status_since_timestamp_seconds", "gauge",
        "Unix time the watch's current status was first seen; 0 before the first observation.");
    for (auto const* s : watches)
        status_since.sample(s->state.status ? unix_seconds(s->state.status_since) : 0.0,
                            label("watch", s->config.name));
    auto watch_failed = x.family("importwatch_watch_failed", "gauge",
                                 "1 while the watch is failed (a 4xx, or five invalid responses in a row).");
    for (auto const* s : watches)
        watch_failed.sample(s->state.failure ? 1 : 0, label("watch", s->config.name));
    auto watch_stalled = x.family("importwatch_watch_stalled", "gauge",
                                  "1 while the watch's non-terminal status has lasted longer than stall_after.");
    for (auto const* s : watches)
        watch_stalled.sample(stalled(*s) ? 1 : 0, label("watch", s->config.name));
    auto last_poll = x.family("importwatch_watch_last_poll_timestamp_seconds", "gauge",
                              "Unix time of the watch's last poll, whatever its outcome; 0 before the first.");
    for (auto const* s : watches)
        last_poll.sample(s->last_poll ? unix_seconds(*s->last_poll) : 0.0, label("watch", s->config.name));

    process_families(x);
    return x.take();
}

std::string render_admin_metrics(net::server_stats const& stats, admin_auth_failures const& auth) {
    exposition x;
    x.single("importwatch_admin_connections", "gauge", "Open admin server connections.", double(stats.open));
    x.single("importwatch_admin_connections_evicted_total", "counter",
             "Admin connections closed at the connection bound because they waited longest for a request.",
             double(stats.evicted));
    x.single("importwatch_admin_connections_refused_total", "counter",
             "New admin connections refused because every open one was busy answering.",
             double(stats.refused));
    x.single("importwatch_admin_request_timeouts_total", "counter",
             "Admin connections closed because their request did not arrive in time.",
             double(stats.timed_out));
    x.single("importwatch_admin_requests_too_large_total", "counter",
             "Admin requests refused for their size (413, 431).", double(stats.too_large));
    x.single("importwatch_admin_tls_handshake_failures_total", "counter",
             "Admin connections closed because their TLS handshake failed (plain HTTP, no or an untrusted "
             "client certificate).",
             double(stats.tls_failed));
    auto auth_failures = x.family("importwatch_admin_auth_failures_total", "counter",
        "Admin requests refused with 401: no credentials, or credentials that did not match.");
    auth_failures.sample(double(auth.missing), label("reason", "missing"));
    auth_failures.sample(double(auth.invalid), label("reason", "invalid"));
    return x.take();
}

std::string render_watches(engine& e) {
    // Serialized one watch at a time: at 100,000 watches a JSON tree of them
    // all would hold several times the ~37 MB of text.
    std::string out = "[";
    auto const& watches = e.poller().watches();
    out.reserve(watches.size() * 400 + 2);
    // A rate-limit pause holds every request: a watch due earlier is polled
    // at its end at the soonest.
    auto const paused = e.poller().paused_until(wall_now());
    bool const token_rejected = e.poller().token_rejected();
    for (auto const& s : watches) {
        if (s.removed) continue;
        auto const next_poll = e.poller().next_poll(s);
        bool const held = paused && (next_poll || s.in_flight);
        boost::json::object o;
        o["name"] = s.config.name;
        o["project"] = s.config.key.project;
        o["environment"] = s.config.key.environment;
        o["segment"] = s.config.key.segment;
        o["import_id"] = s.config.key.import_id;
        o["status"] = s.state.status ? boost::json::value(*s.state.status) : nullptr;
        o["status_since"] = s.state.status ? time_or_null(s.state.status_since) : nullptr;
        o["terminal"] = s.state.terminal();
        o["failed"] = s.state.failure.has_value();
        o["last_error"] = s.last_error ? boost::json::value(*s.last_error) : nullptr;
        o["last_poll"] = time_or_null(s.last_poll);
        o["next_poll"] = time_or_null(held && next_poll ? std::max(*next_poll, *paused) : next_poll);
        o["paused_until"] = time_or_null(held ? paused : std::nullopt);
        o["token_rejected"] = token_rejected;
        if (out.size() > 1) out += ',';
        out += boost::json::serialize(o);
    }
    out += ']';
    return core::json_printable(std::move(out));
}

core::expected<std::pair<std::string, std::uint16_t>> parse_listen_address(std::string const& listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon + 1 == listen.size())
        return core::fail("admin.listen: expected HOST:PORT, got \"" + listen + "\"");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    auto port_text = std::string_view(listen).substr(colon + 1);
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port > 65535 || host.empty())
        return core::fail("admin.listen: expected HOST:PORT, got \"" + listen + "\"");
    return std::pair{host, static_cast<std::uint16_t>(port)};
}

core::expected<admin_settings> load_admin_settings(core::admin_config const& admin) {
    admin_settings out;
    out.users = admin.users;
    out.open_paths = admin.open_paths;
    out.enable_reload = admin.enable_reload;
    if (!admin.tls) return out;
    auto read = [](std::string const& key, std::string const& path) -> core::expected<std::string> {
        auto text = read_bounded_file(path, admin_max_tls_file_bytes);
        if (!text) return core::fail("admin.tls." + key + ": " + path + ": " + text.error().message);
        return std::move(*text);
    };
    auto cert = read("cert_file", admin.tls->cert_file);
    if (!cert) return core::fail(cert.error());
    auto key = read("key_file", admin.tls->key_file);
    if (!key) return core::fail(key.error());
    std::optional<std::string> client_ca;
    if (admin.tls->client_ca_file) {
        auto ca = read("client_ca_file", *admin.tls->client_ca_file);
        if (!ca) return core::fail(ca.error());
        client_ca = std::move(*ca);
    }
    auto ctx = net::make_server_context_from_pem(*cert, *key, client_ca);
    // The key's text must not linger in freed memory.
    OPENSSL_cleanse(key->data(), key->size());
    if (!ctx)
        return core::fail("admin.tls (" + admin.tls->cert_file + ", " + admin.tls->key_file +
                          (client_ca ? ", " + *admin.tls->client_ca_file : std::string()) + "): " + ctx.error());
    out.tls = std::move(*ctx);
    return out;
}

struct admin_server::impl {
    engine& engine_;
    reload_fn reload_;
    std::unique_ptr<net::http_server> server_;
    asio::any_io_executor ex_;
    bool ready_ = false;
    bool reload_enabled_ = false;
    // Authentication: null when admin.basic_auth is not set.
    std::shared_ptr<admin_auth> auth_;
    std::vector<std::string> open_paths_;
    std::unique_ptr<asio::thread_pool> crypt_worker_;   // made with the first users
    admin_auth_failures auth_failures_;
    core::log_throttle auth_log_;

    impl(asio::any_io_executor ex, engine& e, reload_fn r)
        : engine_(e), reload_(std::move(r)), ex_(ex) {}

    void apply(admin_settings settings) {
        reload_enabled_ = settings.enable_reload;
        open_paths_ = std::move(settings.open_paths);
        if (server_) server_->set_tls(std::move(settings.tls));
        if (settings.users.empty()) {
            auth_.reset();
        } else if (!auth_ || auth_->users() != settings.users) {
            // Same users: keep what was verified already.
            auth_ = std::make_shared<admin_auth>(std::move(settings.users));
            if (!crypt_worker_) crypt_worker_ = std::make_unique<asio::thread_pool>(1);
        }
    }

    /// 401 unless the request may pass: an open path, no users configured,
    /// or credentials of a configured user.
    asio::awaitable<std::optional<net::server_reply>> authorize(net::server_request const& req) {
        if (!auth_) co_return std::nullopt;
        std::string_view const path = path_of(req.target);
        if (std::find(open_paths_.begin(), open_paths_.end(), path) != open_paths_.end()) co_return std::nullopt;
        auto const auth = auth_;   // a reload may replace auth_ meanwhile
        auto const* header = req.header("authorization");
        if (header && co_await auth->verify(*header, crypt_worker_->get_executor())) co_return std::nullopt;

        ++(header ? auth_failures_.invalid : auth_failures_.missing);
        // Never the header, the user or the password: only which path.
        bool const known = std::find(std::begin(core::admin_paths), std::end(core::admin_paths), path) !=
                           std::end(core::admin_paths);
        std::string const what = fmt::format("admin server: refused a request for {} {}", known ? path : "an unknown path",
                                             header ? "with wrong credentials" : "without credentials");
        if (auto held = auth_log_.admit(header ? "invalid" : "missing", wall_now())) {
            if (*held) spdlog::warn("{} ({} more since the last such line)", what, *held);
            else spdlog::warn("{}", what);
        }
        auto r = reply(401, "unauthorized\n");
        r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"importwatch\"");
        co_return r;
    }

    static std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

    static net::server_reply reply(int status, std::string body, std::string type = "text/plain; charset=utf-8") {
        net::server_reply r;
        r.status = status;
        r.body = std::move(body);
        r.content_type = std::move(type);
        return r;
    }

    /// Ready: config and state loaded, the state store commits, the event
    /// loop keeps time. A rejected token or a rate-limit pause is not
    /// unreadiness: another replica or a restart would fare no better.
    std::optional<std::string> not_ready_because() const {
        if (!engine_.started()) return "starting";
        if (!ready_) return "shutting down";
        if (engine_.poller().commit_failing()) return "the state store cannot commit";
        if (!engine_.loop().on_time(std::chrono::steady_clock::now()))
            return fmt::format("the event loop is late (last heartbeat {:.1f}s late)",
                               std::chrono::duration<double>(engine_.loop().lag()).count());
        return std::nullopt;
    }

    /// The answer, or nullopt for a permitted reload (answered once it ran).
    std::optional<net::server_reply> handle(net::server_request const& req) {
        std::string_view const path = path_of(req.target);
        // HEAD is GET without the body (net::http_server leaves it out).
        auto only = [&](std::string_view method) -> std::optional<net::server_reply> {
            bool const get = method == "GET";
            if (req.method == method || (get && req.method == "HEAD")) return std::nullopt;
            auto r = reply(405, "method not allowed\n");
            r.headers.emplace_back("Allow", get ? "GET, HEAD" : std::string(method));
            return r;
        };
        if (path == "/healthz") {
            if (auto r = only("GET")) return *r;
            return reply(200, "ok\n");
        }
        if (path == "/readyz") {
            if (auto r = only("GET")) return *r;
            auto const why = not_ready_because();
            return why ? reply(503, "not ready: " + *why + "\n") : reply(200, "ready\n");
        }
        if (path == "/metrics") {
            if (auto r = only("GET")) return *r;
            // Appended, not concatenated: at 100,000 watches the text is ~90 MB.
            auto text = render_metrics(engine_);
            text += render_admin_metrics(server_ ? server_->stats() : net::server_stats{}, auth_failures_);
            return reply(200, std::move(text), "text/plain; version=0.0.4; charset=utf-8");
        }
        if (path == "/v1/watches") {
            if (auto r = only("GET")) return *r;
            return reply(200, render_watches(engine_), "application/json");
        }
        if (path == "/-/reload") {
            if (auto r = only("POST")) return *r;
            if (!reload_enabled_) return reply(403, "reload is disabled (admin.enable_reload: false)\n");
            // After SIGTERM/SIGINT: no reload mid-shutdown (it would reconfigure what is
            // being stopped and tell systemd RELOADING=1 after STOPPING=1).
            if (!ready_) return reply(503, "shutting down\n");
            return std::nullopt;
        }
        return reply(404, "not found\n");
    }
};

admin_server::admin_server(asio::any_io_executor ex, engine& e, reload_fn reload)
    : impl_(std::make_shared<impl>(ex, e, std::move(reload))) {}

admin_server::~admin_server() { stop(); }

core::expected<void> admin_server::start(std::string const& listen, admin_settings settings) {
    auto address = parse_listen_address(listen);
    if (!address) return core::fail(address.error());
    net::server_options o;
    o.tls = settings.tls;
    impl_->apply(std::move(settings));
    o.host = address->first;
    o.port = address->second;
    o.name = "admin server";
    o.max_connections = admin_max_connections;
    o.max_request_body = admin_max_request_body;
    o.read_timeout = admin_request_timeout;
    // The server is owned by impl: a strong reference back would be a cycle.
    std::weak_ptr<impl> weak = impl_;
    impl_->server_ = std::make_unique<net::http_server>(
        impl_->ex_, o, [weak](net::server_request req) -> asio::awaitable<net::server_reply> {
            auto self = weak.lock();
            if (!self) {
                net::server_reply gone;
                gone.status = 503;
                gone.body = "shutting down\n";
                co_return gone;
            }
            co_return co_await answer(self, std::move(req));
        });
    return impl_->server_->start();
}

void admin_server::stop() {
    if (impl_->server_) impl_->server_->stop();
}

void admin_server::set_ready(bool ready) { impl_->ready_ = ready; }
void admin_server::apply(admin_settings settings) { impl_->apply(std::move(settings)); }
void admin_server::set_reload_enabled(bool enabled) { impl_->reload_enabled_ = enabled; }
std::uint16_t admin_server::port() const { return impl_->server_ ? impl_->server_->port() : 0; }
asio::awaitable<net::server_reply> admin_server::answer(std::shared_ptr<impl> self, net::server_request req) {
    if (auto denied = co_await self->authorize(req)) co_return std::move(*denied);
    if (auto answer = self->handle(req)) co_return std::move(*answer);
    // Coalesced with other reload requests (SIGHUP or POST).
    auto result = co_await self->reload_();
    co_return result ? impl::reply(200, "reloaded\n") : impl::reply(400, result.error() + "\n");
}

asio::awaitable<net::server_reply> admin_server::handle(net::server_request req) {
    return answer(impl_, std::move(req));
}

} // namespace importwatch::daemon
