// `importwatch demo`: the zero-setup tour. A simulated LaunchDarkly
// over TLS (with a CA made for this run, trusted through ca_file — never by
// turning verification off), a daemon pointed at it with a throwaway state
// dir, three imports that take different paths, and their events printed.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "core/url.hpp"
#include "core/webhook_signature.hpp"
#include "cli/commands.hpp"
#include "daemon/engine.hpp"
#include "daemon/log_sink.hpp"
#include "daemon/spawn.hpp"
#include "net/certificate_authority.hpp"
#include "sim/simulator.hpp"

namespace importwatch::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// One import completes (with a file moving along), one is stopped, and one
// meets LaunchDarkly's rate limiter on the way, which pauses every request.
constexpr char const* demo_scenario = R"(
token: demo-token
imports:
  - project: demo
    environment: production
    segment: vip-users
    import_id: nightly-complete
    mode: replace
    steps:
      - { status: preparing, for: 3s, files: [{ filename: vip-users.csv, status: uploading }] }
      - { status: ready, for: 3s, files: [{ filename: vip-users.csv, status: uploaded }] }
      - { status: in_progress, for: 6s, files: [{ filename: vip-users.csv, status: processing }] }
      - { status: complete, files: [{ filename: vip-users.csv, status: complete }] }
  - project: demo
    environment: production
    segment: beta-testers
    import_id: weekly-stopped
    steps:
      - { status: preparing, for: 5s }
      - { status: in_progress, for: 6s }
      - { status: stopped }
  - project: demo
    environment: staging
    segment: early-access
    import_id: rate-limited
    steps:
      - { status: preparing, for: 2s }
      - { status: pending_approval, for: 3s }
      - { status: in_progress, for: 5s }
      - { status: complete }
    faults:
      # Retry-After is real time, not scaled by --speed; every status above
      # outlasts the pause, so no transition is skipped.
      - { type: rate_limit, from: 3s, until: 5s, retry_after: 2s, count: 1 }
)";

class temp_directory {
public:
    temp_directory() {
        std::string tmpl = (fs::temp_directory_path() / "importwatch-demo-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory");
        path_ = tmpl;
    }
    ~temp_directory() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string write(std::string const& name, std::string const& content) const {
        auto p = path_ / name;
        std::ofstream out(p, std::ios::binary);
        out << content;
        fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
        return p.string();
    }
    fs::path const& path() const { return path_; }

private:
    fs::path path_;
};

std::string random_secret() {
    std::random_device rd;
    std::string key(24, '\0');
    for (auto& c : key) c = static_cast<char>(rd() & 0xff);
    return "whsec_" + core::base64_encode(key);
}

core::config demo_config(temp_directory const& dir, std::string const& base_url, std::string const& ca_file,
                         std::string const& token_file, double speed, demo_options const& options,
                         std::optional<std::string> const& secret_file) {
    auto scaled = [speed](core::milliseconds d) {
        return core::milliseconds(static_cast<std::int64_t>(static_cast<double>(d.count()) / speed));
    };
    core::config cfg;
    cfg.file = "(demo)";
    cfg.launchdarkly.base_url = base_url;
    cfg.launchdarkly.ca_file = ca_file;
    cfg.launchdarkly.token_file = token_file;
    cfg.launchdarkly.max_requests_per_second = 20;
    cfg.polling.interval = scaled(1s);
    cfg.polling.backoff = {scaled(500ms), scaled(4s), 2};
    cfg.polling.stall_after.fallback = 0ms;
    for (auto const& [project, env, segment, id, name] :
         {std::tuple{"demo", "production", "vip-users", "nightly-complete", "vip-nightly"},
          std::tuple{"demo", "production", "beta-testers", "weekly-stopped", "beta-weekly"},
          std::tuple{"demo", "staging", "early-access", "rate-limited", "early-access"}}) {
        core::watch_config w;
        w.key = {project, env, segment, id};
        w.name = name;
        w.labels = {{"team", "demo"}};
        cfg.watches.push_back(std::move(w));
    }
    if (options.webhook_url) {
        core::webhook_config w;
        w.name = "demo";
        w.url = *options.webhook_url;
        w.secret_file = secret_file;
        w.timeout = 5s;
        cfg.webhooks.push_back(std::move(w));
    }
    cfg.state.dir = (dir.path() / "state").string();
    cfg.admin.listen = "";
    return cfg;
}

} // namespace

