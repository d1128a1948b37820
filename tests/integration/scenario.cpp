#define BOOST_TEST_MODULE scenario
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "common/testing.hpp"
#include "sim/scenario.hpp"

using namespace importwatch;
using namespace std::chrono_literals;

namespace {

// One valid import; the bad cases below change one thing each.
std::string const import_head = "imports:\n"
                                "  - project: default\n"
                                "    environment: production\n"
                                "    segment: vip-users\n"
                                "    import_id: imp-1\n";

} // namespace

BOOST_AUTO_TEST_SUITE(parse)

BOOST_AUTO_TEST_CASE(full_scenario) {
    auto const text = "token: sim-token\n"
                      "imports:\n"
                      "  - project: default\n"
                      "    environment: production\n"
                      "    segment: vip-users\n"
                      "    import_id: imp-1\n"
                      "    mode: replace\n"
                      "    steps:\n"
                      "      - { status: preparing, for: 2s, files: [{filename: a.csv, status: pending}, "
                      "{filename: b.csv, status: done}] }\n"
                      "      - status: in_progress\n"
                      "        for: 1h30m\n"
                      "      - { status: complete }\n"
                      "    faults:\n"
                      "      - { type: forbidden, count: 2 }\n"
                      "  - project: p2\n"
                      "    environment: e2\n"
                      "    segment: s2\n"
                      "    import_id: imp-2\n"
                      "    steps: [{ status: stopped }]\n"
                      "faults:\n"
                      "  - { type: rate_limit, from: 1s, until: 4s, retry_after: 2s, retry_after_date: true, "
                      "reset_in: 3s }\n"
                      "  - { type: server_error, status: 503, probability: 0.3 }\n"
                      "  - { type: delay, delay: 500ms, count: 1 }\n"
                      "  - { type: remaining_zero, reset_in: 2s }\n"
                      "  - { type: reset }\n";
    auto sc = sim::parse_scenario(text, "s.yaml");
    BOOST_TEST_REQUIRE(sc.has_value(), (sc ? "" : sc.error()));
    BOOST_TEST(sc->token.value_or("") == "sim-token");
    BOOST_TEST_REQUIRE(sc->imports.size() == 2u);

    auto const& a = sc->imports[0];
    BOOST_TEST(a.path() == "default/production/vip-users/imp-1");
    BOOST_TEST(a.mode == "replace");
    BOOST_TEST_REQUIRE(a.steps.size() == 3u);
    BOOST_TEST(a.steps[0].status == "preparing");
    BOOST_TEST(a.steps[0].duration.count() == 2000);
    BOOST_TEST_REQUIRE(a.steps[0].files.size() == 2u);
    BOOST_TEST(a.steps[0].files[1].filename == "b.csv");
    BOOST_TEST(a.steps[0].files[1].status == "done");
    BOOST_TEST(a.steps[1].status == "in_progress");
    BOOST_TEST(a.steps[1].duration.count() == 5'400'000);
    BOOST_TEST(a.steps[1].files.empty());
    BOOST_TEST(a.steps[2].status == "complete");
    BOOST_TEST(a.steps[2].duration.count() == 0);
    BOOST_TEST_REQUIRE(a.faults.size() == 1u);
    BOOST_TEST((a.faults[0].type == sim::fault_type::forbidden));
    BOOST_TEST(a.faults[0].count.value_or(0) == 2u);

    auto const& b = sc->imports[1];
    BOOST_TEST(b.mode == "merge");   // the default
    BOOST_TEST(b.faults.empty());

    BOOST_TEST_REQUIRE(sc->faults.size() == 5u);
    auto const& rl = sc->faults[0];
    BOOST_TEST((rl.type == sim::fault_type::rate_limit));
    BOOST_TEST(rl.from.count() == 1000);
    BOOST_TEST(rl.until.value_or(0ms).count() == 4000);
    BOOST_TEST(!rl.count.has_value());
    BOOST_TEST(rl.probability == 1.0);
    BOOST_TEST(rl.retry_after.value_or(0ms).count() == 2000);
    BOOST_TEST(rl.retry_after_date);
    BOOST_TEST(rl.reset_in.value_or(0ms).count() == 3000);
    BOOST_TEST((sc->faults[1].type == sim::fault_type::server_error));
    BOOST_TEST(sc->faults[1].status == 503);
    BOOST_TEST(sc->faults[1].probability == 0.3);
    BOOST_TEST((sc->faults[2].type == sim::fault_type::delay));
    BOOST_TEST(sc->faults[2].delay.count() == 500);
    BOOST_TEST(sc->faults[2].count.value_or(0) == 1u);
    BOOST_TEST((sc->faults[3].type == sim::fault_type::remaining_zero));
    BOOST_TEST(sc->faults[3].reset_in.value_or(0ms).count() == 2000);
    BOOST_TEST((sc->faults[4].type == sim::fault_type::reset));
}

