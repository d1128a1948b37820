#define BOOST_TEST_MODULE import
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "core/import.hpp"

namespace json = boost::json;
using namespace importwatch::core;

namespace {

// LaunchDarkly's Import object as the API returns it (get-big-segment-import.md).
constexpr char const* ld_example = R"({
  "id": "1234a567-bcd8-9123-4567-abcd1234567f",
  "segmentKey": "vip-users",
  "creationTime": 1764358640123,
  "mode": "replace",
  "status": "in_progress",
  "files": [{"filename": "users.csv", "status": "complete"}],
  "_links": {"self": {"href": "/api/v2/segments/default/production/vip-users/imports/1234a567-bcd8-9123-4567-abcd1234567f",
                      "type": "application/json"}}
})";

json::object example_object() { return json::parse(ld_example).as_object(); }

std::string body_with(std::function<void(json::object&)> const& change) {
    auto obj = example_object();
    change(obj);
    return json::serialize(obj);
}

} // namespace

BOOST_AUTO_TEST_SUITE(import_decoding)

BOOST_AUTO_TEST_CASE(statuses_are_classified_and_only_complete_and_stopped_are_terminal) {
    struct row {
        char const* text;
        import_status status;
        bool terminal;
    };
    row const rows[] = {
        {"preparing", import_status::preparing, false},
        {"pending_approval", import_status::pending_approval, false},
        {"ready", import_status::ready, false},
        {"in_progress", import_status::in_progress, false},
        {"complete", import_status::complete, true},
        {"stopped", import_status::stopped, true},
        {"completed", import_status::unknown, false},
        {"Complete", import_status::unknown, false},
        {"", import_status::unknown, false},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT("status \"" << r.text << "\"") {
            BOOST_TEST((classify_status(r.text) == r.status));
            BOOST_TEST(is_terminal(r.text) == r.terminal);
        }
    }
}

BOOST_AUTO_TEST_CASE(the_ld_example_decodes_and_keeps_the_whole_object) {
    auto snap = decode_import(ld_example);
    BOOST_TEST_REQUIRE(snap.has_value());
    BOOST_TEST(snap->id == "1234a567-bcd8-9123-4567-abcd1234567f");
    BOOST_TEST(snap->segment_key == "vip-users");
    BOOST_TEST(snap->creation_time == 1764358640123);
    BOOST_TEST(snap->mode == "replace");
    BOOST_TEST(snap->status == "in_progress");
    BOOST_TEST_REQUIRE(snap->files.size() == 1u);
    BOOST_TEST(snap->files[0].filename == "users.csv");
    BOOST_TEST(snap->files[0].status == "complete");
    // _links and anything else LD sends stay in the JSON for events.
    BOOST_TEST(snap->json == json::parse(ld_example));
}

BOOST_AUTO_TEST_CASE(files_absent_null_empty_or_unsorted) {
    struct row {
        char const* name;
        std::function<void(json::object&)> change;
        std::vector<import_file> files;
    };
    std::vector<row> const rows{
        {"absent", [](json::object& o) { o.erase("files"); }, {}},
        {"null", [](json::object& o) { o["files"] = nullptr; }, {}},
        {"empty", [](json::object& o) { o["files"] = json::array{}; }, {}},
        {"unsorted",
         [](json::object& o) {
             o["files"] = json::parse(R"([{"filename":"c.csv","status":"pending"},
                                         {"filename":"a.csv","status":"complete"},
                                         {"filename":"b.csv","status":"weird-new-status"}])");
         },
         {{"a.csv", "complete"}, {"b.csv", "weird-new-status"}, {"c.csv", "pending"}}},
        {"extra members in an entry are ignored",
         [](json::object& o) {
             o["files"] = json::parse(R"([{"filename":"a.csv","status":"complete","rows":12}])");
         },
         {{"a.csv", "complete"}}},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            auto const body = body_with(r.change);
            auto snap = decode_import(body);
            BOOST_TEST_REQUIRE(snap.has_value());
            BOOST_TEST((snap->files == r.files));
            // files_of() reads the same list back from a stored Import.
            BOOST_TEST((files_of(json::parse(body)) == r.files));
        }
    }
}

BOOST_AUTO_TEST_CASE(unknown_status_is_kept_verbatim) {
    auto snap = decode_import(body_with([](json::object& o) { o["status"] = "Archived (legacy)"; }));
    BOOST_TEST_REQUIRE(snap.has_value());
    BOOST_TEST(snap->status == "Archived (legacy)");
}

