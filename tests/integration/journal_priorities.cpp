// Under systemd, stderr is a stream into the journal and JOURNAL_STREAM names
// it (device:inode). Then every log line starts with its sd-daemon priority,
// `<3>` for errors, `<4>` warnings, `<6>` info, so `journalctl -p err` finds
// the errors and nothing else; with any other stderr the lines are unchanged.
#define BOOST_TEST_MODULE journal_priorities
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

#include <sys/stat.h>

#include <boost/json/parse.hpp>

#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

/// "device:inode" of a file, as systemd writes JOURNAL_STREAM.
std::string device_inode(std::string const& path) {
    struct stat st {};
    BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

/// An empty file the child's stderr will be appended to (same inode).
std::string stderr_file(temp_dir const& dir) { return dir.write("stderr.log", ""); }

std::vector<std::string> lines_of(std::string const& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_config_error_is_priority_err_when_stderr_is_the_journal_stream) {
    temp_dir dir;
    auto const err = stderr_file(dir);
    auto const missing = (dir.path() / "missing.yaml").string();
    child_process daemon({"run", "--config", missing}, {{"JOURNAL_STREAM", device_inode(err)}}, {}, err);
    BOOST_TEST(daemon.wait(10s).value_or(-1) == 2);
    auto const lines = lines_of(daemon.err());
    BOOST_TEST_INFO(daemon.err());
    BOOST_REQUIRE(!lines.empty());
    for (auto const& line : lines) {
        BOOST_TEST_INFO(line);
        BOOST_TEST(line.starts_with("<3>"));
        BOOST_TEST(line.find(" error ") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(no_prefix_when_journal_stream_names_another_file_or_is_garbage) {
    temp_dir dir;
    auto const other = dir.write("other", "");
    auto const missing = (dir.path() / "missing.yaml").string();
    std::vector<std::string> const values{device_inode(other), "12:34x", "junk", ""};
    for (std::size_t i = 0; i < values.size(); ++i) {
        auto const& value = values[i];
        auto const err = dir.write("stderr-" + std::to_string(i) + ".log", "");
        child_process daemon({"run", "--config", missing}, {{"JOURNAL_STREAM", value}}, {}, err);
        BOOST_TEST(daemon.wait(10s).value_or(-1) == 2);
        auto const lines = lines_of(daemon.err());
        BOOST_TEST_INFO("JOURNAL_STREAM=" << value << "\n" << daemon.err());
        BOOST_REQUIRE(!lines.empty());
        for (auto const& line : lines) BOOST_TEST(!line.starts_with("<"));
    }
}

// A whole run in json mode: each line's prefix matches the level inside it,
// and all three of info (status events, start), warn (a failed watch) and
// error (a rejected reload) occur.
BOOST_AUTO_TEST_CASE(each_line_carries_the_priority_of_its_level) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: done, steps: [{ status: in_progress, for: 300ms }, { status: complete }] }
  - { project: p, environment: e, segment: s, import_id: gone, steps: [{ status: ready }],
      faults: [{ type: not_found }] }
)",
                               simulated_launchdarkly::transport::plain);
    auto const cfg = api.dir.write("config.yaml", api.config({.watches = watch_entry("done") + watch_entry("gone")}));
    auto const err = stderr_file(api.dir);
    auto env = token_env();
    env["JOURNAL_STREAM"] = device_inode(err);
    child_process daemon({"run", "--config", cfg, "--log-format", "json"}, env, {}, err);
    BOOST_TEST_REQUIRE(run_until(api.ioc, [&] {
        auto const e = daemon.err();
        // "-> complete", not "in_progress -> complete": a daemon slow to
        // start on a loaded machine first sees the import complete.
        return e.find("-> complete") != std::string::npos && e.find("\"warn\"") != std::string::npos;
    }, 20s), daemon.err());

    api.dir.write("config.yaml", "watches: [\n");
    daemon.signal(SIGHUP);
    BOOST_TEST_REQUIRE(run_until(api.ioc, [&] { return daemon.err().find("reload rejected") != std::string::npos; },
                                 10s), daemon.err());
    daemon.signal(SIGTERM);
    BOOST_TEST(daemon.wait(15s).value_or(-1) == 0);

    std::map<std::string, int> const expected{{"debug", 7}, {"info", 6}, {"warn", 4}, {"error", 3}};
    std::map<int, std::size_t> seen;
    std::regex const prefix(R"(^<([0-7])>(.*)$)");
    for (auto const& line : lines_of(daemon.err())) {
        BOOST_TEST_INFO(line);
        std::smatch m;
        BOOST_REQUIRE(std::regex_match(line, m, prefix));
        auto const body = boost::json::parse(m[2].str()).as_object();
        auto const level = std::string(body.at("level").as_string());
        BOOST_REQUIRE(expected.contains(level));
        BOOST_TEST(std::stoi(m[1].str()) == expected.at(level));
        ++seen[std::stoi(m[1].str())];
    }
    BOOST_TEST(seen[6] >= 2);   // started, the status events, stopping
    BOOST_TEST(seen[4] >= 1);   // gone failed (not_found)
    BOOST_TEST(seen[3] >= 1);   // the rejected reload
}