BOOST_AUTO_TEST_CASE(no_token_and_every_fault_type) {
    std::vector<std::pair<std::string, sim::fault_type>> const types{
        {"rate_limit", sim::fault_type::rate_limit},     {"server_error", sim::fault_type::server_error},
        {"reset", sim::fault_type::reset},               {"truncate", sim::fault_type::truncate},
        {"malformed", sim::fault_type::malformed},       {"oversized", sim::fault_type::oversized},
        {"unauthorized", sim::fault_type::unauthorized}, {"forbidden", sim::fault_type::forbidden},
        {"not_found", sim::fault_type::not_found},       {"bad_request", sim::fault_type::bad_request},
        {"invalid_field", sim::fault_type::invalid_field}, {"unknown_status", sim::fault_type::unknown_status},
        {"flapping_files", sim::fault_type::flapping_files}, {"invented_status", sim::fault_type::invented_status},
    };
    std::string text = import_head + "    steps: [{status: complete}]\nfaults:\n";
    for (auto const& [name, type] : types) text += "  - { type: " + name + " }\n";
    auto sc = sim::parse_scenario(text, "s.yaml");
    BOOST_TEST_REQUIRE(sc.has_value(), (sc ? "" : sc.error()));
    BOOST_TEST(!sc->token.has_value());
    BOOST_TEST_REQUIRE(sc->faults.size() == types.size());
    for (std::size_t i = 0; i < types.size(); ++i) {
        BOOST_TEST_CONTEXT(types[i].first) {
            BOOST_TEST((sc->faults[i].type == types[i].second));
            BOOST_TEST(sim::to_string(sc->faults[i].type) == types[i].first);
        }
    }
}

BOOST_AUTO_TEST_CASE(shipped_examples_parse) {
    for (auto const* name : {"demo.yaml", "faulty.yaml"}) {
        BOOST_TEST_CONTEXT(name) {
            auto const path = std::string(IMPORTWATCH_SOURCE_DIR) + "/config/scenarios/" + name;
            auto const text = testing::read_file(path);
            BOOST_TEST_REQUIRE(!text.empty());
            auto sc = sim::parse_scenario(text, path);
            BOOST_TEST(sc.has_value(), (sc ? "" : sc.error()));
        }
    }
}

