// `importwatch run`: the daemon. Signals and reload: docs/configuration.md.
#include <iostream>
#include <set>

#include <malloc.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "core/config_parser.hpp"
#include "core/duration.hpp"
#include "daemon/admin_server.hpp"
#include "cli/commands.hpp"
#include "daemon/config_loader.hpp"
#include "daemon/config_watcher.hpp"
#include "daemon/engine.hpp"
#include "daemon/log_sink.hpp"
#include "daemon/open_file_limit.hpp"
#include "daemon/reload_coalescer.hpp"
#include "daemon/spawn.hpp"
#include "daemon/systemd_notify.hpp"

namespace importwatch::cli {
namespace {

using namespace std::chrono_literals;

// Loading a config frees what it allocated (the files' text, their YAML
// trees, the parsed config): tens of MiB at 100,000 watches, which glibc
// would otherwise keep for good. Called once the config in hand is gone.
void return_freed_memory() { ::malloc_trim(0); }

/// `systemctl status` shows this line: "3 watches: 2 polling, 1 complete, 0 failed"
/// (", 1 stopped" is added only when an import was stopped).
std::string status_line(daemon::engine& e) {
    std::size_t total = 0, polling = 0, complete = 0, stopped = 0, failed = 0;
    for (auto const& s : e.poller().watches()) {
        if (s.removed) continue;
        ++total;
        if (s.state.terminal()) ++(s.state.status == "complete" ? complete : stopped);
        else if (s.state.failure) ++failed;
        else ++polling;
    }
    auto line = fmt::format("STATUS={} watch{}: {} polling, {} complete, {} failed", total, total == 1 ? "" : "es",
                            polling, complete, failed);
    if (stopped) line += fmt::format(", {} stopped", stopped);
    if (auto until = e.poller().paused_until(daemon::wall_now()))
        line += "; rate limited: every request held until " + core::format_rfc3339(*until);
    return line;
}

class daemon_process {
public:
    daemon_process(asio::io_context& ioc, run_options options)
        : ioc_(ioc), options_(std::move(options)), signals_(ioc, SIGTERM, SIGINT), hangups_(ioc, SIGHUP),
          watchdog_(ioc), pause_end_(ioc) {}

    int start() {
        auto read = daemon::reread_config(options_.config_path, {});
        if (!read) {
            // Through the logger, so that `--log-format json` holds for this line too.
            daemon::log_fields(core::log_level::error, read.error(),
                               {{"config", options_.config_path}, {"error", read.error()}});
            return exit_usage;
        }
        watch_files_ = std::move(read->watch_files);
        apply_logging(read->config);
        auto secrets = daemon::read_secrets(read->config);
        if (!secrets) {
            daemon::log_fields(core::log_level::error, secrets.error(),
                       {{"config", options_.config_path}, {"error", secrets.error()}});
            return exit_usage;
        }
        auto store = store::state_store::open(read->config.state.dir, store::open_mode::daemon);
        if (!store) {
            spdlog::error("cannot open the state store: {}", store.error());
            return exit_failure;
        }
        engine_ = std::make_unique<daemon::engine>(ioc_.get_executor(), std::move(*store));
        if (auto started = engine_->start(std::move(read->config), std::move(*secrets)); !started) {
            spdlog::error("cannot start: {}", started.error());
            return exit_failure;
        }
        auto const& cfg = engine_->current_config();   // the watches are the poller's now
        warn_about(cfg);
        reloads_ = std::make_unique<daemon::reload_coalescer>(
            ioc_.get_executor(), engine_->counters(), [this](std::string const& triggers) { return reload(triggers); });
        engine_->poller().on_pause([this](core::sys_ms until) { show_pause(until); });
        if (!cfg.admin.listen.empty()) {
            auto settings = daemon::load_admin_settings(cfg.admin);
            if (!settings) {
                daemon::log_fields(core::log_level::error, settings.error(),
                                   {{"config", options_.config_path}, {"error", settings.error()}});
                return exit_usage;
            }
            admin_ = std::make_unique<daemon::admin_server>(ioc_.get_executor(), *engine_,
                                                    [this] { return reloads_->request_and_wait("POST /-/reload"); });
            if (auto bound = admin_->start(cfg.admin.listen, std::move(*settings)); !bound) {
                spdlog::error("admin server: {}", bound.error());
                return exit_failure;
            }
            admin_->set_ready(true);
        }
        boost::json::object fields{{"version", IMPORTWATCH_VERSION},
                                   {"watches", engine_->watch_count()},
                                   {"webhooks", cfg.webhooks.size()},
                                   {"state", engine_->state().path()}};
        if (admin_)   // the bound address (admin.listen may say port 0)
            fields["admin"] = fmt::format("{}:{}", cfg.admin.listen.substr(0, cfg.admin.listen.rfind(':')),
                                          admin_->port());
        daemon::log_fields(core::log_level::info,
                   fmt::format("importwatch {} started: {} watches, {} webhooks, state in {}", IMPORTWATCH_VERSION,
                               engine_->watch_count(), cfg.webhooks.size(), engine_->state().path()),
                   std::move(fields));
        follow_files(cfg);
        daemon::notify_systemd("READY=1\n" + status_line(*engine_));
        asio::co_spawn(ioc_, handle_signals(), daemon::log_on_failure("signal handling"));
        asio::co_spawn(ioc_, handle_hangups(), daemon::log_on_failure("reload handling"));
        asio::co_spawn(ioc_, feed_watchdog(), daemon::log_on_failure("watchdog"));
        return exit_ok;
    }

private:
    void apply_logging(core::config const& cfg) {
        daemon::configure_logging(options_.log_format.value_or(cfg.log.format), options_.log_level.value_or(cfg.log.level));
    }

