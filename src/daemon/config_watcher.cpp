#include "daemon/config_watcher.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <set>

#include <dirent.h>
#include <fnmatch.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "daemon/spawn.hpp"

namespace importwatch::daemon {

namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Changes to a directory's entries, and to the directory itself.
constexpr std::uint32_t watch_mask = IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                                     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;
/// The watched directory itself was deleted, moved away or unmounted.
constexpr std::uint32_t directory_gone = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED;

/// Room for 64 events with the longest names; a read returns whole events
/// and what does not fit waits for the next read (or overflows the kernel's
/// queue, which is reported as one change).
constexpr std::size_t read_buffer_bytes = 64 * (sizeof(inotify_event) + NAME_MAX + 1);
/// Symlinks followed while resolving one path (the kernel allows 40).
constexpr int max_symlink_hops = 40;

std::string errno_text(int e) { return std::strerror(e); }

/// Whether a glob component has wildcards (glob() and fnmatch() read `\` as an escape).
bool has_wildcards(std::string_view s) { return s.find_first_of("*?[\\") != std::string_view::npos; }

/// The entries of one directory a config depends on: names (the config file,
/// a symlink on the way to a file) and glob patterns.
struct interest {
    std::set<std::string> names;
    std::set<std::string> patterns;

    bool matches(char const* name) const {
        if (names.contains(name)) return true;
        // FNM_PERIOD as glob() does: `*.yaml` matches neither `..data` nor an editor's `.a.yaml.swp`.
        return std::any_of(patterns.begin(), patterns.end(),
                           [&](std::string const& p) { return ::fnmatch(p.c_str(), name, FNM_PERIOD) == 0; });
    }
    void merge(interest const& other) {
        names.insert(other.names.begin(), other.names.end());
        patterns.insert(other.patterns.begin(), other.patterns.end());
    }
};

struct component {
    std::string text;
    bool wildcard = false;
};

/// A problem worth one log line while it lasts.
struct problem {
    spdlog::level::level_enum level;
    std::string message;
    auto operator<=>(problem const&) const = default;
};

/// What a config depends on, directory by directory. Paths are resolved the
/// way the kernel does, one component at a time, so every symlink on the way
/// is a dependency too (a ConfigMap's `..data`), and a directory that does
/// not exist yet is watched for in its parent.
class dependency_plan {
public:
    std::map<std::string, interest> directories;
    std::vector<std::string> order;   // directories as found: the config's first, then each glob's
    std::set<problem> problems;

    /// The config file and every file its watch_files globs can match.
    dependency_plan(std::string const& config_path, std::vector<std::string> const& watch_files) {
        std::error_code ec;   // only when the working directory is gone: then the path stays as it is
        fs::path config = fs::absolute(config_path, ec);
        config = (ec ? fs::path(config_path) : config).lexically_normal();
        fs::path const base = config.parent_path();
        add(base, {{config.filename().string()}});
        for (auto const& glob : watch_files) {
            fs::path pattern = fs::path(glob).is_absolute() ? fs::path(glob) : base / glob;
            pattern = pattern.lexically_normal();
            std::vector<component> parts;
            for (auto const& p : pattern.relative_path()) parts.push_back({p.string(), has_wildcards(p.string())});
            if (parts.empty()) continue;
            // The directories before the first wildcard (the last part names files).
            std::size_t fixed = 0;
            while (fixed + 1 < parts.size() && !parts[fixed].wildcard) ++fixed;
            fs::path root = pattern.root_path();
            for (std::size_t i = 0; i < fixed; ++i) root /= parts[i].text;
            // Below the config's directory, the directories between are
            // dependencies too (watches.d created later, or a symlink).
            auto const rel = root.lexically_relative(base);
            if (!rel.empty() && *rel.begin() != "..") {
                std::vector<component> below;
                for (auto const& p : rel)
                    if (p != ".") below.push_back({p.string()});
                below.insert(below.end(), parts.begin() + std::ptrdiff_t(fixed), parts.end());
                add(base, std::move(below));
            } else {
                add(root, {parts.begin() + std::ptrdiff_t(fixed), parts.end()});
            }
        }
    }

private:
    /// Resolves `parts` from `root`; a root that does not exist is looked
    /// for from the nearest ancestor that does.
    void add(fs::path root, std::vector<component> parts) {
        struct stat st {};
        while (::stat(root.c_str(), &st) != 0 && root.has_relative_path()) {
            if (errno != ENOENT && errno != ENOTDIR) break;
            parts.insert(parts.begin(), {root.filename().string()});
            root = root.parent_path();
        }
        resolve(root, {parts.begin(), parts.end()}, 0);
    }