BOOST_AUTO_TEST_CASE(links_are_not_required) {
    auto snap = decode_import(body_with([](json::object& o) { o.erase("_links"); }));
    BOOST_TEST(snap.has_value());
}

BOOST_AUTO_TEST_CASE(creation_time_accepts_every_int64) {
    struct row {
        char const* literal;
        std::int64_t value;
    };
    row const rows[] = {
        {"0", 0},
        {"-1", -1},
        {"9223372036854775807", 9223372036854775807},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.literal) {
            std::string body = R"({"id":"i","segmentKey":"s","mode":"merge","status":"ready","creationTime":)";
            body += r.literal;
            body += "}";
            auto snap = decode_import(body);
            BOOST_TEST_REQUIRE(snap.has_value());
            BOOST_TEST(snap->creation_time == r.value);
        }
    }
}

BOOST_AUTO_TEST_CASE(missing_and_ill_typed_fields_are_named) {
    struct row {
        char const* name;
        std::function<void(json::object&)> change;
        char const* error;
    };
    std::vector<row> const rows{
        {"no id", [](json::object& o) { o.erase("id"); }, "missing field id"},
        {"no segmentKey", [](json::object& o) { o.erase("segmentKey"); }, "missing field segmentKey"},
        {"no creationTime", [](json::object& o) { o.erase("creationTime"); }, "missing field creationTime"},
        {"no mode", [](json::object& o) { o.erase("mode"); }, "missing field mode"},
        {"no status", [](json::object& o) { o.erase("status"); }, "missing field status"},
        {"status null", [](json::object& o) { o["status"] = nullptr; }, "missing field status"},
        {"id number", [](json::object& o) { o["id"] = 12; }, "field id: expected string"},
        {"segmentKey object", [](json::object& o) { o["segmentKey"] = json::object{}; },
         "field segmentKey: expected string"},
        {"mode bool", [](json::object& o) { o["mode"] = true; }, "field mode: expected string"},
        {"status array", [](json::object& o) { o["status"] = json::array{"ready"}; },
         "field status: expected string"},
        {"creationTime string", [](json::object& o) { o["creationTime"] = "1764358640123"; },
         "field creationTime: expected integer"},
        {"creationTime float", [](json::object& o) { o["creationTime"] = 1.5; },
         "field creationTime: expected integer"},
        {"creationTime whole double", [](json::object& o) { o["creationTime"] = 1764358640123.0; },
         "field creationTime: expected integer"},
        {"creationTime above int64", [](json::object& o) { o["creationTime"] = 18446744073709551615ull; },
         "field creationTime: expected integer"},
        {"files string", [](json::object& o) { o["files"] = "users.csv"; }, "field files: expected array"},
        {"files entry not an object", [](json::object& o) { o["files"] = json::array{"users.csv"}; },
         "files[0]: expected object"},
        {"second file without filename",
         [](json::object& o) {
             o["files"] = json::parse(R"([{"filename":"a.csv","status":"complete"},{"status":"complete"}])");
         },
         "files[1].filename: expected string"},
        {"file status number",
         [](json::object& o) { o["files"] = json::parse(R"([{"filename":"a.csv","status":3}])"); },
         "files[0].status: expected string"},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            auto snap = decode_import(body_with(r.change));
            BOOST_TEST_REQUIRE(!snap.has_value());
            BOOST_TEST(snap.error() == r.error);
        }
    }
}

BOOST_AUTO_TEST_CASE(creation_time_float_literal_is_ill_typed) {
    // Straight from the wire, not via a json::value we built.
    std::string const body = R"({"id":"i","segmentKey":"s","creationTime":1e3,"mode":"merge","status":"ready"})";
    auto snap = decode_import(body);
    BOOST_TEST_REQUIRE(!snap.has_value());
    BOOST_TEST(snap.error() == "field creationTime: expected integer");
}