    /// The config's warnings, judged on the watches that will be polled:
    /// terminal ones never are, so they need no share of the rate.
    void warn_about(core::config const& cfg) const {
        std::size_t polled = 0;
        for (auto const& s : engine_->poller().watches()) polled += !s.removed && !s.state.terminal();
        for (auto const& w : core::config_warnings(cfg, polled)) spdlog::warn("{}", w);
    }

    /// With reload.auto, a change to the config file or to what watch_files
    /// can match asks for a reload as SIGHUP does. Without inotify (or with
    /// its limits reached) only SIGHUP and POST /-/reload are left: said once.
    void follow_files(core::config const& cfg) {
        if (!cfg.reload.automatic) {
            if (watcher_) spdlog::info("automatic reload off (reload.auto: false)");
            watcher_.reset();
            return;
        }
        if (!watcher_) {
            auto opened = daemon::config_watcher::open(ioc_.get_executor(), engine_->counters(),
                                                       [this](std::string const& trigger) { reloads_->request(trigger); });
            if (!opened) {
                if (watcher_error_ != opened.error())
                    spdlog::warn("automatic reload unavailable ({}): SIGHUP and POST /-/reload still reload",
                                 opened.error());
                watcher_error_ = opened.error();
                return;
            }
            watcher_error_.clear();
            watcher_ = std::move(*opened);
            watcher_->watch(options_.config_path, cfg.watch_files);
            spdlog::info("automatic reload on: watching {} director{} for changes to the config files",
                         watcher_->directories().size(), watcher_->directories().size() == 1 ? "y" : "ies");
            return;
        }
        watcher_->watch(options_.config_path, cfg.watch_files);
    }

    core::expected<void> reload(std::string const& triggers) {
        auto const t = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now().time_since_epoch());
        daemon::notify_systemd(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", t.count()));
        auto result = try_reload();
        return_freed_memory();
        engine_->counters().config_last_reload_successful = result.has_value();
        if (result)
            daemon::log_fields(core::log_level::info,
                       "configuration reloaded from " + options_.config_path + " (trigger: " + triggers + ")",
                       {{"config", options_.config_path}, {"watches", engine_->watch_count()}, {"trigger", triggers}});
        else
            daemon::log_fields(core::log_level::error,
                       "reload rejected, keeping the running configuration: " + result.error() + " (trigger: " +
                           triggers + ")",
                       {{"config", options_.config_path}, {"error", result.error()}, {"trigger", triggers}});
        daemon::notify_systemd("READY=1\n" + status_line(*engine_));
        return result;
    }