    void resolve(fs::path dir, std::deque<component> rest, int hops) {
        while (!rest.empty()) {
            auto const part = std::move(rest.front());
            rest.pop_front();
            if (!part.wildcard && (part.text.empty() || part.text == ".")) continue;
            if (!part.wildcard && part.text == "..") {
                dir = dir.parent_path();
                continue;
            }
            auto [at, added] = directories.try_emplace(dir.string());
            if (added) order.push_back(dir.string());
            auto& wanted = at->second;
            if (part.wildcard) {
                wanted.patterns.insert(part.text);
                for (auto const& name : matching_entries(dir, part.text)) {
                    std::deque<component> next = rest;
                    next.push_front({name});
                    resolve(dir, std::move(next), hops);
                }
                return;
            }
            wanted.names.insert(part.text);
            fs::path const entry = dir / part.text;
            struct stat st {};
            if (::lstat(entry.c_str(), &st) != 0) {
                // Not there (yet): watched for in its directory.
                if (!rest.empty())
                    problems.insert({spdlog::level::info, entry.string() + " does not exist (yet): watching " +
                                                              dir.string() + " for it"});
                return;
            }
            if (S_ISDIR(st.st_mode)) {
                dir = entry;
                continue;
            }
            if (!S_ISLNK(st.st_mode) || ++hops > max_symlink_hops) return;
            std::array<char, PATH_MAX> buf{};
            auto const n = ::readlink(entry.c_str(), buf.data(), buf.size() - 1);
            if (n <= 0) return;
            fs::path const target(std::string(buf.data(), std::size_t(n)));
            if (target.is_absolute()) {
                // Resolved without watching the target's ancestors: / and
                // /etc are not worth waking up for.
                char* real = ::realpath(target.parent_path().c_str(), nullptr);
                if (!real) return;
                dir = real;
                std::free(real);
                rest.push_front({target.filename().string()});
            } else {
                std::vector<component> parts;
                for (auto const& p : target) parts.push_back({p.string()});
                rest.insert(rest.begin(), parts.begin(), parts.end());
            }
        }
    }

    /// The names in `dir` that `pattern` matches; an unreadable directory is a problem.
    std::vector<std::string> matching_entries(fs::path const& dir, std::string const& pattern) {
        std::vector<std::string> out;
        DIR* d = ::opendir(dir.c_str());
        if (!d) {
            if (errno != ENOENT && errno != ENOTDIR)
                problems.insert({spdlog::level::warn, "cannot list " + dir.string() + ": " + errno_text(errno) +
                                                          " (changes there need SIGHUP)"});
            return out;
        }
        while (dirent* e = ::readdir(d))
            if (::fnmatch(pattern.c_str(), e->d_name, FNM_PERIOD) == 0) out.emplace_back(e->d_name);
        ::closedir(d);
        return out;
    }
};

} // namespace

struct config_watcher::impl : std::enable_shared_from_this<config_watcher::impl> {
    impl(asio::any_io_executor ex, int fd, metrics& counters, change_fn on_change, config_watcher_timing timing)
        : events_(ex, fd), debounce_(ex), counters_(counters), on_change_(std::move(on_change)), timing_(timing) {}

    asio::posix::stream_descriptor events_;   // the inotify descriptor
    asio::steady_timer debounce_;
    metrics& counters_;
    change_fn on_change_;
    config_watcher_timing timing_;
    std::string config_path_;
    std::vector<std::string> watch_files_;
    struct watched {
        std::string directory;
        interest wanted;
    };
    std::map<int, watched> watches_;          // by watch descriptor
    std::set<problem> reported_;              // logged, and not logged again while they last
    bool stopped_ = false;
    bool idle_ = true;                        // the debounce loop waits for a first change
    bool pending_ = false;
    steady::time_point first_, last_;
    std::string first_change_;
    std::size_t changes_ = 0;
    bool overflowed_ = false;                 // events were lost in this burst
    alignas(inotify_event) std::array<char, read_buffer_bytes> buffer_{};

    /// Watches what the config depends on now; drops watches it no longer needs.
    void rearm() {
        dependency_plan plan(config_path_, watch_files_);
        std::map<int, watched> next;
        std::size_t left_out = 0;
        std::string first_left_out;
        for (auto const& dir : plan.order) {
            auto const& wanted = plan.directories.at(dir);
            if (next.size() >= max_watched_directories) {
                if (left_out++ == 0) first_left_out = dir;
                continue;
            }
            int const wd = ::inotify_add_watch(events_.native_handle(), dir.c_str(), watch_mask);
            if (wd < 0) {
                int const e = errno;
                if (e == ENOENT || e == ENOTDIR) continue;   // gone since: its parent is watched
                plan.problems.insert({spdlog::level::warn,
                                      "cannot watch " + dir + ": " + errno_text(e) +
                                          (e == ENOSPC ? " (fs.inotify.max_user_watches reached)" : "") +
                                          "; changes there need SIGHUP"});
                continue;
            }
            // Two paths to one directory share a descriptor.
            auto [it, added] = next.try_emplace(wd, watched{dir, wanted});
            if (!added) it->second.wanted.merge(wanted);
        }
        if (left_out > 0) {
            counters_.count_limit("watched_directories");
            plan.problems.insert({spdlog::level::warn,
                                  fmt::format("watching at most {} directories: {} and {} more are not watched "
                                              "(changes there need SIGHUP)",
                                              max_watched_directories, first_left_out, left_out - 1)});
        }
        for (auto const& [wd, w] : watches_)
            if (!next.contains(wd)) ::inotify_rm_watch(events_.native_handle(), wd);
        watches_ = std::move(next);
        for (auto const& p : plan.problems)
            if (!reported_.contains(p)) spdlog::log(p.level, "automatic reload: {}", p.message);
        reported_ = std::move(plan.problems);
    }

