#define BOOST_TEST_MODULE event
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <vector>
#include <regex>
#include <string>

#include <boost/json.hpp>

#include "core/event.hpp"
#include "common/scripted_random.hpp"

namespace json = boost::json;
using namespace importwatch::core;
using importwatch::testing::scripted_random;
using namespace std::chrono_literals;

namespace {

/// Plays back the given numbers, then repeats the last one.
std::vector<double> const id_script{0.1, 0.2, 0.3, 0.4};

std::string expected_id(std::vector<double> script = id_script) {
    scripted_random rng(std::move(script));
    return rng.uuid_v4();
}

sys_ms const t_2026_11_28_19_37_20_123 =
    sys_ms{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}} + 19h + 37min + 20s + 123ms;

watch_config vip_nightly() {
    watch_config w;
    w.name = "vip-nightly";
    w.key = {"default", "production", "vip-users", "1234a567-bcd8-9123-4567-abcd1234567f"};
    w.labels = {{"team", "growth"}};
    return w;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cloud_events)

BOOST_AUTO_TEST_CASE(status_changed_is_the_spec_example_member_for_member) {
    auto const watch = vip_nightly();
    std::optional<std::string> const status = "complete";
    json::value const import_json = json::parse(
        R"({"id":"1234a567-bcd8-9123-4567-abcd1234567f","segmentKey":"vip-users","creationTime":1,"mode":"merge","status":"complete","_links":{}})");
    scripted_random rng(id_script);
    json::object extra;
    extra.emplace("previous_status", "in_progress");

    // A trailing slash on base_url must not double the slash in `source`.
    auto const e = make_event({watch, "https://app.launchdarkly.com/", status, json::serialize(import_json)}, status_changed_type,
                              3, std::move(extra), "the summary", log_level::info, t_2026_11_28_19_37_20_123,
                              rng);

    auto const id = expected_id();
    std::string const expected = R"({"specversion":"1.0","id":")" + id +
        R"(","source":"https://app.launchdarkly.com/api/v2/segments/default/production/vip-users/imports/1234a567-bcd8-9123-4567-abcd1234567f",)"
        R"("type":"importwatch.import.status_changed",)"
        R"("subject":"default/production/vip-users/1234a567-bcd8-9123-4567-abcd1234567f",)"
        R"("time":"2026-11-28T19:37:20.123Z","datacontenttype":"application/json",)"
        R"("data":{"watch":"vip-nightly","labels":{"team":"growth"},)"
        R"("project":"default","environment":"production","segment":"vip-users",)"
        R"("import_id":"1234a567-bcd8-9123-4567-abcd1234567f","sequence":3,)"
        R"("previous_status":"in_progress","status":"complete","terminal":true,)"
        R"("import":{"id":"1234a567-bcd8-9123-4567-abcd1234567f","segmentKey":"vip-users","creationTime":1,"mode":"merge","status":"complete","_links":{}}}})";
    // Same content, and the member order docs/events.md documents.
    BOOST_TEST(json::parse(e.body) == json::parse(expected));
    BOOST_TEST(e.body == expected);

    BOOST_TEST(e.id == id);
    BOOST_TEST(std::regex_match(e.id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
    BOOST_TEST(e.type == "importwatch.import.status_changed");
    BOOST_TEST(e.sequence == 3u);
    BOOST_TEST((e.time == t_2026_11_28_19_37_20_123));
    BOOST_TEST((e.level == log_level::info));
    BOOST_TEST(e.summary == "the summary");
}

BOOST_AUTO_TEST_CASE(the_id_comes_from_the_random_source) {
    auto const watch = vip_nightly();
    std::optional<std::string> const status = "ready";
    json::value const import_json = nullptr;
    std::vector<double> const other{0.9, 0.8, 0.7, 0.6};
    scripted_random a(id_script), b(other);
    auto const ea = make_event({watch, "https://x", status, json::serialize(import_json)}, stalled_type, 1, {}, "", log_level::warn,
                               t_2026_11_28_19_37_20_123, a);
    auto const eb = make_event({watch, "https://x", status, json::serialize(import_json)}, stalled_type, 1, {}, "", log_level::warn,
                               t_2026_11_28_19_37_20_123, b);
    BOOST_TEST(ea.id == expected_id());
    BOOST_TEST(eb.id == expected_id(other));
    BOOST_TEST(ea.id != eb.id);
    BOOST_TEST(json::parse(ea.body).at("id") == json::value(ea.id));
    BOOST_TEST((ea.level == log_level::warn));
}

BOOST_AUTO_TEST_CASE(common_data_keys_per_status) {
    struct row {
        char const* name;
        std::optional<std::string> status;
        char const* import_json;
        char const* expected_data;   // status, terminal, import
    };
    row const rows[] = {
        {"before the first observation", std::nullopt, "null", R"({"status":null,"terminal":false,"import":null})"},
        {"non-terminal", "pending_approval", R"({"status":"pending_approval"})",
         R"({"status":"pending_approval","terminal":false,"import":{"status":"pending_approval"}})"},
        {"stopped is terminal", "stopped", R"({"status":"stopped"})",
         R"({"status":"stopped","terminal":true,"import":{"status":"stopped"}})"},
        {"unknown is not terminal", "archived", R"({"status":"archived"})",
         R"({"status":"archived","terminal":false,"import":{"status":"archived"}})"},
    };
    auto const watch = vip_nightly();
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            scripted_random rng(id_script);
            json::value const import_json = json::parse(r.import_json);
            auto const e = make_event({watch, "https://app.launchdarkly.com", r.status, json::serialize(import_json)},
                                      watch_failed_type, 9, {}, "", log_level::warn, t_2026_11_28_19_37_20_123, rng);
            auto const data = json::parse(e.body).at("data").as_object();
            auto const want = json::parse(r.expected_data).as_object();
            for (auto const& member : want) {
                BOOST_TEST_CONTEXT("key " << member.key()) {
                    BOOST_TEST_REQUIRE(data.contains(member.key()));
                    BOOST_TEST(data.at(member.key()) == member.value());
                }
            }
            BOOST_TEST(data.at("sequence") == json::value(9));
            BOOST_TEST(json::parse(e.body).at("type") == json::value("importwatch.watch.failed"));
        }
    }
}

