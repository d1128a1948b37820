#pragma once
// Hands-free reload (`reload.auto`): inotify on the directories the config
// file and its watch_files globs live in, read through the io_context (no
// thread, no polling). A burst of changes becomes one call of `on_change`,
// which asks for the same reload SIGHUP does.
//
// What counts as a change is the name of an entry the config depends on: the
// config file, each entry a glob can match, and every symlink on the way to
// them. Kubernetes mounts a ConfigMap as `config.yaml -> ..data/config.yaml`,
// `..data -> ..2026_11_30_…/` and updates it by renaming a new `..data` over
// the old one: the rename of `..data` is the change, although no event names
// config.yaml.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "daemon/metrics.hpp"
#include "net/asio.hpp"

namespace importwatch::daemon {

/// At most this many directories are watched; beyond it a warning names the
/// first one left out, changes there need SIGHUP, and
/// importwatch_limit_reached_total{limit="watched_directories"} counts it.
inline constexpr std::size_t max_watched_directories = 64;

struct config_watcher_timing {
    /// A change is reported once nothing relevant happened for this long...
    std::chrono::milliseconds quiet = std::chrono::milliseconds(300);
    /// ...or this long after the first change of a burst, whichever is first.
    std::chrono::milliseconds max_delay = std::chrono::milliseconds(1000);
};

class config_watcher {
public:
    /// `trigger` says what changed, e.g. "file change: /etc/importwatch/watches.d/a.yaml".
    using change_fn = std::function<void(std::string const& trigger)>;

    /// Sets up inotify; the error ("inotify: Too many open files") means
    /// there is no automatic reload. Bounds reached are counted in `counters`.
    static core::expected<std::unique_ptr<config_watcher>> open(asio::any_io_executor ex, metrics& counters,
                                                                change_fn on_change, config_watcher_timing timing = {});
    ~config_watcher();
    config_watcher(config_watcher const&) = delete;
    config_watcher& operator=(config_watcher const&) = delete;

    /// Watches what `config_path` and `watch_files` (globs, relative ones
    /// relative to the config file's directory) depend on now. Called at
    /// start and after every reload; the watcher also re-resolves by itself
    /// before each `on_change`. Problems (an unreadable directory, the bound)
    /// are logged as warnings once, not again while they last.
    void watch(std::string const& config_path, std::vector<std::string> const& watch_files);

    /// The directories watched now (for tests and the log).
    std::vector<std::string> directories() const;

    /// No more `on_change`; the inotify descriptor is closed.
    void stop();

private:
    struct impl;
    explicit config_watcher(std::shared_ptr<impl> i);
    std::shared_ptr<impl> impl_;
};

} // namespace importwatch::daemon
