// The log sink in-process: each sink writes its own format (no process-wide
// format), and an event's JSON log line carries the event's serialized
// CloudEvent byte for byte — the same bytes the outbox stores and the
// cloudevents webhook body sends.
#define BOOST_TEST_MODULE log_sink
#include <boost/test/unit_test.hpp>

#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "core/event.hpp"
#include "core/untrusted_text.hpp"
#include "daemon/log_sink.hpp"

using namespace importwatch;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

core::sys_ms const t0 = core::sys_ms{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}} + 19h + 37min + 20s +
                        123ms;

std::vector<std::string> lines_of(std::string const& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

/// A status change whose Import carries what the sink must keep exact:
/// non-ASCII names, a bidi override (escaped), a number, nested objects.
core::event status_change() {
    core::watch_config w;
    w.name = "vip-nightly";
    w.key = {"default", "production", "vip-users", "imp-1"};
    w.labels = {{"team", "growth"}};
    std::optional<std::string> const status = "complete";
    auto const import = json::serialize(json::parse(
        "{\"id\":\"imp-1\",\"segmentKey\":\"vip-users\",\"creationTime\":1795894000000,\"mode\":\"replace\","
        "\"status\":\"complete\",\"files\":[{\"filename\":\"caf\xC3\xA9 \xE2\x80\xAE.csv\",\"status\":\"complete\"}],"
        "\"_links\":{\"self\":{\"href\":\"/x\"}}}"));
    json::object extra;
    extra.emplace("previous_status", "in_progress");
    core::prng rng(7);
    return core::make_event({w, "https://app.launchdarkly.com", status, import}, core::status_changed_type, 3,
                            std::move(extra), "vip-nightly status in_progress -> complete (default/production/vip-users/imp-1)",
                            core::log_level::info, t0, rng);
}

std::shared_ptr<spdlog::logger> logger_on(std::shared_ptr<spdlog::sinks::sink> sink, char const* name) {
    auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
    logger->set_level(spdlog::level::trace);
    return logger;
}

/// Makes `logger` the default one for the scope (log_event and log_fields use it).
struct default_logger {
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    explicit default_logger(std::shared_ptr<spdlog::logger> l) { spdlog::set_default_logger(std::move(l)); }
    ~default_logger() { spdlog::set_default_logger(previous); }
};

std::regex const text_line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|error) .*)");

} // namespace

BOOST_AUTO_TEST_CASE(a_text_sink_and_a_json_sink_write_their_own_formats_in_one_process) {
    std::ostringstream text_out, json_out;
    auto text = std::make_shared<daemon::log_sink>(text_out, core::log_format::text);
    auto json_sink = std::make_shared<daemon::log_sink>(json_out, core::log_format::json);
    auto text_logger = logger_on(text, "text");
    auto json_logger = logger_on(json_sink, "json");
    auto const e = status_change();

    // Interleaved: whichever was configured last must not decide for the other.
    text_logger->info("plain {}", 1);
    json_logger->info("plain {}", 1);
    {
        default_logger scope(text_logger);
        daemon::log_fields(core::log_level::warn, "with fields", {{"watch", "vip"}});
        daemon::log_event(e);
    }
    {
        default_logger scope(json_logger);
        daemon::log_fields(core::log_level::warn, "with fields", {{"watch", "vip"}});
        daemon::log_event(e);
    }
    text_logger->error("plain {}", 2);

    auto const t = lines_of(text_out.str());
    BOOST_TEST_INFO(text_out.str());
    BOOST_TEST_REQUIRE(t.size() == 4u);
    for (auto const& line : t) BOOST_TEST(std::regex_match(line, text_line), line);
    BOOST_TEST(t[0].ends_with(" info plain 1"));
    BOOST_TEST(t[1].ends_with(" warn with fields"));
    BOOST_TEST(t[2] == "2026-11-28T19:37:20.123Z info " + e.summary);
    BOOST_TEST(t[3].ends_with(" error plain 2"));

    auto const j = lines_of(json_out.str());
    BOOST_TEST_INFO(json_out.str());
    BOOST_TEST_REQUIRE(j.size() == 3u);
    auto const plain = json::parse(j[0]).as_object();
    BOOST_TEST(plain.at("level") == json::value("info"));
    BOOST_TEST(plain.at("msg") == json::value("plain 1"));
    BOOST_TEST(plain.size() == 3u);
    auto const fields = json::parse(j[1]).as_object();
    BOOST_TEST(fields.at("level") == json::value("warn"));
    BOOST_TEST(fields.at("msg") == json::value("with fields"));
    BOOST_TEST(fields.at("watch") == json::value("vip"));
    BOOST_TEST(json::parse(j[2]).at("event") == json::parse(e.body));

    // A reload changes one sink's format, not the other's.
    json_sink->set_line_format(core::log_format::text);
    json_logger->info("now text");
    text_logger->info("still text");
    BOOST_TEST(lines_of(json_out.str()).back().ends_with(" info now text"));
    BOOST_TEST(lines_of(text_out.str()).back().ends_with(" info still text"));
}

BOOST_AUTO_TEST_CASE(the_json_line_of_an_event_carries_its_bytes_unchanged) {
    std::ostringstream out;
    auto sink = std::make_shared<daemon::log_sink>(out, core::log_format::json);
    auto const e = status_change();
    BOOST_TEST_REQUIRE(e.body.find("\\u202e") != std::string::npos, e.body);   // escaped, and must stay so
    sink->write_event(e);

    auto const lines = lines_of(out.str());
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    auto const& line = lines[0];
    // The bytes the outbox row and the cloudevents webhook body are made of.
    BOOST_TEST(line.ends_with(",\"event\":" + e.body + "}"), line);
    BOOST_TEST(line == R"({"ts":"2026-11-28T19:37:20.123Z","level":"info","msg":")" + e.summary + R"(","event":)" +
                           e.body + "}");
    // What parsing the event and serializing the line again (made printable)
    // used to write: the same bytes.
    BOOST_TEST(core::json_printable(json::serialize(json::parse(line))) == line);
}

BOOST_AUTO_TEST_CASE(a_sink_that_is_not_a_log_sink_gets_the_text) {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
    sink->set_pattern("%l %v");
    default_logger scope(logger_on(sink, "capture"));
    auto const e = status_change();
    daemon::log_event(e);
    daemon::log_fields(core::log_level::warn, "with fields", {{"watch", "vip"}});
    auto const lines = lines_of(out.str());
    BOOST_TEST_REQUIRE(lines.size() == 2u, out.str());
    BOOST_TEST(lines[0] == "info " + daemon::event_text_line(e));
    BOOST_TEST(lines[1] == "warning with fields");
    BOOST_TEST(out.str().find('\x1e') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(levels_below_the_logger_level_are_not_written) {
    std::ostringstream out;
    auto logger = logger_on(std::make_shared<daemon::log_sink>(out, core::log_format::json), "quiet");
    logger->set_level(spdlog::level::warn);
    default_logger scope(logger);
    daemon::log_event(status_change());   // info
    daemon::log_fields(core::log_level::info, "hidden", {});
    daemon::log_fields(core::log_level::error, "shown", {});
    auto const lines = lines_of(out.str());
    BOOST_TEST_REQUIRE(lines.size() == 1u, out.str());
    BOOST_TEST(json::parse(lines[0]).at("msg") == json::value("shown"));
}
