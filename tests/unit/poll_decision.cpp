#define BOOST_TEST_MODULE poll_decision
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "core/backoff.hpp"
#include "core/poll_decision.hpp"
#include "core/rate_limit_gate.hpp"
#include "core/untrusted_text.hpp"
#include "common/scripted_random.hpp"

namespace json = boost::json;
using namespace importwatch::core;
using importwatch::testing::scripted_random;
using importwatch::testing::top_draw;
using namespace std::chrono_literals;

namespace {

/// Always the same number: results do not depend on how many draws happen.
/// A different number each draw (golden-ratio walk), so event ids differ.
class walking_rng final : public random_source {
public:
    double next_unit() override {
        x_ += 0.6180339887498949;
        x_ -= static_cast<double>(static_cast<long long>(x_));
        return x_;
    }

private:
    double x_ = 0.0;
};

sys_ms const t0 = sys_ms{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}} + 19h;
constexpr char const* path = "default/production/vip-users/imp-1";

using file_list = std::vector<std::pair<std::string, std::string>>;

std::string import_body(std::string const& status, file_list const& files = {}, std::string const& extra = "");

struct fixture {
    watch_config watch;
    polling_config polling;
    std::string base_url = "https://app.launchdarkly.com";
    scripted_random rng{{0.75}};
    /// What the store holds for the watch: the last Import a decision handed it.
    std::string stored_import;

    fixture() {
        watch.name = "vip-nightly";
        watch.key = {"default", "production", "vip-users", "imp-1"};
        watch.labels = {{"team", "growth"}};
    }
    watch_view view() const { return {watch, polling, base_url}; }

    /// A decision as the poll pipeline completes it with the store: the
    /// stored Import into the event that carries it, a new Import stored.
    poll_decision through_store(poll_decision d) {
        carry_stored_import(d, stored_import);
        if (d.import) stored_import = *d.import;
        return d;
    }

    poll_decision poll(watch_state const& s, http_outcome const& o, sys_ms now) {
        return through_store(decide(view(), s, o, now, rng));
    }

    /// The state after a successful observation of `status`/`files` at
    /// `since`, its Import in the store.
    watch_state observed(std::string const& status, file_list const& files, sys_ms since, std::uint64_t sequence) {
        watch_state s;
        s.status = status;
        s.has_import = true;
        stored_import = json::serialize(json::parse(import_body(status, files)));
        for (auto const& [name, st] : files) s.files.push_back({name, st});
        std::sort(s.files.begin(), s.files.end());
        s.status_since = since;
        s.sequence = sequence;
        return s;
    }
};

std::string import_body(std::string const& status, file_list const& files, std::string const& extra) {
    json::object o;
    o["id"] = "imp-1";
    o["segmentKey"] = "vip-users";
    o["creationTime"] = 1764356400000;
    o["mode"] = "replace";
    o["status"] = status;
    if (!files.empty()) {
        json::array arr;
        for (auto const& [name, st] : files) arr.push_back(json::object{{"filename", name}, {"status", st}});
        o["files"] = std::move(arr);
    }
    o["_links"] = json::object{{"self", json::object{{"href", "/imports/imp-1" + extra}}}};
    return json::serialize(o);
}

http_outcome reply(int status, std::string body = "") {
    http_reply r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

http_outcome transport(failure_kind kind, std::string message) {
    return unexpected<request_failure>{request_failure{kind, std::move(message)}};
}

/// Printable form of an optional string for assertions.
std::string text(std::optional<std::string> const& s) { return s ? "\"" + *s + "\"" : "<none>"; }

json::object data_of(event const& e) { return json::parse(e.body).at("data").as_object(); }

std::vector<std::string> types_of(poll_decision const& d) {
    std::vector<std::string> out;
    for (auto const& e : d.events) out.push_back(e.type);
    return out;
}

/// The events' sequences continue the state's without gaps.
void check_sequences(watch_state const& before, poll_decision const& d) {
    for (std::size_t i = 0; i < d.events.size(); ++i) {
        BOOST_TEST(d.events[i].sequence == before.sequence + i + 1);
        BOOST_TEST(data_of(d.events[i]).at("sequence") == json::value(before.sequence + i + 1));
    }
    BOOST_TEST(d.state.sequence == before.sequence + d.events.size());
}

// interval * (1 + 0.1 * (2 * 0.75 - 1)) with the fixture's rng.
milliseconds healthy_delay(milliseconds interval) { return interval * 105 / 100; }

} // namespace

BOOST_FIXTURE_TEST_SUITE(observing_imports, fixture)

BOOST_AUTO_TEST_CASE(first_observation_emits_status_changed_from_null_and_no_file_events) {
    watch_state const before;
    auto const body = import_body("preparing", {{"b.csv", "pending"}, {"a.csv", "complete"}});
    auto const d = poll(before, reply(200, body), t0);

    BOOST_TEST(to_string(d.result) == "ok");
    BOOST_TEST(types_of(d) == std::vector<std::string>{"importwatch.import.status_changed"});
    check_sequences(before, d);
    auto const& e = d.events.at(0);
    BOOST_TEST(e.summary == "vip-nightly status none -> preparing (default/production/vip-users/imp-1)");
    BOOST_TEST((e.level == log_level::info));
    BOOST_TEST((e.time == t0));
    auto const data = data_of(e);
    BOOST_TEST(data.at("previous_status").is_null());
    BOOST_TEST(data.at("status") == json::value("preparing"));
    BOOST_TEST(data.at("terminal") == json::value(false));
    BOOST_TEST(data.at("import") == json::parse(body));

    BOOST_TEST(d.persist);
    BOOST_TEST(text(d.state.status) == "\"preparing\"");
    BOOST_TEST((d.state.status_since == t0));
    BOOST_TEST(d.state.has_import);
    BOOST_TEST_REQUIRE(d.import.has_value());   // for the store
    BOOST_TEST(json::parse(*d.import) == json::parse(body));
    BOOST_TEST((d.state.files == std::vector<import_file>{{"a.csv", "complete"}, {"b.csv", "pending"}}));
    BOOST_TEST_REQUIRE(d.next_poll.has_value());
    BOOST_TEST((*d.next_poll == t0 + healthy_delay(30s)));
    BOOST_TEST(!d.error.has_value());
    BOOST_TEST(!d.warning.has_value());
    BOOST_TEST(!d.unauthorized);
}

