// A reload parses again only the watch files whose bytes changed, and takes
// the others' watches from the running ones: what it gives must be exactly
// what reading everything afresh gives.
#define BOOST_TEST_MODULE config_reread
#include <boost/test/unit_test.hpp>

#include <set>

#include "common/testing.hpp"
#include "daemon/config_loader.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

std::string watch_file(std::string const& prefix, int count) {
    std::string out = "watches:\n";
    for (int i = 0; i < count; ++i)
        out += "  - { name: " + prefix + std::to_string(i) + ", project: p, environment: " + prefix +
               ", segment: s" + std::to_string(i) + ", import_id: i" + std::to_string(i) + " }\n";
    return out;
}

struct fixture {
    temp_dir dir;
    std::string config = dir.write("config.yaml", "launchdarkly: {token_env: LD_TOKEN}\n"
                                                  "watch_files: [watches.d/*.yaml]\n"
                                                  "watches:\n  - { project: p, environment: inline, segment: s, "
                                                  "import_id: x }\n");
    fixture() {
        std::filesystem::create_directories(dir.path() / "watches.d");
        dir.write("watches.d/a.yaml", watch_file("a", 3));
        dir.write("watches.d/b.yaml", watch_file("b", 2));
    }
};

std::vector<core::watch_config const*> pointers(core::config const& cfg) {
    std::vector<core::watch_config const*> out;
    for (auto const& w : cfg.watches) out.push_back(&w);
    return out;
}

/// name@origin of every watch, order aside.
std::multiset<std::string> described(core::config const& cfg) {
    std::multiset<std::string> out;
    for (auto const& w : cfg.watches) out.insert(w.name + "@" + w.origin + "#" + w.key.path());
    return out;
}

/// Wraps `earlier` to record which files it was asked about and answered.
struct recorder {
    std::set<std::string> taken, parsed;
    daemon::earlier_watches wrap(daemon::earlier_watches earlier) {
        return [this, earlier](std::string const& file, daemon::file_digest const& digest) {
            auto got = earlier(file, digest);
            (got ? taken : parsed).insert(std::filesystem::path(file).filename().string());
            return got;
        };
    }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(unchanged_files_are_taken_over_and_a_changed_one_is_parsed, fixture) {
    auto first = daemon::reread_config(config, {});
    BOOST_TEST_REQUIRE(first.has_value(), (first ? std::string() : first.error()));
    BOOST_TEST(first->config.watches.size() == 6u);
    BOOST_TEST_REQUIRE(first->watch_files.size() == 2u);

    dir.write("watches.d/b.yaml", watch_file("b", 4));   // two watches added
    recorder seen;
    auto again = daemon::reread_config(
        config, seen.wrap(daemon::unchanged_files(first->watch_files, pointers(first->config))));
    BOOST_TEST_REQUIRE(again.has_value(), (again ? std::string() : again.error()));
    BOOST_TEST(seen.taken == (std::set<std::string>{"a.yaml"}));
    BOOST_TEST(seen.parsed == (std::set<std::string>{"b.yaml"}));

    auto fresh = daemon::load_config(config);
    BOOST_TEST_REQUIRE(fresh.has_value(), (fresh ? std::string() : fresh.error()));
    BOOST_TEST(again->config.watches.size() == 8u);
    BOOST_TEST((described(again->config) == described(*fresh)));
}

BOOST_FIXTURE_TEST_CASE(a_rejected_file_still_fails_the_reload, fixture) {
    auto first = daemon::reread_config(config, {});
    BOOST_TEST_REQUIRE(first.has_value(), (first ? std::string() : first.error()));
    // A watch in b.yaml that duplicates one in a.yaml (whose watches are taken
    // over): the whole set is still checked.
    dir.write("watches.d/b.yaml", "watches:\n  - { project: p, environment: a, segment: s0, import_id: i0 }\n");
    auto again = daemon::reread_config(config, daemon::unchanged_files(first->watch_files, pointers(first->config)));
    BOOST_TEST_REQUIRE(!again.has_value());
    BOOST_TEST(again.error().find("b.yaml:2:5") != std::string::npos, again.error());
}

BOOST_FIXTURE_TEST_CASE(running_watches_that_do_not_match_the_read_make_the_file_parsed_again, fixture) {
    auto first = daemon::reread_config(config, {});
    BOOST_TEST_REQUIRE(first.has_value(), (first ? std::string() : first.error()));
    // The running set lost one of a.yaml's watches (it cannot, but if origins
    // ever said otherwise): the count differs, so a.yaml is parsed, not trusted.
    auto running = pointers(first->config);
    std::erase_if(running, [](auto const* w) { return w->name == "a1"; });
    recorder seen;
    auto again = daemon::reread_config(config, seen.wrap(daemon::unchanged_files(first->watch_files, running)));
    BOOST_TEST_REQUIRE(again.has_value(), (again ? std::string() : again.error()));
    BOOST_TEST(seen.parsed == (std::set<std::string>{"a.yaml"}));
    BOOST_TEST(seen.taken == (std::set<std::string>{"b.yaml"}));
    BOOST_TEST((described(again->config) == described(first->config)));
}

BOOST_FIXTURE_TEST_CASE(a_file_with_the_same_bytes_under_a_new_name_is_parsed, fixture) {
    auto first = daemon::reread_config(config, {});
    BOOST_TEST_REQUIRE(first.has_value(), (first ? std::string() : first.error()));
    std::filesystem::rename(dir.path() / "watches.d/b.yaml", dir.path() / "watches.d/c.yaml");
    recorder seen;
    auto again = daemon::reread_config(
        config, seen.wrap(daemon::unchanged_files(first->watch_files, pointers(first->config))));
    BOOST_TEST_REQUIRE(again.has_value(), (again ? std::string() : again.error()));
    BOOST_TEST(seen.parsed == (std::set<std::string>{"c.yaml"}));
    // Origins name the file the watches are in now.
    for (auto const& w : again->config.watches)
        if (w.name.starts_with("b")) BOOST_TEST(w.origin.find("c.yaml:") != std::string::npos, w.origin);
}