    void note(std::string what) {
        auto const now = steady::now();
        if (!pending_) {
            pending_ = true;
            first_ = now;
            first_change_ = std::move(what);
            changes_ = 0;
            overflowed_ = false;
        }
        ++changes_;
        last_ = now;
        // While the loop waits for a deadline it re-reads last_ when it wakes:
        // a storm of events costs no timer churn.
        if (idle_) debounce_.cancel();
    }

    void on_events(std::size_t n) {
        for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
            auto const* e = reinterpret_cast<inotify_event const*>(buffer_.data() + at);
            at += sizeof(inotify_event) + e->len;
            if (e->mask & IN_Q_OVERFLOW) {
                note("inotify queue overflow");
                overflowed_ = true;
                counters_.count_limit("inotify_queue");
                continue;
            }
            auto it = watches_.find(e->wd);
            if (it == watches_.end()) continue;   // a watch rearm() removed
            if (e->mask & directory_gone) {
                note(it->second.directory);
                if (e->mask & IN_IGNORED) watches_.erase(it);
                continue;
            }
            if (e->len > 0 && it->second.wanted.matches(e->name)) note(it->second.directory + "/" + e->name);
        }
    }

    void fire() {
        pending_ = false;
        // Lost events may have named anything: say so rather than name one file.
        std::string trigger = "file change: " + (overflowed_ ? "inotify queue overflow, events lost" : first_change_);
        if (changes_ > 1) trigger += fmt::format(" (and {} more event{})", changes_ - 1, changes_ > 2 ? "s" : "");
        rearm();   // before the reload reads the files: nothing after this is missed
        on_change_(trigger);
    }

    static asio::awaitable<void> read_events(std::shared_ptr<impl> self) {
        for (;;) {
            auto [ec, n] = co_await self->events_.async_read_some(asio::buffer(self->buffer_), use_tuple);
            if (self->stopped_) co_return;
            if (ec) {
                spdlog::warn("automatic reload stopped: reading inotify events: {}; SIGHUP still reloads",
                             ec.message());
                co_return;
            }
            self->on_events(n);
        }
    }

    static asio::awaitable<void> debounce(std::shared_ptr<impl> self) {
        while (!self->stopped_) {
            if (!self->pending_) {
                self->idle_ = true;
                self->debounce_.expires_at(steady::time_point::max());
                co_await self->debounce_.async_wait(use_tuple);
                self->idle_ = false;
                continue;
            }
            auto const due = std::min(self->last_ + self->timing_.quiet, self->first_ + self->timing_.max_delay);
            if (steady::now() < due) {
                self->debounce_.expires_at(due);
                co_await self->debounce_.async_wait(use_tuple);
                continue;
            }
            self->fire();
        }
    }

    void stop() {
        if (stopped_) return;
        stopped_ = true;
        debounce_.cancel();
        boost::system::error_code ignored;
        events_.close(ignored);   // also drops every watch
        watches_.clear();
    }
};

core::expected<std::unique_ptr<config_watcher>> config_watcher::open(asio::any_io_executor ex, metrics& counters,
                                                                     change_fn on_change, config_watcher_timing timing) {
    int const fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        int const e = errno;
        return core::fail("inotify: " + errno_text(e) +
                          (e == EMFILE ? " (fs.inotify.max_user_instances reached)" : ""));
    }
    auto i = std::make_shared<impl>(ex, fd, counters, std::move(on_change), timing);
    asio::co_spawn(ex, impl::read_events(i), log_on_failure("automatic reload"));
    asio::co_spawn(ex, impl::debounce(i), log_on_failure("automatic reload"));
    return std::unique_ptr<config_watcher>(new config_watcher(std::move(i)));
}

config_watcher::config_watcher(std::shared_ptr<impl> i) : impl_(std::move(i)) {}

config_watcher::~config_watcher() { impl_->stop(); }

void config_watcher::watch(std::string const& config_path, std::vector<std::string> const& watch_files) {
    if (impl_->stopped_) return;
    impl_->config_path_ = config_path;
    impl_->watch_files_ = watch_files;
    impl_->rearm();
}

std::vector<std::string> config_watcher::directories() const {
    std::vector<std::string> out;
    for (auto const& [wd, w] : impl_->watches_) out.push_back(w.directory);
    std::sort(out.begin(), out.end());
    return out;
}

void config_watcher::stop() { impl_->stop(); }

} // namespace importwatch::daemon