BOOST_AUTO_TEST_CASE(status_change_then_file_events_in_filename_order) {
    auto const before = observed("in_progress", {{"a.csv", "pending"}, {"c.csv", "pending"}, {"z.csv", "pending"}},
                                 t0 - 1h, 7);
    // b.csv is new, a.csv changed, c.csv unchanged, z.csv disappeared; the body lists them unsorted.
    auto const body = import_body("complete", {{"c.csv", "pending"}, {"b.csv", "complete"}, {"a.csv", "complete"}});
    auto const d = poll(before, reply(200, body), t0);

    BOOST_TEST(types_of(d) == (std::vector<std::string>{"importwatch.import.status_changed",
                                                         "importwatch.import.file_status_changed",
                                                         "importwatch.import.file_status_changed"}));
    check_sequences(before, d);
    BOOST_TEST_REQUIRE(d.events.size() == 3u);
    BOOST_TEST(d.events[0].summary == "vip-nightly status in_progress -> complete (default/production/vip-users/imp-1)");
    BOOST_TEST(d.events[1].summary == "vip-nightly file a.csv pending -> complete (default/production/vip-users/imp-1)");
    BOOST_TEST(d.events[2].summary == "vip-nightly file b.csv none -> complete (default/production/vip-users/imp-1)");

    auto const status_data = data_of(d.events[0]);
    BOOST_TEST(status_data.at("previous_status") == json::value("in_progress"));
    BOOST_TEST(status_data.at("status") == json::value("complete"));
    BOOST_TEST(status_data.at("terminal") == json::value(true));

    struct file_row {
        char const* filename;
        json::value previous;
        char const* now;
    };
    file_row const files[] = {{"a.csv", "pending", "complete"}, {"b.csv", nullptr, "complete"}};
    for (std::size_t i = 0; i < 2; ++i) {
        BOOST_TEST_CONTEXT("file event " << i) {
            auto const data = data_of(d.events[i + 1]);
            BOOST_TEST(data.at("filename") == json::value(files[i].filename));
            BOOST_TEST(data.at("previous_file_status") == files[i].previous);
            BOOST_TEST(data.at("file_status") == json::value(files[i].now));
            BOOST_TEST(data.at("status") == json::value("complete"));
            BOOST_TEST(data.at("import") == json::parse(body));
            BOOST_TEST(!data.contains("previous_status"));
        }
    }
    BOOST_TEST(d.persist);
    BOOST_TEST((d.state.status_since == t0));
    BOOST_TEST(d.state.files.size() == 3u);
    BOOST_TEST_REQUIRE(d.import.has_value());
    BOOST_TEST(json::parse(*d.import) == json::parse(body));
    // complete is terminal: never polled again.
    BOOST_TEST(!d.next_poll.has_value());
    BOOST_TEST(d.state.terminal());
}

BOOST_AUTO_TEST_CASE(only_files_changed_emits_only_file_events) {
    auto before = observed("in_progress", {{"a.csv", "pending"}}, t0 - 1h, 2);
    before.stall_reported = false;
    auto const body = import_body("in_progress", {{"a.csv", "complete"}});
    auto const d = poll(before, reply(200, body), t0);

    BOOST_TEST(types_of(d) == std::vector<std::string>{"importwatch.import.file_status_changed"});
    check_sequences(before, d);
    BOOST_TEST(d.persist);
    BOOST_TEST((d.state.status_since == t0 - 1h));   // the status did not change
    BOOST_TEST_REQUIRE(d.import.has_value());
    BOOST_TEST(json::parse(*d.import) == json::parse(body));
    BOOST_TEST((d.state.files == std::vector<import_file>{{"a.csv", "complete"}}));
    BOOST_TEST_REQUIRE(d.next_poll.has_value());
    BOOST_TEST((*d.next_poll == t0 + healthy_delay(30s)));
}

BOOST_AUTO_TEST_CASE(a_disappeared_file_alone_emits_nothing_but_is_stored) {
    auto const before = observed("in_progress", {{"a.csv", "pending"}, {"b.csv", "pending"}}, t0 - 1h, 2);
    auto const d = poll(before, reply(200, import_body("in_progress", {{"a.csv", "pending"}})), t0);
    BOOST_TEST(d.events.empty());
    BOOST_TEST(d.persist);
    BOOST_TEST((d.state.files == std::vector<import_file>{{"a.csv", "pending"}}));
}

BOOST_AUTO_TEST_CASE(an_unchanged_poll_writes_nothing) {
    auto const before = observed("ready", {{"a.csv", "pending"}}, t0 - 1h, 4);
    // Only a member importwatch does not track differs: still not a write.
    auto const d = poll(before, reply(200, import_body("ready", {{"a.csv", "pending"}}, "?changed")), t0);
    BOOST_TEST(d.events.empty());
    BOOST_TEST(!d.persist);
    BOOST_TEST(!d.import.has_value());   // the stored one stays
    BOOST_TEST(d.state.sequence == 4u);
    BOOST_TEST(to_string(d.result) == "ok");
    BOOST_TEST_REQUIRE(d.next_poll.has_value());
    BOOST_TEST((*d.next_poll == t0 + healthy_delay(30s)));
}

BOOST_AUTO_TEST_CASE(terminal_statuses_stop_polling) {
    for (char const* status : {"complete", "stopped"}) {
        BOOST_TEST_CONTEXT(status) {
            auto const d = poll(observed("in_progress", {}, t0 - 1h, 1), reply(200, import_body(status)), t0);
            BOOST_TEST(!d.next_poll.has_value());
            BOOST_TEST(data_of(d.events.at(0)).at("terminal") == json::value(true));
        }
    }
    auto const d = poll(observed("in_progress", {}, t0 - 1h, 1), reply(200, import_body("ready")), t0);
    BOOST_TEST(d.next_poll.has_value());
}

BOOST_AUTO_TEST_CASE(status_intervals_override_the_interval) {
    polling.status_intervals["pending_approval"] = 5min;
    auto const d = poll(observed("ready", {}, t0 - 1h, 1), reply(200, import_body("pending_approval")), t0);
    BOOST_TEST_REQUIRE(d.next_poll.has_value());
    BOOST_TEST((*d.next_poll == t0 + healthy_delay(5min)));
}

BOOST_AUTO_TEST_CASE(unknown_status_is_warned_once_and_keeps_polling) {
    watch_state const before;
    auto const d1 = poll(before, reply(200, import_body("archived")), t0);
    BOOST_TEST(text(d1.warning) == R"x("unknown import status "archived" (treated as non-terminal)")x");
    BOOST_TEST(d1.state.unknown_status_warned);
    BOOST_TEST(text(d1.state.status) == "\"archived\"");
    BOOST_TEST(d1.next_poll.has_value());
    BOOST_TEST(data_of(d1.events.at(0)).at("terminal") == json::value(false));

    auto const d2 = poll(d1.state, reply(200, import_body("archived")), t0 + 30s);
    BOOST_TEST(!d2.warning.has_value());
    auto const d3 = poll(d2.state, reply(200, import_body("superseded")), t0 + 60s);
    BOOST_TEST(!d3.warning.has_value());   // once per watch, not per value
    BOOST_TEST(types_of(d3) == std::vector<std::string>{"importwatch.import.status_changed"});
}

