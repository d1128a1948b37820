// daemon::config_watcher on real directories: what it watches (the config's
// directory, the directories watch_files globs can match, the targets of a
// ConfigMap's symlinks), which changes count, and that bursts, storms and a
// lost-events overflow each become one call. The whole daemon reloading by
// itself is tested in auto_reload.cpp.
#define BOOST_TEST_MODULE config_watcher
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/configmap_volume.hpp"
#include "common/testing.hpp"
#include "daemon/config_watcher.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

/// A watcher in its own io_context that records every trigger.
struct watching {
    boost::asio::io_context ioc;
    daemon::metrics counters;
    std::vector<std::string> triggers;
    std::unique_ptr<daemon::config_watcher> watcher;

    explicit watching(daemon::config_watcher_timing timing = {}) {
        auto w = daemon::config_watcher::open(
            ioc.get_executor(), counters, [this](std::string const& t) { triggers.push_back(t); }, timing);
        BOOST_TEST_REQUIRE(w.has_value(), (w ? std::string() : w.error()));
        watcher = std::move(*w);
    }
    ~watching() {
        watcher->stop();
        ioc.run_for(50ms);
    }
    /// Runs the io_context until `n` triggers arrived (false on timeout).
    bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 5s) {
        return run_until(ioc, [&] { return triggers.size() >= n; }, timeout);
    }
    /// Runs the io_context for `d`: long enough for a change to be reported
    /// (quiet 300 ms plus a margin), to show that none was.
    void settle(std::chrono::milliseconds d = 800ms) {
        run_until(ioc, [] { return false; }, d);
    }
    bool watches(fs::path const& dir) const {
        auto const dirs = watcher->directories();
        return std::find(dirs.begin(), dirs.end(), dir.string()) != dirs.end();
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(watches_the_config_directory_and_glob_directories) {
    temp_dir dir;
    auto const cfg = dir.write("config.yaml", "watches: []\n");
    fs::create_directories(dir.path() / "teams" / "a");
    temp_dir other;   // outside the config's directory; its "imports" does not exist yet
    auto const absolute_glob = (other.path() / "imports" / "*.yaml").string();
    watching w;
    w.watcher->watch(cfg, {"watches.d/*.yaml", "teams/*/watches.yaml", absolute_glob});
    BOOST_TEST_INFO("watched: " << w.watcher->directories().size());
    BOOST_TEST(w.watches(dir.path()));
    BOOST_TEST(w.watches(dir.path() / "teams"));
    BOOST_TEST(w.watches(dir.path() / "teams" / "a"));
    BOOST_TEST(!w.watches(dir.path() / "watches.d"));   // not there: its parent is watched for it
    BOOST_TEST(w.watches(other.path()));
    BOOST_TEST(w.watcher->directories().size() == 4u);

    // Creating the missing directory is a change; after it the directory is watched.
    fs::create_directory(dir.path() / "watches.d");
    BOOST_TEST_REQUIRE(w.wait_for(1));
    BOOST_TEST(w.triggers[0] == "file change: " + (dir.path() / "watches.d").string());
    BOOST_TEST(w.watches(dir.path() / "watches.d"));
    dir.write("watches.d/new.yaml", "watches: []\n");
    BOOST_TEST_REQUIRE(w.wait_for(2));
    BOOST_TEST(w.triggers[1].starts_with("file change: " + (dir.path() / "watches.d" / "new.yaml").string()));

    // A new team directory is a change too, and is watched from then on.
    fs::create_directory(dir.path() / "teams" / "b");
    BOOST_TEST_REQUIRE(w.wait_for(3));
    BOOST_TEST(w.watches(dir.path() / "teams" / "b"));
    dir.write("teams/b/watches.yaml", "watches: []\n");
    BOOST_TEST_REQUIRE(w.wait_for(4));

    // The absolute glob's directory.
    fs::create_directories(other.path() / "imports");
    BOOST_TEST_REQUIRE(w.wait_for(5));
    BOOST_TEST(w.watches(other.path() / "imports"));
    other.write("imports/x.yaml", "watches: []\n");
    BOOST_TEST_REQUIRE(w.wait_for(6));

    // Removing a directory is a change, and it is no longer watched.
    fs::remove_all(dir.path() / "teams" / "a");
    BOOST_TEST_REQUIRE(w.wait_for(7));
    BOOST_TEST(!w.watches(dir.path() / "teams" / "a"));
}

BOOST_AUTO_TEST_CASE(only_entries_the_config_depends_on_count) {
    temp_dir dir;
    auto const cfg = dir.write("config.yaml", "watches: []\n");
    dir.write("watches.d/a.yaml", "watches: []\n");
    watching w;
    w.watcher->watch(cfg, {"watches.d/*.yaml"});

    // The state directory, an editor's swap file, other files: nothing.
    fs::create_directories(dir.path() / "state");
    dir.write("state/importwatch.db", "x");
    dir.write("notes.txt", "x");
    dir.write("watches.d/.a.yaml.swp", "x");
    dir.write("watches.d/README", "x");
    w.settle();
    BOOST_TEST(w.triggers.empty(), (w.triggers.empty() ? "" : w.triggers[0]));

    // The config file written in place, and a watch file replaced by rename.
    dir.write("config.yaml", "watches: []\n# edited\n");
    BOOST_TEST_REQUIRE(w.wait_for(1));
    BOOST_TEST(w.triggers[0].starts_with("file change: " + cfg));
    dir.write("watches.d/.a.yaml.tmp", "watches: []\n# new\n");
    fs::rename(dir.path() / "watches.d" / ".a.yaml.tmp", dir.path() / "watches.d" / "a.yaml");
    BOOST_TEST_REQUIRE(w.wait_for(2));
    BOOST_TEST(w.triggers[1].starts_with("file change: " + (dir.path() / "watches.d" / "a.yaml").string()));
    fs::remove(dir.path() / "watches.d" / "a.yaml");
    BOOST_TEST_REQUIRE(w.wait_for(3));
    w.settle();
    BOOST_TEST(w.triggers.size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_configmap_symlink_swap_is_a_change) {
    temp_dir dir;
    configmap_volume volume(dir.path() / "cm", {{"config.yaml", "watches: []\n"}, {"team.yaml", "watches: []\n"}});
    auto const cfg = (volume.dir / "config.yaml").string();
    watching w;
    w.watcher->watch(cfg, {"*.yaml"});
    auto const first = volume.dir / volume.generation;
    BOOST_TEST(w.watches(volume.dir));
    BOOST_TEST(w.watches(first));   // where config.yaml really is

    // The kubelet's update: no event names config.yaml, the rename of ..data is the change.
    volume.update({{"config.yaml", "watches: []\n# v2\n"}, {"team.yaml", "watches: []\n"}});
    BOOST_TEST_REQUIRE(w.wait_for(1));
    BOOST_TEST(w.triggers[0].starts_with("file change: " + volume.dir.string()));
    // One update, one call; the new generation is watched, the old one is gone.
    w.settle();
    BOOST_TEST(w.triggers.size() == 1u);
    BOOST_TEST(w.watches(volume.dir / volume.generation));
    BOOST_TEST(!w.watches(first));

    // A key added to the ConfigMap: a new generation, then a new top-level symlink.
    volume.update({{"config.yaml", "watches: []\n# v2\n"}, {"team.yaml", "watches: []\n"}, {"new.yaml", ""}});
    BOOST_TEST_REQUIRE(w.wait_for(2));
    w.settle();
    BOOST_TEST(w.triggers.size() == 2u);
}

// A storm of changes (a deploy tool rewriting a hundred files in a loop for
// 1.5 s) is reported at most once per max_delay, not once per event.
BOOST_AUTO_TEST_CASE(a_storm_of_changes_is_coalesced) {
    temp_dir dir;
    auto const cfg = dir.write("config.yaml", "watches: []\n");
    fs::create_directories(dir.path() / "watches.d");
    watching w;
    w.watcher->watch(cfg, {"watches.d/*.yaml"});
    auto const t0 = std::chrono::steady_clock::now();
    int writes = 0;
    while (std::chrono::steady_clock::now() - t0 < 1500ms) {
        dir.write("watches.d/w" + std::to_string(writes % 100) + ".yaml", "watches: []\n");
        if (++writes % 50 == 0) w.ioc.poll();
    }
    BOOST_TEST_REQUIRE(w.wait_for(1));
    w.settle();
    BOOST_TEST_MESSAGE(writes << " writes in 1.5 s: " << w.triggers.size() << " changes reported");
    BOOST_TEST(writes >= 300);
    BOOST_TEST(w.triggers.size() >= 1u);
    BOOST_TEST(w.triggers.size() <= 3u);   // 1.5 s of storm at most 1 s apart, and its tail
    BOOST_TEST(w.triggers[0].find(" more events)") != std::string::npos);
}

// More events than the kernel queues (fs.inotify.max_queued_events) while the
// loop is busy: the events are lost, and that is one change.
BOOST_AUTO_TEST_CASE(a_queue_overflow_is_one_change) {
    auto const limit = std::stoi("0" + read_file("/proc/sys/fs/inotify/max_queued_events"));
    if (limit <= 0 || limit > 100'000) {
        BOOST_TEST_MESSAGE("skipped: max_queued_events is " << limit);
        return;
    }
    temp_dir dir;
    auto const cfg = dir.write("config.yaml", "watches: []\n");
    fs::create_directories(dir.path() / "watches.d");
    watching w;
    w.watcher->watch(cfg, {"watches.d/*.yaml"});
    // Each new file is two events (create, close): the io_context does not
    // run meanwhile, so nothing is read.
    for (int i = 0; i < limit / 2 + 100; ++i) std::ofstream(dir.path() / "watches.d" / ("f" + std::to_string(i) + ".yaml"));
    BOOST_TEST_REQUIRE(w.wait_for(1));
    w.settle();
    BOOST_TEST(w.triggers.size() == 1u);
    bool overflow = false;
    for (auto const& t : w.triggers) overflow |= t.find("inotify queue overflow") != std::string::npos;
    BOOST_TEST(overflow, (w.triggers.empty() ? "" : w.triggers.back()));
    BOOST_TEST(w.counters.limits_reached["inotify_queue"] >= 1u);
}

BOOST_AUTO_TEST_CASE(the_number_of_watched_directories_is_bounded) {
    temp_dir dir;
    auto const cfg = dir.write("config.yaml", "watches: []\n");
    for (std::size_t i = 0; i < daemon::max_watched_directories + 10; ++i)
        fs::create_directories(dir.path() / "teams" / ("t" + std::to_string(i)));
    watching w;
    w.watcher->watch(cfg, {"teams/*/watches.yaml"});
    BOOST_TEST(w.watcher->directories().size() == daemon::max_watched_directories);
    BOOST_TEST(w.counters.limits_reached["watched_directories"] == 1u);
    // The config's own directory is among them.
    BOOST_TEST(w.watches(dir.path()));
}

BOOST_AUTO_TEST_CASE(stop_ends_the_calls) {
    temp_dir dir;
    auto const cfg = dir.write("config.yaml", "watches: []\n");
    watching w;
    w.watcher->watch(cfg, {});
    dir.write("config.yaml", "watches: []\n# changed\n");
    w.watcher->stop();
    w.settle();
    BOOST_TEST(w.triggers.empty());
    BOOST_TEST(w.watcher->directories().empty());
}
