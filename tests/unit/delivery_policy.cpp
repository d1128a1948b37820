#define BOOST_TEST_MODULE delivery_policy
#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/delivery_policy.hpp"
#include "core/untrusted_text.hpp"
#include "common/scripted_random.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;
using importwatch::testing::scripted_random;
using importwatch::testing::top_draw;

namespace {

// 2026-11-28T19:37:20.000Z
sys_ms const t0{milliseconds{1795894640000}};
constexpr milliseconds day = 24h;

http_outcome status(int code, std::optional<std::string> retry_after = std::nullopt, std::string body = {}) {
    http_reply r;
    r.status = code;
    if (retry_after) r.headers.push_back({"Retry-After", std::move(*retry_after)});
    r.body = std::move(body);
    return r;
}

http_outcome failure(failure_kind kind, std::string message) {
    return unexpected{request_failure{kind, std::move(message)}};
}

char const* kind_name(delivery_verdict::kind_t k) {
    switch (k) {
    case delivery_verdict::delivered: return "delivered";
    case delivery_verdict::retry: return "retry";
    case delivery_verdict::dead: return "dead";
    }
    return "?";
}

long long ms_between(sys_ms from, sys_ms to) { return (to - from).count(); }

} // namespace

BOOST_AUTO_TEST_SUITE(schedule)

BOOST_AUTO_TEST_CASE(follows_the_spec_table_then_hourly) {
    struct case_t {
        int attempts;
        milliseconds expected;
    };
    case_t const cases[] = {
        {1, 5s}, {2, 30s}, {3, 2min}, {4, 10min}, {5, 30min}, {6, 1h}, {7, 1h}, {8, 1h}, {1000, 1h},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT("after attempt " << c.attempts) {
            BOOST_TEST(retry_schedule(c.attempts).count() == c.expected.count());
        }
    }
}

