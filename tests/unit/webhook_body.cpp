#define BOOST_TEST_MODULE webhook_body
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>

#include <boost/json.hpp>

#include "core/untrusted_text.hpp"
#include "core/webhook_body.hpp"
#include "common/source_file.hpp"

namespace json = boost::json;
using namespace importwatch::core;

namespace {

std::string const base_url = "https://app.launchdarkly.com";

std::string const events_doc = importwatch::testing::read_source_file("docs/events.md");

/// The fenced block that follows `anchor` in docs/events.md.
std::string doc_block_after(std::string const& anchor) {
    auto at = events_doc.find(anchor);
    BOOST_TEST_REQUIRE(at != std::string::npos, "docs/events.md has no \"" << anchor << "\"");
    auto open = events_doc.find("```", at);
    auto start = events_doc.find('\n', open) + 1;
    auto close = events_doc.find("\n```", start);
    BOOST_TEST_REQUIRE(close != std::string::npos);
    return events_doc.substr(start, close - start);
}

/// An event as the daemon makes it: its CloudEvent and its summary.
event event_of(json::object const& cloud_event, std::string summary) {
    event e;
    e.id = std::string(cloud_event.at("id").as_string());
    e.type = std::string(cloud_event.at("type").as_string());
    e.sequence = cloud_event.at("data").at("sequence").to_number<std::uint64_t>();
    e.body = json::serialize(cloud_event);
    e.summary = std::move(summary);
    return e;
}

/// The event of the json log line in docs/events.md ("msg" is its summary).
event doc_event() {
    auto const block = doc_block_after("**json**: one JSON object per line");
    auto const line = json::parse(block).as_object();
    return event_of(line.at("event").as_object(), std::string(line.at("msg").as_string()));
}

webhook_config hook(webhook_format format, std::string body_template = "") {
    webhook_config h;
    h.name = "test";
    h.format = format;
    h.body_template = std::move(body_template);
    return h;
}

std::string const subject = "default/production/vip-users/imp-1";

/// A CloudEvent of watch "vip" for import p/e/s/imp-1, `data` members added.
json::object cloud_event(std::string const& type, json::object extra, json::value import = nullptr) {
    json::object data{{"watch", "vip"},        {"labels", json::object{}}, {"project", "default"},
                      {"environment", "production"}, {"segment", "vip-users"}, {"import_id", "imp-1"},
                      {"sequence", 7}};
    for (auto const& m : extra) data.emplace(m.key(), m.value());
    data.emplace("import", std::move(import));
    return {{"specversion", "1.0"},
            {"id", "11111111-2222-4333-8444-555555555555"},
            {"source", base_url + "/api/v2/segments/default/production/vip-users/imports/imp-1"},
            {"type", type},
            {"subject", subject},
            {"time", "2026-11-30T10:00:00.000Z"},
            {"datacontenttype", "application/json"},
            {"data", std::move(data)}};
}

json::object slack_of(event const& e) { return json::parse(webhook_body(hook(webhook_format::slack), e, base_url)).as_object(); }

std::string block_text(json::object const& slack, std::size_t i) {
    return std::string(slack.at("blocks").at(i).at("text").at("text").as_string());
}

std::vector<std::string> field_texts(json::object const& slack) {
    std::vector<std::string> out;
    for (auto const& f : slack.at("blocks").at(1).at("fields").as_array()) out.emplace_back(f.at("text").as_string());
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(webhook_body_formats)

BOOST_AUTO_TEST_CASE(cloudevents_is_the_event_body_itself) {
    auto const e = doc_event();
    BOOST_TEST(webhook_body(hook(webhook_format::cloudevents), e, base_url) == e.body);
    BOOST_TEST(content_type(webhook_format::cloudevents) == "application/cloudevents+json");
    BOOST_TEST(content_type(webhook_format::slack) == "application/json");
    BOOST_TEST(content_type(webhook_format::body_template) == "application/json");
}

// The body docs/events.md shows is the body sent, byte for byte (the doc
// shows it indented; the wire form is the same JSON, compact).
BOOST_AUTO_TEST_CASE(slack_body_is_the_one_in_the_docs) {
    auto const documented = doc_block_after("a `slack` webhook sends this body");
    auto const body = webhook_body(hook(webhook_format::slack), doc_event(), base_url);
    BOOST_TEST(body == json::serialize(json::parse(documented)));
    BOOST_TEST(body.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(slack_file_event_names_the_file_and_its_change) {
    auto const e = event_of(cloud_event("importwatch.import.file_status_changed",
                                        {{"filename", "a<b>&c.csv"},
                                         {"previous_file_status", nullptr},
                                         {"file_status", "processing"},
                                         {"status", "in_progress"},
                                         {"terminal", false}}),
                            "vip file a<b>&c.csv none -> processing (" + subject + ")");
    auto const slack = slack_of(e);
    BOOST_TEST(std::string(slack.at("text").as_string()) ==
               "vip file a&lt;b&gt;&amp;c.csv none -&gt; processing (" + subject + ")");
    BOOST_TEST(block_text(slack, 0) == "*vip* file a&lt;b&gt;&amp;c.csv none -&gt; processing");
    std::vector<std::string> const expected{
        "*Watch*\nvip", "*Import*\n`imp-1`", "*Status*\n`in_progress`",
        "*Segment*\n<https://app.launchdarkly.com/projects/default/segments/vip-users/targeting?env=production"
        "&selected-env=production|default / production / vip-users>",
        "*File*\n`a&lt;b&gt;&amp;c.csv`: none → `processing`"};
    BOOST_TEST(field_texts(slack) == expected, boost::test_tools::per_element());
    BOOST_TEST(slack.at("blocks").as_array().size() == 3u);   // no Import: no Files block
    BOOST_TEST(std::string(slack.at("blocks").at(2).at("elements").at(0).at("text").as_string()) ==
               "`importwatch.import.file_status_changed` · sequence 7 · 2026-11-30T10:00:00.000Z");
}

BOOST_AUTO_TEST_CASE(slack_failure_gives_the_reason_and_first_observation_says_none) {
    auto const failed = slack_of(event_of(
        cloud_event("importwatch.watch.failed",
                    {{"reason", "not_found"}, {"http_status", 404}, {"message", "Not Found"}, {"status", nullptr},
                     {"terminal", false}}),
        "vip failed: not_found (HTTP 404: Not Found) (" + subject + ")"));
    BOOST_TEST(block_text(failed, 0) == "*vip* failed: not_found (HTTP 404: Not Found)");   // nothing to escape
    auto fields = field_texts(failed);
    BOOST_TEST_REQUIRE(fields.size() == 5u);
    BOOST_TEST(fields[2] == "*Status*\nnone");
    BOOST_TEST(fields[4] == "*Reason*\n`not_found` (HTTP 404): Not Found");

    auto const first = slack_of(event_of(
        cloud_event("importwatch.import.status_changed",
                    {{"previous_status", nullptr}, {"status", "preparing"}, {"terminal", false}}),
        "vip status none -> preparing (" + subject + ")"));
    BOOST_TEST(field_texts(first)[2] == "*Status*\nnone → `preparing`");
}

BOOST_AUTO_TEST_CASE(slack_lists_at_most_ten_files) {
    json::array files;
    for (int i = 0; i < 12; ++i)
        files.push_back(json::object{{"filename", "part-" + std::to_string(i) + ".csv"}, {"status", "complete"}});
    files.push_back(json::object{{"filename", std::string(300, 'x')}, {"status", "complete"}});
    json::object import{{"id", "imp-1"}, {"status", "in_progress"}, {"files", std::move(files)},
                        {"_importwatch", json::object{{"files_omitted", 5}, {"original_bytes", 99999}}}};
    auto const slack = slack_of(event_of(cloud_event("importwatch.import.stalled",
                                                     {{"status", "in_progress"}, {"terminal", false}}, import),
                                         "vip stalled in in_progress for 30m (" + subject + ")"));
    auto const text = block_text(slack, 2);
    BOOST_TEST(text.starts_with("*Files*\n• `part-0.csv`: complete\n• `part-1.csv`: complete\n"));
    BOOST_TEST(text.find("part-9.csv") != std::string::npos);
    BOOST_TEST(text.find("part-10.csv") == std::string::npos);
    BOOST_TEST(text.ends_with("\n… and 8 more"));   // 3 not shown + 5 the Import left out
    BOOST_TEST(block_text(slack, 0) == "*vip* stalled in in_progress for 30m");
}

BOOST_AUTO_TEST_CASE(slack_body_has_no_raw_controls) {
    auto const e = event_of(cloud_event("importwatch.import.file_status_changed",
                                        {{"filename", "evil\u202e\x1b[2Jname"},
                                         {"previous_file_status", "a"},
                                         {"file_status", "b"},
                                         {"status", "in_progress"},
                                         {"terminal", false}}),
                            "vip file x a -> b (" + subject + ")");
    auto const body = webhook_body(hook(webhook_format::slack), e, base_url);
    BOOST_TEST(body.find('\x1b') == std::string::npos);
    BOOST_TEST(body.find("\u202e") == std::string::npos);
    BOOST_TEST(body.find("\\u001b") != std::string::npos);   // escaped, the same JSON value
    BOOST_TEST(json_printable(body) == body);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(body_templates)

// The template and its output in docs/events.md, rendered for the doc's event.
BOOST_AUTO_TEST_CASE(template_example_in_the_docs_renders_as_shown) {
    auto const yaml = doc_block_after("### `template`");
    auto const line_start = yaml.find("template: '");
    BOOST_TEST_REQUIRE(line_start != std::string::npos);
    auto const from = line_start + std::string("template: '").size();
    auto const line_end = std::min(yaml.find('\n', from), yaml.size());
    auto const body_template = yaml.substr(from, line_end - from - 1);   // without the closing '
    auto const checked = check_body_template(body_template);
    BOOST_TEST_REQUIRE(checked.has_value(), body_template << ": " << (checked ? "" : checked.error()));
    auto const shown = doc_block_after("For the event of the json log line above it sends:");
    BOOST_TEST(webhook_body(hook(webhook_format::body_template, body_template), doc_event(), base_url) == shown);
}

BOOST_AUTO_TEST_CASE(every_field_renders_json_escaped) {
    std::string body_template = "{{";
    for (auto field : body_template_fields)
        body_template += std::string(body_template.size() > 2 ? ", " : "") + "\"" + std::string(field) + "\": \"{" +
                         std::string(field) + "}\"";
    body_template += "}}";
    BOOST_TEST_REQUIRE(check_body_template(body_template).has_value());

    json::object import{{"id", "imp-1"}, {"status", "stopped"},
                        {"files", json::array{json::object{{"filename", "a.csv"}, {"status", "failed"}},
                                              json::object{{"filename", "b.csv"}, {"status", "complete"}}}}};
    auto ce = cloud_event("importwatch.watch.failed",
                          {{"reason", "forbidden"}, {"http_status", 403},
                           {"message", "say \"no\"\\ \n\x01 twice"}, {"status", "stopped"}, {"terminal", true}},
                          import);
    ce["data"].as_object()["labels"] = json::object{{"team", "growth"}, {"tier", "gold"}};
    auto const e = event_of(ce, "vip failed: forbidden (HTTP 403: say \"no\") (" + subject + ")");
    auto const body = webhook_body(hook(webhook_format::body_template, body_template), e, base_url);
    boost::system::error_code ec;
    auto const parsed = json::parse(body, ec);
    BOOST_TEST_REQUIRE(!ec, body);
    json::object const expected{
        {"id", "11111111-2222-4333-8444-555555555555"},
        {"type", "importwatch.watch.failed"},
        {"time", "2026-11-30T10:00:00.000Z"},
        {"source", "https://app.launchdarkly.com/api/v2/segments/default/production/vip-users/imports/imp-1"},
        {"subject", subject},
        {"watch", "vip"},
        {"labels", "team=growth, tier=gold"},
        {"project", "default"},
        {"environment", "production"},
        {"segment", "vip-users"},
        {"import_id", "imp-1"},
        {"sequence", "7"},
        {"previous_status", ""},
        {"status", "stopped"},
        {"terminal", "true"},
        {"filename", ""},
        {"previous_file_status", ""},
        {"file_status", ""},
        {"reason", "forbidden"},
        {"http_status", "403"},
        {"message", "say \"no\"\\ \n\x01 twice"},
        {"files", "a.csv: failed, b.csv: complete"},
        {"summary", "vip failed: forbidden (HTTP 403: say \"no\") (" + subject + ")"},
        {"segment_url", "https://app.launchdarkly.com/projects/default/segments/vip-users/targeting?env=production"
                        "&selected-env=production"},
    };
    BOOST_TEST(json::serialize(parsed) == json::serialize(expected));
    // Escaped as JSON writes it: the exact bytes of one value.
    BOOST_TEST(body.find(R"("message": "say \"no\"\\ \n\u0001 twice")") != std::string::npos, body);
}

BOOST_AUTO_TEST_CASE(files_lists_ten_then_counts_the_rest) {
    json::array files;
    for (int i = 0; i < 11; ++i)
        files.push_back(json::object{{"filename", "f" + std::to_string(i)}, {"status", "ok"}});
    json::object import{{"id", "imp-1"}, {"files", std::move(files)}};
    auto const e = event_of(cloud_event("importwatch.import.stalled", {{"status", "ready"}, {"terminal", false}}, import),
                            "vip stalled in ready for 6h (" + subject + ")");
    auto const body = webhook_body(hook(webhook_format::body_template, R"({{"f": "{files}"}})"), e, base_url);
    BOOST_TEST(body == R"({"f": "f0: ok, f1: ok, f2: ok, f3: ok, f4: ok, f5: ok, f6: ok, f7: ok, f8: ok, f9: ok, )"
                       R"(… and 1 more"})");
}

BOOST_AUTO_TEST_CASE(bad_templates_are_refused_with_a_reason) {
    struct case_ {
        char const* name;
        std::string body_template;
        std::string error;
    };
    std::vector<case_> const cases = {
        {"misspelt field", R"({{"s": "{staus}"}})", "unknown field {staus} (did you mean {status}?)"},
        {"unknown field",
         R"({{"s": "{colour}"}})",
         "unknown field {colour} (fields: id, type, time, source, subject, watch, labels, project, environment, "
         "segment, import_id, sequence, previous_status, status, terminal, filename, previous_file_status, "
         "file_status, reason, http_status, message, files, summary, segment_url)"},
        {"positional", R"({{"s": "{}"}})", "fields are named, e.g. {status}: \"{}\" is not"},
        {"numbered", R"({{"s": "{0}"}})", "fields are named, e.g. {status}: \"{0}\" is not"},
        {"single literal brace", R"({"text": "{watch}"})", "\"{\" starts a field (write {{ and }} for literal braces)"},
        {"format specification", R"({{"s": "{watch:>20}"}})",
         "{watch:…}: fields take no format specification (their values are escaped text, which padding or cutting "
         "could break)"},
        {"stray closing brace", R"({{"s": "{watch}"}}})", "not a valid template: unmatched '}' in format string"},
        {"unclosed field", R"({{"s": "{watch)", "not a valid template: missing '}' in format string"},
        {"field outside quotes", R"({{"n": {status}}})",
         "does not make JSON for a sample event (syntax error); put each field inside a JSON string, e.g. "
         "\"{status}\""},
        {"not JSON at all", "{watch} is {status}",
         "does not make JSON for a sample event (syntax error); put each field inside a JSON string, e.g. "
         "\"{status}\""},
        {"too long", "\"" + std::string(max_body_template_bytes, 'x') + "\"", "longer than 16 KiB"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto r = check_body_template(c.body_template);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error() == c.error);
        }
    }
    std::string many = "\"";
    for (std::size_t i = 0; i <= max_body_template_fields; ++i) many += "{watch}";
    many += "\"";
    BOOST_TEST(check_body_template(many).error() == "names more than 32 fields");
    BOOST_TEST(check_body_template(R"({{"text": "{watch} is {status} {{literal}}"}})").has_value());
}

BOOST_AUTO_TEST_CASE(segment_url_points_at_the_segment_in_its_environment) {
    BOOST_TEST(segment_url("https://app.eu.launchdarkly.com", {"proj", "env-1", "seg.a", "i"}) ==
               "https://app.eu.launchdarkly.com/projects/proj/segments/seg.a/targeting?env=env-1&selected-env=env-1");
}

BOOST_AUTO_TEST_SUITE_END()