int demo_command(demo_options const& options) {
    daemon::configure_logging(core::log_format::text, core::log_level::info, /*to_stdout=*/true);
    if (!(options.speed > 0) || options.speed > 1000) {
        std::cerr << "importwatch: --speed must be a number above 0 (at most 1000)\n";
        return exit_usage;
    }
    if (options.webhook_url) {
        if (auto u = core::parse_secure_url(*options.webhook_url); !u) {
            std::cerr << "importwatch: --webhook: " << u.error() << "\n";
            return exit_usage;
        }
    }
    try {
        temp_directory dir;
        net::certificate_authority ca("importwatch demo CA");
        auto server_cert = ca.issue_server_certificate({"localhost", "127.0.0.1"});
        auto ca_file = dir.write("ca.pem", ca.certificate_pem());
        auto token_file = dir.write("token", "demo-token\n");
        std::optional<std::string> secret_file;
        if (options.webhook_url) {
            auto secret = random_secret();
            secret_file = dir.write("webhook.secret", secret);
            std::cout << "webhook secret (verify the webhook-signature header with it): " << secret << std::endl;
        }

        auto scenario = sim::parse_scenario(demo_scenario, "(demo scenario)");
        if (!scenario) throw std::runtime_error(scenario.error());
        auto tls = net::make_server_context_from_pem(server_cert.certificate, server_cert.private_key);
        if (!tls) throw std::runtime_error(tls.error());

        asio::io_context ioc(1);
        sim::simulator_options sim_options;
        sim_options.tls = *tls;
        sim_options.speed = options.speed;
        sim_options.record_requests = false;
        sim::simulator simulator(ioc.get_executor(), *scenario, sim_options);
        if (auto r = simulator.start(); !r) throw std::runtime_error("simulator: " + r.error());

        auto cfg = demo_config(dir, simulator.base_url(), ca_file, token_file, options.speed, options, secret_file);
        auto secrets = daemon::read_secrets(cfg);
        if (!secrets) throw std::runtime_error(secrets.error());
        auto store = store::state_store::open(cfg.state.dir, store::open_mode::daemon);
        if (!store) throw std::runtime_error(store.error());
        daemon::engine watcher(ioc.get_executor(), std::move(*store));

        std::cout << "importwatch demo: a simulated LaunchDarkly API at " << simulator.base_url()
                  << " (TLS, trusted through a CA made for this run)\n"
                  << "watching 3 imports: one completes, one is stopped, one meets rate limiting on the way\n"
                  << std::endl;
        if (auto r = watcher.start(cfg, std::move(*secrets)); !r) throw std::runtime_error(r.error());

        int rc = exit_ok;
        asio::signal_set signals(ioc, SIGINT, SIGTERM);
        bool interrupted = false;
        signals.async_wait([&](boost::system::error_code ec, int) {
            if (!ec) interrupted = true;
        });
        auto supervise = [&]() -> asio::awaitable<void> {
            asio::steady_timer tick(ioc);
            auto const give_up = std::chrono::steady_clock::now() + 120s;
            while (!watcher.poller().settled() && !interrupted) {
                if (std::chrono::steady_clock::now() > give_up) {
                    spdlog::error("demo: the imports did not all finish in time");
                    rc = exit_failure;
                    break;
                }
                tick.expires_after(50ms);
                co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            if (options.webhook_url && rc == exit_ok) {
                // Give the deliveries up to 10 s to land.
                auto const until = std::chrono::steady_clock::now() + 10s;
                for (;;) {
                    auto backlog = watcher.state().backlog();
                    std::size_t pending = 0;
                    if (backlog)
                        for (auto const& [_, b] : *backlog) pending += b.pending;
                    if (pending == 0) break;
                    if (std::chrono::steady_clock::now() > until) {
                        spdlog::warn("demo: {} webhook deliveries still pending after 10s", pending);
                        break;
                    }
                    tick.expires_after(50ms);
                    co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
                }
            }
            if (interrupted) rc = exit_failure;
            co_await watcher.shutdown(2s);
            simulator.stop();
            signals.cancel();
        };
        asio::co_spawn(ioc, supervise(), daemon::log_on_failure("demo"));
        ioc.run();
        if (rc == exit_ok)
            std::cout << "\nall imports are terminal; the simulator answered " << simulator.requests_answered()
                      << " requests" << std::endl;
        return rc;
    } catch (std::exception const& e) {
        std::cerr << "importwatch: demo: " << e.what() << "\n";
        return exit_failure;
    }
}

} // namespace importwatch::cli