BOOST_AUTO_TEST_CASE(stall_is_reported_once_per_status_and_rearmed_by_a_change) {
    polling.stall_after = {{}, 6h};
    auto const since = t0;
    auto s = observed("pending_approval", {}, since, 1);

    struct step {
        char const* name;
        char const* status;
        sys_ms at;
        bool stalled;
        bool persist;
    };
    step const steps[] = {
        {"1 ms early", "pending_approval", since + 6h - 1ms, false, false},
        {"exactly stall_after", "pending_approval", since + 6h, true, true},
        {"still stalled: not again", "pending_approval", since + 7h, false, false},
        {"status change re-arms", "ready", since + 8h, false, true},
        {"new status not yet stalled", "ready", since + 14h - 1ms, false, false},
        {"new status stalls", "ready", since + 14h, true, true},
    };
    for (auto const& st : steps) {
        BOOST_TEST_CONTEXT(st.name) {
            auto const before = s;
            auto const d = poll(before, reply(200, import_body(st.status)), st.at);
            bool const stalled = !d.events.empty() && d.events.back().type == "importwatch.import.stalled";
            BOOST_TEST(stalled == st.stalled);
            BOOST_TEST(d.persist == st.persist);
            check_sequences(before, d);
            if (stalled) {
                auto const& e = d.events.back();
                BOOST_TEST(d.events.size() == 1u);
                BOOST_TEST((e.level == log_level::warn));
                BOOST_TEST(e.summary == "vip-nightly stalled in " + std::string(st.status) + " for 6h (" + path + ")");
                // stalled has only the keys every event has (docs/events.md).
                BOOST_TEST(!data_of(e).contains("stalled_for_seconds"));
                BOOST_TEST(data_of(e).size() == 10u);
                BOOST_TEST(data_of(e).at("status") == json::value(st.status));
                BOOST_TEST(d.state.stall_reported);
            }
            s = d.state;
        }
    }
    BOOST_TEST((s.status_since == since + 8h));
}

// pending_approval may last days, in_progress minutes: each status stalls
// at its own threshold, and a watch's own setting wins.
BOOST_AUTO_TEST_CASE(stall_thresholds_are_per_status_and_per_watch) {
    polling.stall_after = {{{"pending_approval", 72h}, {"in_progress", 30min}}, 6h};
    struct row {
        char const* name;
        stall_thresholds own;
        char const* status;
        milliseconds lasted;
        bool stalled;
    };
    row const rows[] = {
        {"in_progress past its 30m", {}, "in_progress", 30min, true},
        {"in_progress before its 30m", {}, "in_progress", 30min - 1ms, false},
        {"pending_approval at 30m is fine", {}, "pending_approval", 30min, false},
        {"pending_approval at 71h is fine", {}, "pending_approval", 71h, false},
        {"pending_approval past its 72h", {}, "pending_approval", 72h, true},
        {"ready at the default", {}, "ready", 6h, true},
        {"a watch's own in_progress threshold", {{{"in_progress", 2h}}, std::nullopt}, "in_progress", 1h, false},
        {"a watch's own threshold reached", {{{"in_progress", 2h}}, std::nullopt}, "in_progress", 2h, true},
        {"a watch that turned stalls off", {{}, 0ms}, "in_progress", std::chrono::days(30), false},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            watch.stall_after = r.own;
            auto const d = poll(observed(r.status, {}, t0, 1), reply(200, import_body(r.status)), t0 + r.lasted);
            bool const stalled = !d.events.empty() && d.events.back().type == "importwatch.import.stalled";
            BOOST_TEST(stalled == r.stalled);
        }
    }
}

BOOST_AUTO_TEST_CASE(stall_detection_off_when_zero) {
    polling.stall_after = {{}, 0ms};
    auto const d = poll(observed("ready", {}, t0 - std::chrono::days(30), 1), reply(200, import_body("ready")), t0);
    BOOST_TEST(d.events.empty());
    BOOST_TEST(!d.persist);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(poll_failures, fixture)

BOOST_AUTO_TEST_CASE(client_errors_fail_the_watch_with_their_reason) {
    struct row {
        int status;
        std::string body;
        char const* reason;
        char const* message;
        bool unauthorized;
    };
    row const rows[] = {
        {400, R"({"code":"invalid_request","message":"bad key"})", "invalid_request", "bad key", false},
        {401, R"({"code":"unauthorized","message":"Invalid access token"})", "unauthorized", "Invalid access token",
         true},
        {403, R"({"code":"forbidden","message":"Access to the requested resource was denied"})", "forbidden",
         "Access to the requested resource was denied", false},
        {404, R"({"code":"not_found","message":"Invalid resource identifier"})", "not_found",
         "Invalid resource identifier", false},
        {404, "<html>not found</html>", "not_found", "Not Found", false},
        {409, "", "client_error", "Conflict", false},
        {418, R"({"message":7})", "client_error", "client error", false},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT("HTTP " << r.status << " " << r.body) {
            auto const before = observed("in_progress", {}, t0 - 1h, 5);
            auto const d = poll(before, reply(r.status, r.body), t0);
            BOOST_TEST(to_string(d.result) == "client_error");
            BOOST_TEST(d.unauthorized == r.unauthorized);
            BOOST_TEST(text(d.error) ==
                       text("HTTP " + std::to_string(r.status) + " from LaunchDarkly: " + r.message));
            BOOST_TEST(types_of(d) == std::vector<std::string>{"importwatch.watch.failed"});
            check_sequences(before, d);
            auto const& e = d.events.at(0);
            BOOST_TEST((e.level == log_level::warn));
            BOOST_TEST(e.summary == "vip-nightly failed: " + std::string(r.reason) + " (HTTP " +
                                        std::to_string(r.status) + ": " + r.message + ") (" + path + ")");
            auto const data = data_of(e);
            BOOST_TEST(data.at("reason") == json::value(r.reason));
            BOOST_TEST(data.at("http_status") == json::value(r.status));
            BOOST_TEST(data.at("message") == json::value(r.message));
            // No new Import: the event carries the last status and Import.
            BOOST_TEST(data.at("status") == json::value("in_progress"));
            BOOST_TEST(data.at("import") == json::parse(stored_import));

            BOOST_TEST(d.persist);
            BOOST_TEST_REQUIRE(d.state.failure.has_value());
            BOOST_TEST((*d.state.failure == watch_failure{r.reason, r.status, r.message}));
            BOOST_TEST(text(d.state.status) == text(before.status));
            BOOST_TEST_REQUIRE(d.next_poll.has_value());
            BOOST_TEST((*d.next_poll == t0 + 5min));
        }
    }
}

BOOST_AUTO_TEST_CASE(retryable_failures_back_off_without_events) {
    struct row {
        char const* name;
        http_outcome outcome;
        char const* result;
        char const* error;
        int invalid_streak;
    };
    std::vector<row> const rows{
        {"500", reply(500, "oops"), "server_error", "HTTP 500 from LaunchDarkly", 0},
        {"503", reply(503), "server_error", "HTTP 503 from LaunchDarkly", 0},
        {"network", transport(failure_kind::network, "connect 10.0.0.1:443: Connection refused"), "network_error",
         "network: connect 10.0.0.1:443: Connection refused", 0},
        {"timeout", transport(failure_kind::timeout, "read: deadline passed"), "network_error",
         "timeout: read: deadline passed", 0},
        {"oversized headers", transport(failure_kind::invalid_response, "response headers over 64 KiB"),
         "invalid_response", "invalid response: response headers over 64 KiB", 1},
        {"200 missing status", reply(200, R"({"id":"imp-1","segmentKey":"s","creationTime":1,"mode":"merge"})"),
         "invalid_response", "invalid response: missing field status", 1},
        {"200 not JSON", reply(200, "<html>"), "invalid_response", nullptr, 1},
        {"204", reply(204), "invalid_response", "invalid response: HTTP 204 (expected 200)", 1},
        {"302 is not followed", reply(302), "invalid_response",
         "invalid response: HTTP 302 (redirects are not followed)", 1},
        {"304", reply(304), "invalid_response", "invalid response: HTTP 304 (redirects are not followed)", 1},
        {"101", reply(101), "invalid_response", "invalid response: HTTP 101 (expected 200)", 1},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            auto const before = observed("ready", {}, t0 - 1h, 3);
            scripted_random top({0.9999999});
            auto const d = decide(view(), before, r.outcome, t0, top);
            BOOST_TEST(to_string(d.result) == r.result);
            BOOST_TEST_REQUIRE(d.error.has_value());
            if (r.error != nullptr)
                BOOST_TEST(*d.error == r.error);
            else
                BOOST_TEST(d.error->rfind("invalid response: malformed JSON: ", 0) == 0u);
            BOOST_TEST(d.events.empty());
            BOOST_TEST(!d.persist);   // streaks are not persisted
            BOOST_TEST(!d.state.failure.has_value());
            BOOST_TEST(!d.unauthorized);
            BOOST_TEST(d.state.error_streak == 1);
            BOOST_TEST(d.state.invalid_streak == r.invalid_streak);
            // First step of full jitter: within [0, initial], here at its top.
            BOOST_TEST_REQUIRE(d.next_poll.has_value());
            BOOST_TEST((*d.next_poll == t0 + 1s));
        }
    }
}