BOOST_AUTO_TEST_CASE(labels_and_extra_members) {
    auto watch = vip_nightly();
    watch.labels = {{"cost-center", "42"}, {"team", "growth"}};
    std::optional<std::string> const status = "in_progress";
    json::value const import_json = nullptr;
    scripted_random rng(id_script);
    json::object extra;
    extra.emplace("filename", "a.csv");
    extra.emplace("previous_file_status", nullptr);
    extra.emplace("file_status", "complete");
    auto const e = make_event({watch, "http://127.0.0.1:8080", status, json::serialize(import_json)}, file_status_changed_type, 4,
                              std::move(extra), "", log_level::info, t_2026_11_28_19_37_20_123, rng);
    auto const ce = json::parse(e.body).as_object();
    BOOST_TEST(ce.at("source") ==
               json::value("http://127.0.0.1:8080/api/v2/segments/default/production/vip-users/imports/"
                           "1234a567-bcd8-9123-4567-abcd1234567f"));
    auto const& data = ce.at("data").as_object();
    BOOST_TEST(data.at("labels") == json::parse(R"({"cost-center":"42","team":"growth"})"));
    BOOST_TEST(data.at("filename") == json::value("a.csv"));
    BOOST_TEST(data.at("previous_file_status").is_null());
    BOOST_TEST(data.at("file_status") == json::value("complete"));
    BOOST_TEST(data.size() == 13u);   // 10 common keys + 3 extra

    watch.labels.clear();
    auto const bare = make_event({watch, "https://x", status, json::serialize(import_json)}, stalled_type, 1, {}, "", log_level::warn,
                                 t_2026_11_28_19_37_20_123, rng);
    BOOST_TEST(json::parse(bare.body).at("data").at("labels") == json::object{});
    BOOST_TEST(json::parse(bare.body).at("data").as_object().size() == 10u);
}

