// `importwatch wait`: block a CI pipeline until imports land.
#include <csignal>
#include <iostream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "core/url.hpp"
#include "core/watch_key.hpp"
#include "cli/commands.hpp"
#include "daemon/config_loader.hpp"
#include "daemon/log_sink.hpp"
#include "daemon/poller.hpp"
#include "daemon/spawn.hpp"

namespace importwatch::cli {
namespace {

using namespace std::chrono_literals;

/// The config `wait PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID` stands for.
core::expected<core::config> config_for_import(wait_options const& o) {
    auto key = core::parse_watch_key(*o.import_path);
    if (!key) return core::fail(key.error());
    core::config cfg;
    cfg.file = "(command line)";
    if (o.base_url) cfg.launchdarkly.base_url = *o.base_url;
    if (auto url = core::parse_secure_url(cfg.launchdarkly.base_url); !url)
        return core::fail("--base-url: " + url.error());
    if (o.token_env && o.token_file) return core::fail("--token-env and --token-file exclude each other");
    if (o.token_env) cfg.launchdarkly.token_env = *o.token_env;
    if (o.token_file) cfg.launchdarkly.token_file = *o.token_file;
    cfg.launchdarkly.ca_file = o.ca_file;
    cfg.polling.interval = o.interval.value_or(10s);
    core::watch_config w;
    w.key = std::move(*key);
    w.name = w.key.path();
    cfg.watches.push_back(std::move(w));
    return cfg;
}

core::expected<core::config> config_for(wait_options const& o) {
    if (!o.config_path) return config_for_import(o);
    auto cfg = daemon::load_config(*o.config_path);
    if (!cfg) return cfg;
    if (!o.watch_names.empty()) {
        std::vector<core::watch_config> selected;
        for (auto const& name : o.watch_names) {
            auto it = std::find_if(cfg->watches.begin(), cfg->watches.end(),
                                   [&](auto const& w) { return w.name == name; });
            if (it == cfg->watches.end())
                return core::fail(*o.config_path + ": --watch " + name + ": no watch of that name");
            selected.push_back(*it);
        }
        cfg->watches = std::move(selected);
    }
    if (cfg->watches.empty()) return core::fail(*o.config_path + ": no watches to wait for");
    return cfg;
}

} // namespace

int wait_command(wait_options const& options) {
    daemon::configure_logging(core::log_format::text, core::log_level::warn);
    auto cfg = config_for(options);
    if (!cfg) {
        std::cerr << "importwatch: " << cfg.error() << "\n";
        return exit_usage;
    }
    // wait needs the API token. It delivers no webhooks, so a webhook secret
    // that is not there is only a warning, as for `check`; one that is there
    // but malformed is a config error for every command.
    auto token = daemon::read_api_token(cfg->launchdarkly);
    if (!token) {
        std::cerr << "importwatch: " << token.error().message << "\n";
        return exit_usage;
    }
    bool malformed = false;
    for (auto const& problem : daemon::webhook_secret_problems(*cfg)) {
        std::cerr << (problem.absent ? "warning: " : "importwatch: ") << problem.message << "\n";
        malformed = malformed || !problem.absent;
    }
    if (malformed) return exit_usage;

    asio::io_context ioc(1);
    daemon::metrics counters;
    // No store: nothing is committed, and a watch.failed's body (never
    // printed here, only its summary) has no stored Import to carry.
    daemon::poller watcher(ioc.get_executor(), counters, nullptr,
                   [](daemon::watch_slot const&, std::vector<core::event> const& events) {
                       for (auto const& e : events) std::cout << daemon::event_text_line(e) << std::endl;
                   });
    daemon::poller_settings settings;
    settings.launchdarkly = cfg->launchdarkly;
    settings.polling = cfg->polling;
    settings.token = std::move(*token);
    settings.stop_failed_watches = true;
    if (auto r = watcher.configure(settings, cfg->watches, daemon::poller::nothing_stored); !r) {
        std::cerr << "importwatch: " << r.error() << "\n";
        return exit_usage;
    }

    bool timed_out = false;
    bool interrupted = false;
    asio::steady_timer deadline(ioc);
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    // Cancel everything and let run() return once the aborted polls unwind,
    // so no coroutine frame outlives the objects it uses.
    auto finish = [&] {
        watcher.stop();
        deadline.cancel();
        signals.cancel();
    };
    watcher.on_settled([&] {
        if (watcher.settled()) finish();
    });
    if (options.timeout) {
        deadline.expires_after(*options.timeout);
        deadline.async_wait([&](boost::system::error_code ec) {
            if (ec) return;
            timed_out = true;
            finish();
        });
    }
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        interrupted = true;
        finish();
    });
    asio::co_spawn(ioc, watcher.run(), daemon::log_on_failure("poller"));
    ioc.run();

    if (timed_out) {
        std::cerr << "importwatch: timed out before every import was terminal\n";
        return exit_wait_timeout;
    }
    if (interrupted) return exit_failure;
    bool any_failed = false, any_stopped = false;
    for (auto const& s : watcher.watches()) {
        if (s.state.failure) {
            any_failed = true;
            std::cerr << "importwatch: watch " << s.config.name << " failed: " << s.state.failure->reason
                      << (s.state.failure->message.empty() ? "" : " (" + s.state.failure->message + ")") << "\n";
        } else if (s.state.status == "stopped") {
            any_stopped = true;
        }
    }
    if (any_failed) return exit_wait_failed_watch;
    if (any_stopped) return exit_failure;
    return exit_ok;
}

} // namespace importwatch::cli