BOOST_AUTO_TEST_CASE(rate_limited_backs_off_and_leaves_the_error_streaks_alone) {
    auto before = observed("ready", {}, t0 - 1h, 3);
    before.error_streak = 2;
    before.invalid_streak = 3;
    auto const d = poll(before, reply(429, R"({"code":"rate_limited","message":"slow down"})"), t0);
    BOOST_TEST(to_string(d.result) == "rate_limited");
    BOOST_TEST_REQUIRE(d.next_poll.has_value());
    // The first step of full jitter over backoff.initial (1 s), at u = 0.75.
    BOOST_TEST((*d.next_poll == t0 + 750ms));
    BOOST_TEST(d.state.rate_limited_streak == 1);
    BOOST_TEST(d.state.error_streak == 2);
    BOOST_TEST(d.state.invalid_streak == 3);
    BOOST_TEST(d.events.empty());
    BOOST_TEST(!d.persist);
    BOOST_TEST(!d.state.failure.has_value());
}

BOOST_AUTO_TEST_CASE(backoff_grows_to_max_and_resets_after_success) {
    polling.backoff = {1s, 10s, 2.0};
    // Upper and lower end of each step of random(0, min(max, initial * 2^n)).
    milliseconds const ceilings[] = {1s, 2s, 4s, 8s, 10s, 10s};
    for (double const u : {0.0, 0.9999999}) {
        BOOST_TEST_CONTEXT("u = " << u) {
            scripted_random r({u});
            auto s = observed("ready", {}, t0 - 1h, 3);
            for (int i = 0; i < 6; ++i) {
                BOOST_TEST_CONTEXT("503 #" << i + 1) {
                    auto const d = decide(view(), s, reply(503), t0, r);
                    BOOST_TEST(d.state.error_streak == i + 1);
                    BOOST_TEST_REQUIRE(d.next_poll.has_value());
                    BOOST_TEST((*d.next_poll == t0 + (u == 0.0 ? 0ms : ceilings[i])));
                    s = d.state;
                }
            }
            auto const ok = decide(view(), s, reply(200, import_body("ready")), t0, r);
            BOOST_TEST(ok.state.error_streak == 0);
            BOOST_TEST(!ok.persist);
            auto const again = decide(view(), ok.state, reply(503), t0, r);
            BOOST_TEST(again.state.error_streak == 1);
            BOOST_TEST((*again.next_poll == t0 + (u == 0.0 ? 0ms : 1s)));
        }
    }
}

BOOST_AUTO_TEST_CASE(five_invalid_responses_in_a_row_fail_the_watch) {
    struct row {
        char const* name;
        http_outcome outcome;
        std::optional<int> http_status;
        char const* message;
    };
    std::vector<row> const rows{
        {"bad body", reply(200, R"({"status":5})"), 200, "missing field id"},
        {"redirect", reply(301), 301, "HTTP 301 (redirects are not followed)"},
        {"transport", transport(failure_kind::invalid_response, "body over 1 MiB"), std::nullopt, "body over 1 MiB"},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            auto s = observed("in_progress", {}, t0 - 1h, 6);
            for (int i = 1; i <= 4; ++i) {
                BOOST_TEST_CONTEXT("invalid #" << i) {
                    auto const d = poll(s, r.outcome, t0);
                    BOOST_TEST(d.events.empty());
                    BOOST_TEST(!d.persist);
                    BOOST_TEST(!d.state.failure.has_value());
                    BOOST_TEST(d.state.invalid_streak == i);
                    s = d.state;
                }
            }
            auto const fifth = poll(s, r.outcome, t0);
            BOOST_TEST(to_string(fifth.result) == "invalid_response");
            BOOST_TEST(types_of(fifth) == std::vector<std::string>{"importwatch.watch.failed"});
            check_sequences(s, fifth);
            BOOST_TEST(fifth.persist);
            BOOST_TEST_REQUIRE(fifth.state.failure.has_value());
            BOOST_TEST((*fifth.state.failure == watch_failure{"invalid_response", r.http_status, r.message}));
            auto const data = data_of(fifth.events.at(0));
            BOOST_TEST(data.at("reason") == json::value("invalid_response"));
            BOOST_TEST(data.at("http_status") == (r.http_status ? json::value(*r.http_status) : json::value(nullptr)));
            BOOST_TEST(data.at("message") == json::value(r.message));
            BOOST_TEST((*fifth.next_poll == t0 + 5min));

            // Still invalid: stays failed, no second event, polled at backoff.max.
            auto const sixth = poll(fifth.state, r.outcome, t0 + 5min);
            BOOST_TEST(sixth.events.empty());
            BOOST_TEST(!sixth.persist);
            BOOST_TEST(sixth.state.failure.has_value());
            BOOST_TEST((*sixth.next_poll == t0 + 10min));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_success_resets_the_invalid_count) {
    auto s = observed("in_progress", {}, t0 - 1h, 6);
    s.invalid_streak = 4;
    s.error_streak = 4;
    auto const ok = poll(s, reply(200, import_body("in_progress")), t0);
    BOOST_TEST(ok.state.invalid_streak == 0);
    auto const bad = poll(ok.state, reply(302), t0);
    BOOST_TEST(bad.events.empty());
    BOOST_TEST(!bad.state.failure.has_value());
}

BOOST_AUTO_TEST_CASE(an_already_failed_watch_emits_no_second_failed) {
    auto before = observed("in_progress", {}, t0 - 1h, 6);
    before.failure = watch_failure{"not_found", 404, "Invalid resource identifier"};

    struct row {
        char const* name;
        http_outcome outcome;
        std::optional<watch_failure> failure;
        bool persist;
        bool unauthorized;
    };
    std::vector<row> const rows{
        {"same 404", reply(404, R"({"code":"not_found","message":"Invalid resource identifier"})"),
         before.failure, false, false},
        {"403 changes the reason silently", reply(403, R"({"message":"denied"})"),
         watch_failure{"forbidden", 403, "denied"}, true, false},
        {"401", reply(401, R"({"message":"Invalid access token"})"),
         watch_failure{"unauthorized", 401, "Invalid access token"}, true, true},
        {"503 keeps the failure", reply(503), before.failure, false, false},
        {"network keeps the failure", transport(failure_kind::network, "reset"), before.failure, false, false},
        {"invalid keeps the failure", reply(200, "{"), before.failure, false, false},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            auto const d = poll(before, r.outcome, t0);
            BOOST_TEST(d.events.empty());
            BOOST_TEST(d.persist == r.persist);
            BOOST_TEST(d.unauthorized == r.unauthorized);
            BOOST_TEST((d.state.failure == r.failure));
            BOOST_TEST_REQUIRE(d.next_poll.has_value());
            BOOST_TEST((*d.next_poll == t0 + 5min));   // failed watches poll at backoff.max
        }
    }
}