BOOST_AUTO_TEST_CASE(bounded_import_keeps_small_imports_whole) {
    json::value const small = json::parse(R"({"id":"i","segmentKey":"s","creationTime":1,"mode":"merge","status":"ready",)"
                                          R"("files":[{"filename":"a.csv","status":"pending"}]})");
    BOOST_TEST(bounded_import(small, json::serialize(small).size()) == small);
    BOOST_TEST(bounded_import(nullptr, 0).is_null());
}

BOOST_AUTO_TEST_CASE(bounded_import_cuts_the_file_list_and_says_so) {
    json::object o{{"id", "i"}, {"segmentKey", "s"}, {"creationTime", 1}, {"mode", "merge"}, {"status", "ready"}};
    json::array files;
    for (int i = 0; i < 2000; ++i)
        files.push_back(json::object{{"filename", "part-" + std::to_string(i) + ".csv"}, {"status", "pending"}});
    o["files"] = files;
    o["_links"] = json::object{{"self", json::object{{"href", "/x"}}}};
    json::value const big = o;
    auto const size = json::serialize(big).size();
    BOOST_TEST_REQUIRE(size > max_event_import_bytes);

    auto const b = bounded_import(big, size);
    auto const text = json::serialize(b);
    BOOST_TEST(text.size() <= max_event_import_bytes);
    auto const& kept = b.at("files").as_array();
    BOOST_TEST(kept.size() > 100u);   // as many as fit, not just a few
    BOOST_TEST(kept.size() < 2000u);
    for (std::size_t i = 0; i < kept.size(); ++i) BOOST_TEST(kept[i] == files[i]);   // the leading ones, in order
    BOOST_TEST(b.at("_importwatch").at("files_omitted") == json::value(2000 - kept.size()));
    BOOST_TEST(b.at("_importwatch").at("original_bytes") == json::value(size));
    for (char const* key : {"id", "segmentKey", "creationTime", "mode", "status", "_links"})
        BOOST_TEST(b.at(key) == big.at(key), key);
}

BOOST_AUTO_TEST_CASE(bounded_import_falls_back_to_the_identifying_fields) {
    json::object o{{"id", std::string(100'000, 'i')}, {"segmentKey", "s"}, {"creationTime", 1}, {"mode", "merge"},
                   {"status", "ready"}, {"padding", std::string(500'000, 'p')}};
    json::value const big = o;
    auto const b = bounded_import(big, json::serialize(big).size());
    BOOST_TEST(json::serialize(b).size() <= 2048u);
    BOOST_TEST(!b.as_object().contains("padding"));
    BOOST_TEST(b.at("status") == json::value("ready"));
    BOOST_TEST(b.at("creationTime") == json::value(1));
    BOOST_TEST(b.at("id").as_string().size() < 300u);
    BOOST_TEST(b.at("_importwatch").at("truncated") == json::value(true));
}

BOOST_AUTO_TEST_CASE(event_bodies_escape_control_and_bidi_characters) {
    auto const watch = vip_nightly();
    std::optional<std::string> const status = "in_progress";
    json::value const import_json = json::parse("{\"status\":\"a\xC2\x9B\xE2\x80\xA8\xE2\x80\xAE\x7f\"}");
    scripted_random rng(id_script);
    auto const e = make_event({watch, "https://app.launchdarkly.com", status, json::serialize(import_json)}, status_changed_type, 1,
                              {}, "s", log_level::info, t_2026_11_28_19_37_20_123, rng);
    BOOST_TEST(e.body.find(R"("status":"a\u009b\u2028\u202e\u007f")") != std::string::npos, e.body);
    BOOST_TEST(json::parse(e.body).at("data").at("import") == import_json);
}

BOOST_AUTO_TEST_SUITE_END()