BOOST_AUTO_TEST_CASE(each_delay_is_jittered_within_ten_percent) {
    struct case_t {
        char const* name;
        double draw;
        int percent;  // of the nominal delay
    };
    case_t const draws[] = {{"lowest", 0.0, 90}, {"highest", top_draw, 110}};
    for (int attempts = 1; attempts <= 8; ++attempts) {
        for (auto const& d : draws) {
            BOOST_TEST_CONTEXT("attempt " << attempts << ", " << d.name) {
                scripted_random rng({d.draw});
                auto const v = judge_delivery(status(503), attempts, t0, day, t0, rng);
                BOOST_TEST_REQUIRE(v.kind == delivery_verdict::retry);
                BOOST_TEST(ms_between(t0, v.next_attempt) == retry_schedule(attempts).count() * d.percent / 100);
            }
        }
    }
    // The middle draw lands on the nominal delay.
    scripted_random rng({0.5});
    auto const v = judge_delivery(status(503), 2, t0, day, t0, rng);
    BOOST_TEST(ms_between(t0, v.next_attempt) == 30000);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(judge)

BOOST_AUTO_TEST_CASE(classifies_outcomes) {
    struct case_t {
        char const* name;
        http_outcome outcome;
        delivery_verdict::kind_t kind;
        char const* error;
    };
    case_t const cases[] = {
        {"200", status(200), delivery_verdict::delivered, ""},
        {"201", status(201), delivery_verdict::delivered, ""},
        {"204", status(204), delivery_verdict::delivered, ""},
        {"299", status(299), delivery_verdict::delivered, ""},
        {"410 is dead at once", status(410), delivery_verdict::dead, "HTTP 410 Gone"},
        {"100 is not success", status(100), delivery_verdict::retry, "HTTP 100"},
        {"301 not followed", status(301), delivery_verdict::retry, "HTTP 301 (redirects are not followed)"},
        {"302 not followed", status(302), delivery_verdict::retry, "HTTP 302 (redirects are not followed)"},
        {"400", status(400), delivery_verdict::retry, "HTTP 400"},
        {"404", status(404), delivery_verdict::retry, "HTTP 404"},
        {"429", status(429), delivery_verdict::retry, "HTTP 429"},
        {"500", status(500), delivery_verdict::retry, "HTTP 500"},
        {"503 body is not echoed", status(503, std::nullopt, "upstream exploded"), delivery_verdict::retry,
         "HTTP 503"},
        {"timeout", failure(failure_kind::timeout, "no response within 15s"), delivery_verdict::retry,
         "timeout: no response within 15s"},
        {"connection refused", failure(failure_kind::network, "connect: Connection refused"),
         delivery_verdict::retry, "network: connect: Connection refused"},
        {"tls", failure(failure_kind::network, "tls handshake: certificate verify failed"),
         delivery_verdict::retry, "network: tls handshake: certificate verify failed"},
        {"invalid response", failure(failure_kind::invalid_response, "headers over 64 KiB"),
         delivery_verdict::retry, "invalid response: headers over 64 KiB"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scripted_random rng({0.5});
            auto const v = judge_delivery(c.outcome, 1, t0, day, t0, rng);
            BOOST_TEST(kind_name(v.kind) == kind_name(c.kind));
            BOOST_TEST(v.error == c.error);
            if (v.kind == delivery_verdict::retry) BOOST_TEST(ms_between(t0, v.next_attempt) == 5000);
        }
    }
}

BOOST_AUTO_TEST_CASE(long_failure_messages_are_cut_to_max_peer_text) {
    scripted_random rng({0.5});
    auto const v = judge_delivery(failure(failure_kind::network, std::string(5000, 'x')), 1, t0, day, t0, rng);
    BOOST_TEST(v.kind == delivery_verdict::retry);
    // The whole text, kind included, is what is cut.
    BOOST_TEST(v.error == "network: " + std::string(max_peer_text - 9, 'x') + "\u2026");
}

BOOST_AUTO_TEST_CASE(a_longer_retry_after_wins_a_shorter_one_does_not) {
    struct case_t {
        char const* name;
        int attempts;
        std::optional<std::string> retry_after;
        milliseconds expected_delay;  // draw 0.5: the nominal delay
    };
    case_t const cases[] = {
        {"none", 1, std::nullopt, 5s},
        {"longer seconds win", 1, "60", 60s},
        {"shorter seconds lose", 1, "2", 5s},
        {"shorter than the jittered hour loses", 7, "3300", 1h},
        {"longer than the hour wins", 7, "5400", 90min},
        {"longer http-date wins", 2, format_http_date(t0 + 120s), 120s},
        {"past http-date loses", 2, format_http_date(t0 - 120s), 30s},
        {"garbage is ignored", 2, "whenever", 30s},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scripted_random rng({0.5});
            auto const v = judge_delivery(status(503, c.retry_after), c.attempts, t0, day, t0, rng);
            BOOST_TEST_REQUIRE(v.kind == delivery_verdict::retry);
            BOOST_TEST(ms_between(t0, v.next_attempt) == c.expected_delay.count());
        }
    }
}