BOOST_AUTO_TEST_CASE(recovered_comes_first_with_consecutive_sequences) {
    auto before = observed("in_progress", {{"a.csv", "pending"}}, t0 - 1h, 4);
    before.failure = watch_failure{"unauthorized", 401, "Invalid access token"};
    before.error_streak = 3;
    walking_rng rng;
    auto const body = import_body("complete", {{"a.csv", "complete"}});
    auto const d = decide(view(), before, reply(200, body), t0, rng);

    BOOST_TEST(types_of(d) == (std::vector<std::string>{"importwatch.watch.recovered",
                                                         "importwatch.import.status_changed",
                                                         "importwatch.import.file_status_changed"}));
    check_sequences(before, d);
    std::set<std::string> ids;
    for (auto const& e : d.events) ids.insert(e.id);
    BOOST_TEST(ids.size() == d.events.size());

    auto const& rec = d.events.at(0);
    BOOST_TEST(rec.summary == "vip-nightly recovered (default/production/vip-users/imp-1)");
    BOOST_TEST((rec.level == log_level::info));
    auto const data = data_of(rec);
    std::set<std::string> keys;
    for (auto const& m : data) keys.insert(m.key());
    BOOST_TEST(keys == (std::set<std::string>{"watch", "labels", "project", "environment", "segment", "import_id",
                                              "sequence", "status", "terminal", "import"}));
    BOOST_TEST(data.at("import") == json::parse(body));

    BOOST_TEST(!d.state.failure.has_value());
    BOOST_TEST(d.state.error_streak == 0);
    BOOST_TEST(d.persist);
    BOOST_TEST(to_string(d.result) == "ok");
}

BOOST_AUTO_TEST_CASE(recovery_alone_is_persisted) {
    auto before = observed("ready", {}, t0 - 1h, 4);
    before.failure = watch_failure{"invalid_response", std::nullopt, "x"};
    auto const d = poll(before, reply(200, import_body("ready")), t0);
    BOOST_TEST(types_of(d) == std::vector<std::string>{"importwatch.watch.recovered"});
    BOOST_TEST(d.persist);
    BOOST_TEST(d.state.sequence == 5u);
    BOOST_TEST_REQUIRE(d.next_poll.has_value());
    BOOST_TEST((*d.next_poll == t0 + healthy_delay(30s)));
}

BOOST_AUTO_TEST_CASE(failing_before_the_first_observation_has_null_status_and_import) {
    auto const d = poll(watch_state{}, reply(404, R"({"message":"Invalid resource identifier"})"), t0);
    auto const data = data_of(d.events.at(0));
    BOOST_TEST(data.at("status").is_null());
    BOOST_TEST(data.at("import").is_null());
    BOOST_TEST(data.at("terminal") == json::value(false));
    BOOST_TEST(d.events.at(0).sequence == 1u);
}

BOOST_AUTO_TEST_CASE(long_error_messages_are_cut) {
    std::string const long_message(5000, 'x');
    auto const d = poll(watch_state{}, reply(400, json::serialize(json::object{{"message", long_message}})), t0);
    BOOST_TEST_REQUIRE(d.state.failure.has_value());
    BOOST_TEST(d.state.failure->message.size() < 300u);
    BOOST_TEST(d.state.failure->message.rfind(std::string(200, 'x'), 0) == 0u);
}