BOOST_AUTO_TEST_CASE(malformed_and_non_object_bodies) {
    struct row {
        char const* body;
        char const* error_prefix;
    };
    row const rows[] = {
        {"", "malformed JSON: "},
        {"{", "malformed JSON: "},
        {"<html>502 Bad Gateway</html>", "malformed JSON: "},
        {R"({"id":"a"} trailing)", "malformed JSON: "},
        {"[]", "expected a JSON object"},
        {"null", "expected a JSON object"},
        {R"("complete")", "expected a JSON object"},
        {"42", "expected a JSON object"},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT("body " << r.body) {
            auto snap = decode_import(r.body);
            BOOST_TEST_REQUIRE(!snap.has_value());
            BOOST_TEST(snap.error().rfind(r.error_prefix, 0) == 0u, "error: " << snap.error());
            if (std::string_view(r.error_prefix) == "malformed JSON: ")
                BOOST_TEST(snap.error().size() > std::string_view(r.error_prefix).size());
        }
    }
}

BOOST_AUTO_TEST_CASE(bodies_over_one_mib_are_refused_even_when_valid) {
    std::string const valid = ld_example;
    std::string at_limit = valid + std::string(max_import_body - valid.size(), ' ');
    BOOST_TEST_REQUIRE(at_limit.size() == max_import_body);
    BOOST_TEST(decode_import(at_limit).has_value());

    std::string over = at_limit + " ";
    auto snap = decode_import(over);
    BOOST_TEST_REQUIRE(!snap.has_value());
    BOOST_TEST(snap.error() == "body too large: 1048577 bytes (limit 1048576)");
}

BOOST_AUTO_TEST_CASE(files_of_is_empty_on_anything_unexpected) {
    struct row {
        char const* name;
        char const* json;
    };
    row const rows[] = {
        {"null", "null"},
        {"array", "[]"},
        {"no files", R"({"status":"ready"})"},
        {"files not an array", R"({"files":{"filename":"a"}})"},
        {"a broken entry", R"({"files":[{"filename":"a.csv","status":"complete"},{"filename":1,"status":"x"}]})"},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) { BOOST_TEST(files_of(json::parse(r.json)).empty()); }
    }
}

BOOST_AUTO_TEST_CASE(statuses_longer_than_the_limit_are_refused_without_echo) {
    auto body = [](std::string const& status, std::string const& file_status) {
        return R"({"id":"i","segmentKey":"s","creationTime":1,"mode":"merge","status":")" + status +
               R"(","files":[{"filename":"a.csv","status":")" + file_status + R"("}]})";
    };
    std::string const at_limit(max_status_bytes, 'a');
    std::string const over(max_status_bytes + 1, 'b');
    BOOST_TEST(decode_import(body(at_limit, at_limit)).has_value());
    auto const status = decode_import(body(over, "ok"));
    BOOST_TEST_REQUIRE(!status.has_value());
    BOOST_TEST(status.error() == "field status: 65 bytes, longer than the status limit (64 bytes)");
    auto const file = decode_import(body("ready", over));
    BOOST_TEST_REQUIRE(!file.has_value());
    BOOST_TEST(file.error() == "files[0].status: 65 bytes, longer than the status limit (64 bytes)");
}

BOOST_AUTO_TEST_CASE(status_labels_are_the_known_statuses_or_unknown) {
    BOOST_TEST(std::string(status_label(std::nullopt)) == "none");
    for (char const* s : {"preparing", "pending_approval", "ready", "in_progress", "complete", "stopped"})
        BOOST_TEST(std::string(status_label(std::string(s))) == s);
    BOOST_TEST(std::string(status_label(std::string("mystery_status"))) == "unknown");
    BOOST_TEST(std::string(status_label(std::string(200'000, 'x'))) == "unknown");
    BOOST_TEST(std::string(status_label(std::string("unknown"))) == "unknown");
}

BOOST_AUTO_TEST_CASE(one_status_table_feeds_labels_and_config_keys) {
    // Every label is "none", a documented status or "unknown", each once, and
    // every documented status classifies back to itself.
    std::vector<std::string> labels(status_labels.begin(), status_labels.end());
    BOOST_TEST(labels == (std::vector<std::string>{"none", "preparing", "pending_approval", "ready", "in_progress",
                                                   "complete", "stopped", "unknown"}),
               boost::test_tools::per_element());
    for (auto const s : known_statuses) BOOST_TEST((classify_status(to_string(s)) == s));
    // The per-status config keys are exactly the documented non-terminal statuses.
    std::vector<std::string> polled;
    for (auto const s : known_statuses)
        if (!is_terminal(s)) polled.emplace_back(to_string(s));
    BOOST_TEST(polled == std::vector<std::string>(polled_status_names.begin(), polled_status_names.end()),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