BOOST_AUTO_TEST_CASE(dead_when_the_next_attempt_would_pass_max_age) {
    // Draw 0: after attempt 1 next = now + 4500 ms; after 7+, now + 54 min.
    struct case_t {
        char const* name;
        http_outcome outcome;
        int attempts;
        sys_ms committed;
        milliseconds max_age;
        delivery_verdict::kind_t kind;
        char const* error;
    };
    case_t const cases[] = {
        {"next lands exactly on the deadline", status(503), 1, t0 + 4500ms - day, day, delivery_verdict::retry,
         "HTTP 503"},
        {"1 ms past the deadline", status(503), 1, t0 + 4499ms - day, day, delivery_verdict::dead,
         "gave up after 1 attempt over max_age 24h: HTTP 503"},
        {"many attempts", failure(failure_kind::timeout, "read"), 12, t0 - 23h - 10min, day,
         delivery_verdict::dead, "gave up after 12 attempts over max_age 24h: timeout: read"},
        {"Retry-After beyond max_age", status(429, "7200"), 3, t0 - 23h, day, delivery_verdict::dead,
         "gave up after 3 attempts over max_age 24h: HTTP 429"},
        {"short max_age", status(302), 1, t0, 1h + 30min, delivery_verdict::retry,
         "HTTP 302 (redirects are not followed)"},
        {"short max_age exceeded", status(302), 7, t0 - 1h, 1h + 30min, delivery_verdict::dead,
         "gave up after 7 attempts over max_age 1h30m: HTTP 302 (redirects are not followed)"},
        {"410 stays Gone", status(410), 40, t0 - 2 * day, day, delivery_verdict::dead, "HTTP 410 Gone"},
        {"success after max_age is still delivered", status(200), 40, t0 - 2 * day, day,
         delivery_verdict::delivered, ""},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scripted_random rng({0.0});
            auto const v = judge_delivery(c.outcome, c.attempts, c.committed, c.max_age, t0, rng);
            BOOST_TEST(kind_name(v.kind) == kind_name(c.kind));
            BOOST_TEST(v.error == c.error);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(scenarios)

BOOST_AUTO_TEST_CASE(a_receiver_down_for_an_hour_gets_everything_after_it_comes_back) {
    struct case_t {
        char const* name;
        double draw;
    };
    case_t const cases[] = {{"shortest jitter", 0.0}, {"nominal", 0.5}, {"longest jitter", top_draw}};
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scripted_random rng({c.draw});
            sys_ms const committed = t0;
            sys_ms const back_up = t0 + 1h;
            sys_ms now = committed;
            int attempts = 0;
            std::optional<sys_ms> delivered_at;
            while (!delivered_at && attempts < 100) {
                ++attempts;
                auto const outcome = now < back_up ? failure(failure_kind::network, "connect: Connection refused")
                                                   : status(204);
                auto const v = judge_delivery(outcome, attempts, committed, day, now, rng);
                if (v.kind == delivery_verdict::delivered) {
                    delivered_at = now;
                    break;
                }
                BOOST_TEST_REQUIRE(kind_name(v.kind) == kind_name(delivery_verdict::retry));
                BOOST_TEST_REQUIRE(v.next_attempt > now);
                now = v.next_attempt;
            }
            BOOST_TEST_REQUIRE(delivered_at.has_value());
            // 5s+30s+2m+10m+30m = 42m35s, then 1h: attempt 7 is the first after recovery.
            BOOST_TEST(attempts == 7);
            BOOST_TEST(*delivered_at >= back_up);
            BOOST_TEST(*delivered_at <= back_up + 1h * 11 / 10);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_receiver_that_never_comes_back_is_dead_lettered_within_max_age) {
    scripted_random rng({0.5});
    sys_ms const committed = t0;
    sys_ms now = committed;
    int attempts = 0;
    delivery_verdict v;
    do {
        ++attempts;
        v = judge_delivery(failure(failure_kind::network, "connect: Connection refused"), attempts, committed, day,
                           now, rng);
        if (v.kind == delivery_verdict::retry) {
            BOOST_TEST_REQUIRE(v.next_attempt <= committed + day);
            now = v.next_attempt;
        }
    } while (v.kind == delivery_verdict::retry && attempts < 100);
    // Attempts at 0, 5s, 35s, 2m35s, 12m35s, 42m35s, then hourly: the 29th at
    // 23h42m35s is the last; another would land at 24h42m35s.
    BOOST_TEST(attempts == 29);
    BOOST_TEST(ms_between(committed, now) == milliseconds{23h + 42min + 35s}.count());
    BOOST_TEST(v.error == "gave up after 29 attempts over max_age 24h: network: connect: Connection refused");
}

BOOST_AUTO_TEST_SUITE_END()