BOOST_AUTO_TEST_CASE(server_chosen_text_cannot_break_a_log_line) {
    auto const before = observed("in_progress", {}, t0 - 1h, 1);
    auto const files = poll(before, reply(200, import_body("in_progress\nforged", {{"a.csv\r\n0000 error x", "ok"}})), t0);
    BOOST_TEST_REQUIRE(files.events.size() == 2u);
    for (auto const& e : files.events) BOOST_TEST(e.summary.find_first_of("\r\n") == std::string::npos, e.summary);
    BOOST_TEST(files.events[1].summary ==
               "vip-nightly file a.csv\\r\\n0000 error x none -> ok (" + std::string(path) + ")");
    // The event itself keeps the exact value.
    BOOST_TEST(data_of(files.events[1]).at("filename") == json::value("a.csv\r\n0000 error x"));
    BOOST_TEST_REQUIRE(files.warning.has_value());
    BOOST_TEST(files.warning->find('\n') == std::string::npos);

    auto const failed = poll(before, reply(404, R"({"message":"line one\nline two"})"), t0);
    BOOST_TEST(text(failed.error) == text("HTTP 404 from LaunchDarkly: line one\\nline two"));
    BOOST_TEST(failed.events.at(0).summary.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(fail_watch_marks_other_watches_failed) {
    watch_failure const unauthorized{"unauthorized", 401, "Invalid access token"};

    auto const healthy = observed("pending_approval", {}, t0 - 1h, 2);
    auto const d = through_store(fail_watch(view(), healthy, unauthorized, t0, rng));
    BOOST_TEST(data_of(d.events.at(0)).at("import") == json::parse(stored_import));
    BOOST_TEST(to_string(d.result) == "client_error");
    BOOST_TEST(!d.unauthorized);
    BOOST_TEST(types_of(d) == std::vector<std::string>{"importwatch.watch.failed"});
    check_sequences(healthy, d);
    BOOST_TEST(d.events.at(0).summary ==
               "vip-nightly failed: unauthorized (HTTP 401: Invalid access token) (default/production/vip-users/imp-1)");
    BOOST_TEST(d.persist);
    BOOST_TEST((d.state.failure == std::optional<watch_failure>(unauthorized)));
    BOOST_TEST_REQUIRE(d.next_poll.has_value());
    BOOST_TEST((*d.next_poll == t0 + 5min));

    auto failed = healthy;
    failed.failure = watch_failure{"not_found", 404, "gone"};
    auto const again = fail_watch(view(), failed, unauthorized, t0, rng);
    BOOST_TEST(again.events.empty());
    BOOST_TEST(again.persist);   // the reason changed (silently)
    BOOST_TEST((again.state.failure == std::optional<watch_failure>(unauthorized)));

    auto const done = fail_watch(view(), observed("complete", {}, t0 - 1h, 2), unauthorized, t0, rng);
    BOOST_TEST(done.events.empty());
    BOOST_TEST(!done.persist);
    BOOST_TEST(!done.next_poll.has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(scheduling)

BOOST_AUTO_TEST_CASE(next_poll_time_spreads_by_jitter) {
    struct row {
        char const* name;
        double jitter;
        double u;
        std::optional<std::string> status;
        milliseconds expected;
    };
    row const rows[] = {
        {"low end", 0.1, 0.0, "ready", 27s},
        {"middle", 0.1, 0.5, "ready", 30s},
        {"high end", 0.1, 0.9999999999, "ready", 33s},
        {"no jitter", 0.0, 0.9, "ready", 30s},
        {"full jitter", 1.0, 0.0, "ready", 0s},
        {"status override", 0.1, 0.5, "pending_approval", 5min},
        {"no status yet", 0.1, 0.5, std::nullopt, 30s},
    };
    polling_config polling;
    polling.status_intervals["pending_approval"] = 5min;
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            polling.jitter = r.jitter;
            scripted_random rng({r.u});
            BOOST_TEST((next_poll_time(polling, r.status, t0, rng) == t0 + r.expected));
        }
    }
}

BOOST_AUTO_TEST_CASE(poll_result_names_are_the_metric_labels) {
    struct row {
        poll_result r;
        char const* name;
    };
    row const rows[] = {
        {poll_result::ok, "ok"},
        {poll_result::rate_limited, "rate_limited"},
        {poll_result::client_error, "client_error"},
        {poll_result::server_error, "server_error"},
        {poll_result::network_error, "network_error"},
        {poll_result::invalid_response, "invalid_response"},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) { BOOST_TEST(std::string(to_string(r.r)) == r.name); }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(hostile_servers, fixture)

// A server inventing statuses: at most max_status_bytes, else the reply is
// invalid, and the text is never echoed into the error, the state or an event.
BOOST_AUTO_TEST_CASE(a_status_longer_than_the_limit_is_an_invalid_response) {
    auto const before = observed("in_progress", {}, t0 - 1h, 1);
    std::string const at_limit(max_status_bytes, 's');
    auto const ok = poll(before, reply(200, import_body(at_limit)), t0);
    BOOST_TEST(to_string(ok.result) == "ok");
    BOOST_TEST(text(ok.state.status) == text(at_limit));
    BOOST_TEST(!ok.limits.any());

    std::string const huge = "status-1-" + std::string(200 * 1024, 'x');
    for (auto const& [name, body] :
         {std::pair{"import status", import_body(huge)},
          std::pair{"file status", import_body("in_progress", {{"a.csv", std::string(max_status_bytes + 1, 'f')}})}}) {
        BOOST_TEST_CONTEXT(name) {
            auto const d = poll(before, reply(200, body), t0);
            BOOST_TEST(to_string(d.result) == "invalid_response");
            BOOST_TEST(d.limits.status_too_long);
            BOOST_TEST(d.events.empty());
            BOOST_TEST(text(d.state.status) == text("in_progress"));
            BOOST_TEST_REQUIRE(d.error.has_value());
            BOOST_TEST(d.error->find("xxxxxxxx") == std::string::npos);
            BOOST_TEST(d.error->find("fffffff") == std::string::npos);
            BOOST_TEST(d.error->size() < 200u, *d.error);
        }
    }
}

// 2,000 files flipping on every poll: 100 file events, then one summary, each
// carrying a bounded Import; the same poll before the fix made 2,000 events of
// ~100 KB each.
BOOST_AUTO_TEST_CASE(file_events_per_poll_are_capped_with_a_summary) {
    file_list before_files, after_files;
    for (int i = 0; i < 2000; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "part-%05d.csv", i);
        before_files.emplace_back(name, "pending");
        after_files.emplace_back(name, "complete");
    }
    auto const before = observed("in_progress", before_files, t0 - 1h, 7);
    auto const body = import_body("in_progress", after_files);
    BOOST_TEST_REQUIRE(body.size() > 2 * max_event_import_bytes);
    auto const d = poll(before, reply(200, body), t0);

    BOOST_TEST_REQUIRE(d.events.size() == max_file_events_per_poll + 1);
    check_sequences(before, d);
    BOOST_TEST(d.limits.file_events_omitted == 2000 - max_file_events_per_poll);
    BOOST_TEST(d.limits.import_bytes == body.size());
    std::size_t total = 0;
    for (std::size_t i = 0; i < d.events.size(); ++i) {
        auto const& e = d.events[i];
        total += e.body.size();
        BOOST_TEST(e.type == "importwatch.import.file_status_changed");
        BOOST_TEST(e.body.size() < max_event_import_bytes + 2048, i);
        auto const data = data_of(e);
        auto const& import = data.at("import").as_object();
        BOOST_TEST(import.at("_importwatch").at("original_bytes") == json::value(body.size()));
        BOOST_TEST(import.at("status") == json::value("in_progress"));
        BOOST_TEST(!import.at("files").as_array().empty());
        if (i < max_file_events_per_poll) {
            char name[32];
            std::snprintf(name, sizeof name, "part-%05zu.csv", i);
            BOOST_TEST(data.at("filename") == json::value(name));
            BOOST_TEST(data.at("file_status") == json::value("complete"));
        }
    }
    auto const summary = data_of(d.events.back());
    BOOST_TEST(summary.at("filename").is_null());
    BOOST_TEST(summary.at("previous_file_status").is_null());
    BOOST_TEST(summary.at("file_status").is_null());
    BOOST_TEST(summary.at("files_omitted") == json::value(2000 - max_file_events_per_poll));
    BOOST_TEST(d.events.back().summary ==
               "vip-nightly files: 1900 more changed in this poll (events for the first 100 only) (" +
                   std::string(path) + ")");
    BOOST_TEST_MESSAGE("one poll of 2,000 flipping files: " << d.events.size() << " events, " << total << " bytes");
    BOOST_TEST(total < 2u * 1024 * 1024);
    // The state keeps the whole Import and every file.
    BOOST_TEST(d.state.files.size() == 2000u);
    BOOST_TEST_REQUIRE(d.import.has_value());
    BOOST_TEST(d.import->size() == body.size());
    BOOST_TEST(d.persist);

    // The next poll, unchanged: nothing emitted, nothing limited.
    auto const again = poll(d.state, reply(200, body), t0 + 1s);
    BOOST_TEST(again.events.empty());
    BOOST_TEST(!again.limits.any());
    BOOST_TEST(!again.persist);
}

// File names are server text: cut in events and log lines, escaped in summaries.
BOOST_AUTO_TEST_CASE(long_file_names_are_cut_in_events_and_summaries) {
    auto const before = observed("in_progress", {}, t0 - 1h, 1);
    std::string const name = "\xE2\x80\xAE" + std::string(5000, 'n');
    auto const d = poll(before, reply(200, import_body("in_progress", {{name, "ok"}})), t0);
    BOOST_TEST_REQUIRE(d.events.size() == 1u);
    auto const filename = std::string(data_of(d.events[0]).at("filename").as_string());
    BOOST_TEST(filename.size() <= max_peer_text + 3);
    BOOST_TEST(filename.starts_with("\xE2\x80\xAEnnn"));
    BOOST_TEST(d.events[0].summary.size() < 400u);
    BOOST_TEST(d.events[0].summary.starts_with("vip-nightly file \\u202ennn"), d.events[0].summary);
    // The body of the event spells the override as an escape: valid JSON, same value.
    BOOST_TEST(d.events[0].body.find("\xE2\x80\xAE") == std::string::npos);
    BOOST_TEST(d.events[0].body.find("\\u202e") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// One route keeps answering 429 with headers that say nothing usable while the
// other watches get 200s. Every 200 restarts the process-wide gate's streak, so
// its pause never grows; the watch's own 429 streak must, up to backoff.max.
BOOST_FIXTURE_TEST_CASE(a_route_that_keeps_answering_429_backs_off_while_others_succeed, fixture) {
    polling.backoff = {1s, 30s, 2.0};
    struct variant {
        char const* name;
        std::optional<std::string> reset, retry_after;
    };
    variant const variants[] = {
        {"X-Ratelimit-Reset: abc", "abc", std::nullopt},
        {"X-Ratelimit-Reset: -5", "-5", std::nullopt},
        {"Retry-After: -3", std::nullopt, "-3"},
        {"all three at once", "-5", "-3"},
    };
    milliseconds const ceilings[] = {1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s};
    for (auto const& v : variants) {
        BOOST_TEST_CONTEXT(v.name) {
            scripted_random r({top_draw});
            rate_limit_gate gate(0, polling.backoff);
            http_reply limited;
            limited.status = 429;
            if (v.reset) limited.headers.push_back({"X-Ratelimit-Reset", *v.reset});
            if (v.retry_after) limited.headers.push_back({"Retry-After", *v.retry_after});
            http_reply ok;
            ok.status = 200;
            ok.body = import_body("ready");

            auto s = observed("ready", {}, t0 - 1h, 3);
            sys_ms now = t0;
            for (int i = 0; i < 8; ++i) {
                BOOST_TEST_CONTEXT("429 #" << i + 1) {
                    gate.observe(ok, now, r);   // another watch's 200
                    gate.observe(limited, now, r);
                    auto const d = decide(view(), s, http_outcome(limited), now, r);
                    BOOST_TEST(to_string(d.result) == "rate_limited");
                    BOOST_TEST(d.state.rate_limited_streak == i + 1);
                    BOOST_TEST(gate.consecutive_429() == 1);
                    // The gate alone would let this watch go again within backoff.initial.
                    BOOST_TEST((gate.paused_until() <= now + 1s));
                    BOOST_TEST_REQUIRE(d.next_poll.has_value());
                    BOOST_TEST((*d.next_poll == now + ceilings[i]));
                    BOOST_TEST(!d.persist);
                    s = d.state;
                    now = *d.next_poll;
                }
            }
            // The route answers 200: its streak ends, the next 429 starts over.
            auto const recovered = decide(view(), s, http_outcome(ok), now, r);
            BOOST_TEST(recovered.state.rate_limited_streak == 0);
            auto const again = decide(view(), recovered.state, http_outcome(limited), now, r);
            BOOST_TEST(again.state.rate_limited_streak == 1);
            BOOST_TEST_REQUIRE(again.next_poll.has_value());
            BOOST_TEST((*again.next_poll == now + 1s));
            // Any other answer from the route (a 503 here) ends the streak too.
            auto const other = decide(view(), again.state, reply(503), now, r);
            BOOST_TEST(other.state.rate_limited_streak == 0);
        }
    }
}

// The Import is serialized once per decision: the state stores those bytes
// and every event splices them (not a copy re-serialized per event), and a
// failure carries the stored bytes without parsing them again.
BOOST_FIXTURE_TEST_SUITE(one_import_serialization, fixture)

std::string import_member(std::string const& import) { return ",\"import\":" + import + "}}"; }

BOOST_AUTO_TEST_CASE(every_event_of_a_poll_carries_the_stored_import_bytes) {
    auto const before = observed("in_progress", {{"a.csv", "pending"}}, t0 - 1h, 1);
    auto const d = poll(before, reply(200, import_body("complete", {{"a.csv", "complete"}, {"b.csv", "pending"}})), t0);
    BOOST_TEST_REQUIRE(d.events.size() == 3u);   // status, a.csv, b.csv
    BOOST_TEST_REQUIRE(d.import.has_value());
    for (auto const& e : d.events) BOOST_TEST(e.body.ends_with(import_member(*d.import)), e.body);
}

BOOST_AUTO_TEST_CASE(a_failure_carries_the_stored_import_as_stored) {
    auto before = observed("in_progress", {}, t0 - 1h, 1);
    // Stored bytes as another serializer may have written them: kept verbatim.
    stored_import = R"({"status": "in_progress", "creationTime": 1.0E0, "note": "\u00e9\u202e"})";
    auto const d = poll(before, reply(404, ""), t0);
    BOOST_TEST_REQUIRE(d.events.size() == 1u);
    BOOST_TEST(d.events[0].body.ends_with(import_member(stored_import)), d.events[0].body);
    BOOST_TEST(d.limits.import_bytes == 0u);
    BOOST_TEST(!d.import.has_value());   // the store keeps what it has

    before.has_import = false;   // none received yet: nothing to read from the store
    auto const none = decide(view(), before, reply(404, ""), t0, rng);
    BOOST_TEST(!none.carries_stored_import.has_value());
    BOOST_TEST_REQUIRE(none.events.size() == 1u);
    BOOST_TEST(none.events[0].body.ends_with(import_member("null")), none.events[0].body);

    // One is stored, but the store has none to give (a damaged row): null.
    before.has_import = true;
    stored_import.clear();
    auto const lost = poll(before, reply(404, ""), t0);
    BOOST_TEST_REQUIRE(lost.events.size() == 1u);
    BOOST_TEST(lost.events[0].body.ends_with(import_member("null")), lost.events[0].body);
}

// What the store gives is escaped like the rest of the body, and the event is
// byte for byte the one make_event makes with that Import.
BOOST_AUTO_TEST_CASE(the_stored_import_is_spliced_as_make_event_would) {
    auto before = observed("in_progress", {}, t0 - 1h, 1);
    stored_import = "{\"status\":\"in_progress\",\"note\":\"a\xE2\x80\xAE\x7f\xC2\x9B\"}";
    auto const d = decide(view(), before, reply(404, ""), t0, rng);
    BOOST_TEST_REQUIRE((d.carries_stored_import == std::optional<std::size_t>(0)));
    BOOST_TEST(d.events[0].body.ends_with(import_member("null")), d.events[0].body);   // until it is put in
    auto carried = d;
    carry_stored_import(carried, stored_import);
    BOOST_TEST(!carried.carries_stored_import.has_value());
    auto const& e = carried.events[0];

    std::optional<std::string> const status = before.status;
    scripted_random same{{0.75}};
    auto const made = make_event({watch, base_url, status, stored_import}, e.type, e.sequence,
                           json::object{{"reason", "not_found"}, {"http_status", 404}, {"message", "Not Found"}},
                           e.summary, e.level, e.time, same);
    auto const without_id = [](std::string body, std::string const& id) {
        return body.replace(body.find(id), id.size(), "ID");
    };
    BOOST_TEST(without_id(e.body, e.id) == without_id(made.body, made.id));
    BOOST_TEST(e.body.find("\xE2\x80\xAE") == std::string::npos);
    BOOST_TEST(json::parse(e.body).at("data").at("import") == json::parse(stored_import));
}

BOOST_AUTO_TEST_CASE(a_failure_shortens_a_large_stored_import_once) {
    file_list files;
    for (int i = 0; i < 2000; ++i) files.emplace_back("part-" + std::to_string(i) + ".csv", "pending");
    auto const before = observed("in_progress", files, t0 - 1h, 1);
    auto const whole = stored_import;
    BOOST_TEST_REQUIRE(whole.size() > max_event_import_bytes);
    auto const d = poll(before, reply(404, ""), t0);
    BOOST_TEST_REQUIRE(d.events.size() == 1u);
    auto const import = data_of(d.events[0]).at("import");
    BOOST_TEST(json::serialize(import).size() <= max_event_import_bytes);
    BOOST_TEST(import.at("_importwatch").at("original_bytes") == json::value(whole.size()));
    BOOST_TEST(d.limits.import_bytes == whole.size());
    BOOST_TEST(!d.import.has_value());   // the store keeps it whole
    BOOST_TEST(stored_import == whole);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- a byte-identical body is not decoded again ---------------------------------

BOOST_FIXTURE_TEST_SUITE(repeated_bodies, fixture)

// The same decision with and without the remembered body: a state that
// never saw a body (body_size 0) decodes it.
BOOST_AUTO_TEST_CASE(a_repeated_body_decides_as_a_decoded_one) {
    auto const body = import_body("in_progress", {{"a.csv", "pending"}});
    auto const first = poll(observed("in_progress", {{"a.csv", "pending"}}, t0 - 1h, 4), reply(200, body), t0);
    BOOST_TEST(first.state.body_size == body.size());

    auto remembered = first.state;
    remembered.error_streak = 2;
    remembered.invalid_streak = 1;
    remembered.rate_limited_streak = 3;
    auto forgotten = remembered;
    forgotten.body_size = 0;
    auto const skipped = poll(remembered, reply(200, body), t0 + 30s);
    auto const decoded = poll(forgotten, reply(200, body), t0 + 30s);
    BOOST_TEST(to_string(skipped.result) == to_string(decoded.result));
    BOOST_TEST(skipped.events.empty());
    BOOST_TEST(decoded.events.empty());
    BOOST_TEST(!skipped.persist);
    BOOST_TEST((skipped.next_poll == decoded.next_poll));
    BOOST_TEST(skipped.state.error_streak == 0);
    BOOST_TEST(skipped.state.invalid_streak == 0);
    BOOST_TEST(skipped.state.rate_limited_streak == 0);
    BOOST_TEST((skipped.import == decoded.import));
    BOOST_TEST(skipped.state.has_import == decoded.state.has_import);
    BOOST_TEST((skipped.state.files == decoded.state.files));
    BOOST_TEST((skipped.state.body_hash == decoded.state.body_hash));
}

// One byte of difference (same size) is a different body: decoded, and its
// change reported.
BOOST_AUTO_TEST_CASE(a_body_one_byte_different_is_decoded) {
    auto const body = import_body("in_progress", {{"a.csv", "pending"}});
    auto const changed = import_body("in_progress", {{"a.csv", "pendinG"}});
    BOOST_TEST_REQUIRE(body.size() == changed.size());
    auto const first = poll(observed("in_progress", {{"a.csv", "pending"}}, t0 - 1h, 4), reply(200, body), t0);
    auto const second = poll(first.state, reply(200, body), t0 + 30s);
    auto const third = poll(second.state, reply(200, changed), t0 + 60s);
    BOOST_TEST(types_of(third) == std::vector<std::string>{"importwatch.import.file_status_changed"});
    BOOST_TEST((third.state.files == std::vector<import_file>{{"a.csv", "pendinG"}}));
    BOOST_TEST(third.persist);
}

// A failed watch recovers on the body it last decoded before failing.
BOOST_AUTO_TEST_CASE(a_repeated_body_still_recovers_a_failed_watch) {
    auto const body = import_body("ready");
    auto const first = poll(observed("ready", {}, t0 - 1h, 4), reply(200, body), t0);
    auto const failed =
        fail_watch(view(), first.state, watch_failure{"unauthorized", 401, "Invalid access token"}, t0, rng);
    BOOST_TEST_REQUIRE(failed.state.failure.has_value());
    auto const d = poll(failed.state, reply(200, body), t0 + 5min);
    BOOST_TEST(types_of(d) == std::vector<std::string>{"importwatch.watch.recovered"});
    BOOST_TEST(!d.state.failure.has_value());
    BOOST_TEST(d.persist);
}

// The stored Import is only rewritten when something importwatch tracks
// changes; a stall on a repeated body still carries the body's own Import.
BOOST_AUTO_TEST_CASE(a_stall_on_a_repeated_body_carries_that_body) {
    polling.stall_after = {{}, 6h};
    auto const stored = poll(observed("pending_approval", {}, t0, 1), reply(200, import_body("pending_approval")), t0);
    auto const body = import_body("pending_approval", {}, "?changed");
    auto const seen = poll(stored.state, reply(200, body), t0 + 1h);
    BOOST_TEST(!seen.persist);   // only _links differ: not stored
    auto const again = poll(seen.state, reply(200, body), t0 + 2h);
    BOOST_TEST(again.events.empty());
    auto const d = poll(again.state, reply(200, body), t0 + 6h);
    BOOST_TEST_REQUIRE(types_of(d) == std::vector<std::string>{"importwatch.import.stalled"});
    BOOST_TEST(data_of(d.events.at(0)).at("import") == json::parse(body));
}

BOOST_AUTO_TEST_SUITE_END()