BOOST_AUTO_TEST_CASE(bad_scenarios) {
    struct bad_case {
        std::string name;
        std::string text;
        std::string message;
    };
    std::vector<bad_case> const cases{
        {"empty document", "", "s.yaml: the scenario is empty"},
        {"yaml syntax", "imports: [\n", "s.yaml:2:1: end of sequence flow not found"},
        {"top level not a map", "- a\n", "s.yaml:1:1: expected a mapping"},
        {"missing imports", "token: x\n", "s.yaml:1:1: missing key \"imports\""},
        {"no imports", "imports: []\n", "s.yaml:1:10: imports: needs at least one import"},
        {"unknown top key with hint", import_head + "    steps: [{status: complete}]\nfautls: []\n",
         "s.yaml:7:1: fautls: unknown key (did you mean \"faults\"?)"},
        {"unknown key without hint", import_head + "    steps: [{status: complete}]\n    colour: red\n",
         "s.yaml:7:5: imports[0].colour: unknown key"},
        {"duplicate key", import_head + "    steps: [{status: complete}]\n    segment: other\n",
         "s.yaml:7:5: imports[0].segment: duplicate key"},
        {"missing import_id",
         "imports:\n  - project: default\n    environment: production\n    segment: vip-users\n"
         "    steps: [{status: complete}]\n",
         "s.yaml:2:5: imports[0]: missing key \"import_id\""},
        {"bad import_id",
         "imports:\n  - project: default\n    environment: production\n    segment: vip-users\n"
         "    import_id: a/b\n    steps: [{status: complete}]\n",
         "s.yaml:5:16: imports[0].import_id: must match [A-Za-z0-9._-]+"},
        {"dot-dot project",
         "imports:\n  - project: ..\n    environment: production\n    segment: vip-users\n"
         "    import_id: i\n    steps: [{status: complete}]\n",
         "s.yaml:2:14: imports[0].project: must match [A-Za-z0-9._-]+"},
        {"bad mode", import_head + "    mode: upsert\n    steps: [{status: complete}]\n",
         "s.yaml:6:11: imports[0].mode: must be merge or replace"},
        {"missing steps", import_head, "s.yaml:2:5: imports[0]: missing key \"steps\""},
        {"no steps", import_head + "    steps: []\n", "s.yaml:6:12: imports[0].steps: needs at least one step"},
        {"steps not a list", import_head + "    steps: complete\n", "s.yaml:6:12: imports[0].steps: expected a list"},
        {"empty status", import_head + "    steps: [{status: \"\"}]\n",
         "s.yaml:6:22: imports[0].steps[0].status: must not be empty"},
        {"status missing", import_head + "    steps: [{for: 2s}, {status: complete}]\n",
         "s.yaml:6:13: imports[0].steps[0]: missing key \"status\""},
        {"status not a string", import_head + "    steps: [{status: [a]}]\n",
         "s.yaml:6:22: imports[0].steps[0].status: expected a string"},
        {"for missing before the last step", import_head + "    steps: [{status: preparing}, {status: complete}]\n",
         "s.yaml:6:13: imports[0].steps[0]: missing key \"for\" (only the last step lasts forever)"},
        {"for on the last step", import_head + "    steps: [{status: complete, for: 2s}]\n",
         "s.yaml:6:37: imports[0].steps[0].for: the last step lasts forever; remove \"for\""},
        {"bad duration", import_head + "    steps: [{status: preparing, for: 2 seconds}, {status: complete}]\n",
         "s.yaml:6:38: imports[0].steps[0].for: expected a duration like 500ms, 2s or 1h30m"},
        {"zero step", import_head + "    steps: [{status: preparing, for: 0s}, {status: complete}]\n",
         "s.yaml:6:38: imports[0].steps[0].for: must be greater than 0"},
        {"file without status", import_head + "    steps: [{status: complete, files: [{filename: a.csv}]}]\n",
         "s.yaml:6:40: imports[0].steps[0].files[0]: missing key \"status\""},
        {"duplicate file",
         import_head + "    steps: [{status: complete, files: [{filename: a.csv, status: x}, "
                       "{filename: a.csv, status: y}]}]\n",
         "s.yaml:6:81: imports[0].steps[0].files[1].filename: duplicate file a.csv"},
        {"duplicate import", import_head + "    steps: [{status: complete}]\n" + import_head.substr(9) +
                                 "    steps: [{status: stopped}]\n",
         "s.yaml:7:5: imports[1]: duplicate import default/production/vip-users/imp-1"},
        {"fault without type", import_head + "    steps: [{status: complete}]\nfaults: [{count: 1}]\n",
         "s.yaml:7:10: faults[0]: missing key \"type\""},
        {"unknown fault type", import_head + "    steps: [{status: complete}]\nfaults: [{type: explode}]\n",
         "s.yaml:7:17: faults[0].type: unknown fault type \"explode\" (one of rate_limit, remaining_zero, "
         "server_error, delay, reset, truncate, malformed, oversized, unauthorized, forbidden, not_found, "
         "bad_request, invalid_field, unknown_status, flapping_files, invented_status)"},
        {"files on another fault type", import_head + "    steps: [{status: complete}]\nfaults: [{type: reset, files: 3}]\n",
         "s.yaml:7:24: faults[0].files: not used by fault type reset"},
        {"no files", import_head + "    steps: [{status: complete}]\nfaults: [{type: flapping_files, files: 0}]\n",
         "s.yaml:7:40: faults[0].files: must be between 1 and 20000"},
        {"status too long to serve", import_head + "    steps: [{status: complete}]\nfaults: [{type: invented_status, length: 600000}]\n",
         "s.yaml:7:42: faults[0].length: must be between 1 and 524288"},
        {"key of another fault type", import_head + "    steps: [{status: complete}]\nfaults: [{type: reset, status: 503}]\n",
         "s.yaml:7:24: faults[0].status: not used by fault type reset"},
        {"misspelt fault key",
         import_head + "    steps: [{status: complete}]\nfaults: [{type: rate_limit, retry_afte: 1s}]\n",
         "s.yaml:7:29: faults[0].retry_afte: unknown key (did you mean \"retry_after\"?)"},
        {"until before from",
         import_head + "    steps: [{status: complete}]\nfaults: [{type: reset, from: 5s, until: 5s}]\n",
         "s.yaml:7:41: faults[0].until: must be after \"from\""},
        {"count zero", import_head + "    steps: [{status: complete}]\nfaults: [{type: reset, count: 0}]\n",
         "s.yaml:7:31: faults[0].count: must be at least 1"},
        {"count not an integer", import_head + "    steps: [{status: complete}]\nfaults: [{type: reset, count: 1.5}]\n",
         "s.yaml:7:31: faults[0].count: expected an integer"},
        {"probability above 1",
         import_head + "    steps: [{status: complete}]\nfaults: [{type: reset, probability: 1.5}]\n",
         "s.yaml:7:37: faults[0].probability: must be between 0 and 1"},
        {"server_error 404",
         import_head + "    steps: [{status: complete}]\nfaults: [{type: server_error, status: 404}]\n",
         "s.yaml:7:39: faults[0].status: must be a 5xx status"},
        {"delay without delay", import_head + "    steps: [{status: complete}]\nfaults: [{type: delay}]\n",
         "s.yaml:7:10: faults[0]: missing key \"delay\""},
        {"retry_after_date alone",
         import_head + "    steps: [{status: complete}]\nfaults: [{type: rate_limit, retry_after_date: true}]\n",
         "s.yaml:7:47: faults[0].retry_after_date: needs \"retry_after\""},
        {"remaining_zero without reset_in",
         import_head + "    steps: [{status: complete}]\nfaults: [{type: remaining_zero}]\n",
         "s.yaml:7:10: faults[0]: missing key \"reset_in\" (remaining_zero says when the window resets)"},
        {"per-import fault path",
         import_head + "    steps: [{status: complete}]\n    faults: [{type: delay, delay: soon}]\n",
         "s.yaml:7:35: imports[0].faults[0].delay: expected a duration like 500ms, 2s or 1h30m"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto sc = sim::parse_scenario(c.text, "s.yaml");
            BOOST_TEST_REQUIRE(!sc.has_value());
            BOOST_TEST(sc.error() == c.message);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