    core::expected<void> try_reload() {
        std::vector<core::watch_config const*> running;
        for (auto const& s : engine_->poller().watches())
            if (!s.removed) running.push_back(&s.config);
        auto read = daemon::reread_config(options_.config_path, daemon::unchanged_files(watch_files_, running));
        if (!read) return core::fail(read.error());
        auto& cfg = read->config;
        auto secrets = daemon::read_secrets(cfg);
        if (!secrets) return core::fail(secrets.error());
        auto const& old = engine_->current_config();
        if (cfg.state.dir != old.state.dir)
            spdlog::warn("state.dir changed: the new value takes effect after a restart");
        if (cfg.admin.listen != old.admin.listen)
            spdlog::warn("admin.listen changed: the new value takes effect after a restart");
        // Read before anything changes: a broken certificate rejects the reload.
        std::optional<daemon::admin_settings> admin_settings;
        if (admin_) {
            auto loaded = daemon::load_admin_settings(cfg.admin);
            if (!loaded) return core::fail(loaded.error());
            admin_settings = std::move(*loaded);
        }
        if (auto r = engine_->reload(std::move(cfg), std::move(*secrets)); !r) return r;
        auto const& applied = engine_->current_config();   // the watches are the poller's now
        apply_logging(applied);
        if (admin_) admin_->apply(std::move(*admin_settings));
        warn_about(applied);
        follow_files(applied);   // new globs, new directories
        watch_files_ = std::move(read->watch_files);
        return {};
    }

    asio::awaitable<void> handle_hangups() {
        for (;;) {
            auto [ec, sig] = co_await hangups_.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            (void)sig;
            reloads_->request("SIGHUP");
        }
    }

    /// STATUS= names a rate-limit pause from its start until its end.
    void show_pause(core::sys_ms until) {
        daemon::notify_systemd(status_line(*engine_));
        pause_end_.expires_at(std::chrono::system_clock::time_point(until));
        pause_end_.async_wait([this](boost::system::error_code ec) {
            if (!ec) daemon::notify_systemd(status_line(*engine_));
        });
    }

    asio::awaitable<void> handle_signals() {
        auto [ec, sig] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        daemon::log_fields(core::log_level::info, fmt::format("received signal {}: shutting down", sig),
                   {{"signal", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : std::to_string(sig)}});
        daemon::notify_systemd("STOPPING=1");
        if (admin_) admin_->set_ready(false);
        hangups_.cancel();
        reloads_->stop();
        watcher_.reset();
        watchdog_.cancel();
        pause_end_.cancel();
        co_await engine_->shutdown(engine_->current_config().shutdown_grace);
        if (admin_) admin_->stop();
        ioc_.stop();
    }

    asio::awaitable<void> feed_watchdog() {
        auto const timeout = daemon::systemd_watchdog_timeout();
        if (!timeout) co_return;
        auto const period = *timeout / 2;
        for (;;) {
            daemon::notify_systemd("WATCHDOG=1\n" + status_line(*engine_));
            watchdog_.expires_after(period);
            auto [ec] = co_await watchdog_.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
        }
    }

    asio::io_context& ioc_;
    run_options options_;
    asio::signal_set signals_;
    asio::signal_set hangups_;
    asio::steady_timer watchdog_;
    asio::system_timer pause_end_;
    std::unique_ptr<daemon::engine> engine_;
    std::unique_ptr<daemon::reload_coalescer> reloads_;
    std::map<std::string, daemon::watch_file_read> watch_files_;   // what the running config was read from
    std::unique_ptr<daemon::config_watcher> watcher_;   // reload.auto
    std::string watcher_error_;                         // why there is none, as last logged
    std::unique_ptr<daemon::admin_server> admin_;
};

} // namespace

int run_command(run_options const& options) {
    daemon::configure_logging(options.log_format.value_or(core::log_format::text),
                      options.log_level.value_or(core::log_level::info));
    daemon::raise_open_file_limit();
    asio::io_context ioc(1);
    daemon_process process(ioc, options);
    if (int rc = process.start(); rc != exit_ok) return rc;
    return_freed_memory();
    ioc.run();
    // Everything was cancelled: let the aborted operations unwind (bounded)
    // before the objects they use are destroyed.
    ioc.restart();
    ioc.run_for(std::chrono::seconds(1));
    spdlog::info("stopped");
    return exit_ok;
}

} // namespace importwatch::cli
