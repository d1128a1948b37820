#define BOOST_TEST_MODULE rate_limit_gate
#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/rate_limit_gate.hpp"
#include "common/scripted_random.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;
using importwatch::testing::scripted_random;
using importwatch::testing::top_draw;

namespace {

// 2026-11-28T19:37:20.000Z: a whole second, so HTTP-dates built from it are exact.
sys_ms const t0{milliseconds{1795894640000}};

backoff_policy const standard_backoff{1s, 5min, 2.0};

std::string epoch_ms(sys_ms t) { return std::to_string(t.time_since_epoch().count()); }

using opt = std::optional<std::string>;

using response_headers = std::vector<header_field>;

http_reply reply(int status, response_headers h = {}) {
    http_reply r;
    r.status = status;
    r.headers = std::move(h);
    return r;
}

response_headers headers(opt retry_after, opt reset, opt date = std::nullopt,
                         opt global_remaining = std::nullopt, opt route_remaining = std::nullopt) {
    response_headers h;
    auto add = [&h](std::string_view name, opt& value) {
        if (value) h.push_back({std::string(name), std::move(*value)});
    };
    add(retry_after_header, retry_after);
    add(reset_header, reset);
    add(date_header, date);
    add(global_remaining_header, global_remaining);
    add(route_remaining_header, route_remaining);
    return h;
}

long long ms_between(sys_ms from, sys_ms to) { return (to - from).count(); }

} // namespace

BOOST_AUTO_TEST_SUITE(header_parsing)

BOOST_AUTO_TEST_CASE(retry_after_accepts_delta_seconds_and_http_dates) {
    struct case_t {
        char const* name;
        opt value;
        milliseconds offset;
        std::optional<milliseconds> expected;
    };
    case_t const cases[] = {
        {"absent", std::nullopt, 0ms, std::nullopt},
        {"delta seconds", "120", 0ms, 120s},
        {"zero", "0", 0ms, 0ms},
        {"surrounding spaces", " 7 ", 0ms, 7s},
        {"negative is garbage", "-5", 0ms, std::nullopt},
        {"fraction is garbage", "1.5", 0ms, std::nullopt},
        {"words are garbage", "soon", 0ms, std::nullopt},
        {"empty is garbage", "", 0ms, std::nullopt},
        {"digits then junk", "12s", 0ms, std::nullopt},
        {"http-date 90 s ahead", format_http_date(t0 + 90s), 0ms, 90s},
        {"http-date in the past clamps to 0", format_http_date(t0 - 90s), 0ms, 0ms},
        {"http-date on a server 1 h ahead", format_http_date(t0 + 1h + 60s), milliseconds{1h}, 60s},
        {"http-date on a server 1 h behind", format_http_date(t0 - 1h + 60s), -milliseconds{1h}, 60s},
        {"rfc 850 form", "Saturday, 28-Nov-26 19:38:20 GMT", 0ms, 60s},
        {"bad date", "Sat, 28 Nov 2026 19:38:20 CET", 0ms, std::nullopt},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto const got = retry_after_wait(c.value, c.offset, t0);
            BOOST_TEST(got.has_value() == c.expected.has_value());
            if (got && c.expected) BOOST_TEST(got->count() == c.expected->count());
        }
    }
}

BOOST_AUTO_TEST_CASE(huge_delta_seconds_is_a_long_wait_not_an_overflow) {
    auto const got = retry_after_wait(std::string("99999999999999999999999"), 0ms, t0);
    BOOST_TEST_REQUIRE(got.has_value());
    BOOST_TEST(got->count() > milliseconds{max_header_wait}.count());
}

BOOST_AUTO_TEST_CASE(clock_offset_only_corrects_real_skew) {
    struct case_t {
        char const* name;
        opt date;
        sys_ms now;
        milliseconds expected;
    };
    case_t const cases[] = {
        {"no Date header", std::nullopt, t0, 0ms},
        {"garbage Date", "yesterday", t0, 0ms},
        {"same second", format_http_date(t0), t0 + 400ms, 0ms},
        {"1 s ahead is resolution, not skew", format_http_date(t0 + 1s), t0, 0ms},
        {"2 s ahead is still tolerated", format_http_date(t0 + 2s), t0, 0ms},
        {"3 s ahead is skew", format_http_date(t0 + 3s), t0, 3s},
        {"1 h ahead", format_http_date(t0 + 1h), t0, 1h},
        {"1 h behind", format_http_date(t0 - 1h), t0, -milliseconds{1h}},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            BOOST_TEST(server_clock_offset(c.date, c.now).count() == c.expected.count());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(observe_429)

BOOST_AUTO_TEST_CASE(pauses_for_the_longest_of_the_three_waits) {
    // With draw 0.5 the first backoff term is between(0, 1000ms) = 500ms.
    struct case_t {
        char const* name;
        response_headers h;
        milliseconds expected_wait;
    };
    case_t const cases[] = {
        {"no headers: backoff alone still pauses", {}, 500ms},
        {"Retry-After seconds", headers("120", std::nullopt), 120s},
        {"Retry-After http-date", headers(format_http_date(t0 + 90s), std::nullopt), 90s},
        {"Retry-After garbage falls back to backoff", headers("later", std::nullopt), 500ms},
        {"reset 45 s ahead", headers(std::nullopt, epoch_ms(t0 + 45s)), 45s},
        {"reset in the past counts as 0", headers(std::nullopt, epoch_ms(t0 - 30s)), 500ms},
        {"negative reset counts as 0", headers(std::nullopt, "-5000"), 500ms},
        {"garbage reset counts as 0", headers(std::nullopt, "soon"), 500ms},
        {"reset in seconds, not ms, is in the past", headers(std::nullopt, "1795894700"), 500ms},
        {"Retry-After longer than reset", headers("60", epoch_ms(t0 + 20s)), 60s},
        {"reset longer than Retry-After", headers("10", epoch_ms(t0 + 30s)), 30s},
        {"Retry-After capped at 1 h", headers("7200", std::nullopt), 1h},
        {"reset capped at 1 h", headers(std::nullopt, epoch_ms(t0 + 3h)), 1h},
        {"server 1 h ahead: reset read on its clock",
         headers(std::nullopt, epoch_ms(t0 + 1h + 30s), format_http_date(t0 + 1h)), 30s},
        {"server 1 h behind: reset read on its clock",
         headers(std::nullopt, epoch_ms(t0 - 1h + 30s), format_http_date(t0 - 1h)), 30s},
        {"server 1 s ahead: ignored",
         headers(std::nullopt, epoch_ms(t0 + 30s), format_http_date(t0 + 1s)), 30s},
        {"server 1 h ahead: Retry-After date read on its clock",
         headers(format_http_date(t0 + 1h + 60s), std::nullopt, format_http_date(t0 + 1h)), 60s},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            rate_limit_gate gate(2, standard_backoff);
            scripted_random rng({0.5});
            auto const v = gate.observe(reply(429, c.h), t0, rng);
            BOOST_TEST(v.paused);
            BOOST_TEST(ms_between(t0, v.until) == c.expected_wait.count());
            BOOST_TEST(ms_between(t0, gate.paused_until()) == c.expected_wait.count());
            BOOST_TEST(gate.consecutive_429() == 1);
            BOOST_TEST(gate.pauses_total() == 1u);
            BOOST_TEST(gate.paused_total().count() == c.expected_wait.count());
        }
    }
}

BOOST_AUTO_TEST_CASE(backoff_term_grows_over_the_streak_and_is_capped_by_max) {
    rate_limit_gate gate(2, standard_backoff);
    scripted_random rng({top_draw});
    sys_ms now = t0;
    // Each 429 arrives right when the previous pause ends.
    milliseconds const expected[] = {1s, 2s, 4s, 8s, 16s, 32s, 64s, 128s, 256s, 5min, 5min, 5min};
    int n = 0;
    for (auto const wait : expected) {
        ++n;
        BOOST_TEST_CONTEXT("429 number " << n) {
            auto const v = gate.observe(reply(429), now, rng);
            BOOST_TEST(gate.consecutive_429() == n);
            BOOST_TEST(ms_between(now, v.until) == wait.count());
            now = v.until;
        }
    }
}

BOOST_AUTO_TEST_CASE(a_non_429_resets_the_streak) {
    struct case_t {
        char const* name;
        int status;
    };
    case_t const cases[] = {{"200", 200}, {"503", 503}, {"404", 404}};
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            rate_limit_gate gate(2, standard_backoff);
            scripted_random rng({top_draw});
            sys_ms now = t0;
            for (int i = 0; i < 4; ++i) now = gate.observe(reply(429), now, rng).until;
            BOOST_TEST(gate.consecutive_429() == 4);
            auto const v = gate.observe(reply(c.status), now, rng);
            BOOST_TEST(!v.paused);
            BOOST_TEST(gate.consecutive_429() == 0);
            auto const again = gate.observe(reply(429), now, rng);
            BOOST_TEST(gate.consecutive_429() == 1);
            BOOST_TEST(ms_between(now, again.until) == 1000);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_shorter_429_never_shortens_a_pause_and_overlap_counts_once) {
    rate_limit_gate gate(2, standard_backoff);
    scripted_random rng({0.0});
    auto const first = gate.observe(reply(429, headers("60", std::nullopt)), t0, rng);
    BOOST_TEST(ms_between(t0, first.until) == 60000);
    // An in-flight request comes back 429 with a short wait.
    auto const second = gate.observe(reply(429, headers("5", std::nullopt)), t0 + 1s, rng);
    BOOST_TEST(second.paused);
    BOOST_TEST(ms_between(t0, second.until) == 60000);
    BOOST_TEST(ms_between(t0, gate.paused_until()) == 60000);
    BOOST_TEST(gate.pauses_total() == 2u);
    BOOST_TEST(gate.paused_total().count() == 60000);
    // One that reaches further adds only the newly covered time.
    auto const third = gate.observe(reply(429, headers("70", std::nullopt)), t0 + 10s, rng);
    BOOST_TEST(ms_between(t0, third.until) == 80000);
    BOOST_TEST(gate.paused_total().count() == 80000);
    BOOST_TEST(gate.pauses_total() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(observe_remaining_zero)

BOOST_AUTO_TEST_CASE(holds_until_reset_when_a_budget_is_exhausted) {
    struct case_t {
        char const* name;
        int status;
        response_headers h;
        std::optional<milliseconds> expected_hold;  // nullopt: no hold
    };
    auto const reset20 = epoch_ms(t0 + 20s);
    case_t const cases[] = {
        {"global 0", 200, headers(std::nullopt, reset20, std::nullopt, "0", "5"), 20s},
        {"route 0", 200, headers(std::nullopt, reset20, std::nullopt, "7", "0"), 20s},
        {"both 0", 200, headers(std::nullopt, reset20, std::nullopt, "0", "0"), 20s},
        {"on an error status too", 503, headers(std::nullopt, reset20, std::nullopt, "0", std::nullopt), 20s},
        {"budget left", 200, headers(std::nullopt, reset20, std::nullopt, "1", "3"), std::nullopt},
        {"no remaining headers", 200, headers(std::nullopt, reset20), std::nullopt},
        {"garbage remaining", 200, headers(std::nullopt, reset20, std::nullopt, "none", "0.0"), std::nullopt},
        {"negative remaining is garbage", 200, headers(std::nullopt, reset20, std::nullopt, "-0", std::nullopt),
         std::nullopt},
        {"past reset holds nothing", 200,
         headers(std::nullopt, epoch_ms(t0 - 1s), std::nullopt, "0", std::nullopt), std::nullopt},
        {"reset now holds nothing", 200, headers(std::nullopt, epoch_ms(t0), std::nullopt, "0", std::nullopt),
         std::nullopt},
        {"garbage reset holds nothing", 200, headers(std::nullopt, "tomorrow", std::nullopt, "0", std::nullopt),
         std::nullopt},
        {"missing reset holds nothing", 200, headers(std::nullopt, std::nullopt, std::nullopt, "0", "0"),
         std::nullopt},
        {"hold capped at 1 h", 200, headers(std::nullopt, epoch_ms(t0 + 5h), std::nullopt, "0", std::nullopt), 1h},
        {"server 1 h ahead: reset read on its clock", 200,
         headers(std::nullopt, epoch_ms(t0 + 1h + 20s), format_http_date(t0 + 1h), std::nullopt, "0"), 20s},
        {"server 1 h behind: a reset that looks past is still ahead", 200,
         headers(std::nullopt, epoch_ms(t0 - 1h + 20s), format_http_date(t0 - 1h), "0", std::nullopt), 20s},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            rate_limit_gate gate(2, standard_backoff);
            scripted_random rng({0.5});
            auto const v = gate.observe(reply(c.status, c.h), t0, rng);
            BOOST_TEST(v.paused == c.expected_hold.has_value());
            BOOST_TEST(gate.consecutive_429() == 0);
            if (c.expected_hold) {
                BOOST_TEST(ms_between(t0, v.until) == c.expected_hold->count());
                BOOST_TEST(ms_between(t0, gate.paused_until()) == c.expected_hold->count());
                BOOST_TEST(gate.pauses_total() == 1u);
                BOOST_TEST(gate.paused_total().count() == c.expected_hold->count());
                // Nothing goes out before the hold ends.
                BOOST_TEST(gate.acquire(t0, rng) >= t0 + *c.expected_hold);
            } else {
                BOOST_TEST(gate.paused_until() == sys_ms{});
                BOOST_TEST(gate.pauses_total() == 0u);
                BOOST_TEST(gate.acquire(t0, rng) == t0);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_hold_within_a_longer_pause_changes_nothing) {
    rate_limit_gate gate(2, standard_backoff);
    scripted_random rng({0.0});
    gate.observe(reply(429, headers("60", std::nullopt)), t0, rng);
    auto const v = gate.observe(
        reply(200, headers(std::nullopt, epoch_ms(t0 + 10s), std::nullopt, "0", std::nullopt)), t0, rng);
    BOOST_TEST(!v.paused);
    BOOST_TEST(ms_between(t0, gate.paused_until()) == 60000);
    BOOST_TEST(gate.pauses_total() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(acquire)

BOOST_AUTO_TEST_CASE(token_bucket_paces_at_the_configured_rate) {
    struct step {
        milliseconds at;       // when the request asks
        milliseconds expected; // what acquire returns (== at means granted)
    };
    struct case_t {
        char const* name;
        double rate;
        std::vector<step> steps;
    };
    case_t const cases[] = {
        {"r=2: a burst of 2, the 3rd at +500ms", 2,
         {{0ms, 0ms}, {0ms, 0ms}, {0ms, 500ms}, {499ms, 500ms}, {500ms, 500ms}, {500ms, 1000ms}, {1000ms, 1000ms}}},
        {"r=2: an idle second refills to 2, not more", 2,
         {{0ms, 0ms}, {0ms, 0ms}, {5000ms, 5000ms}, {5000ms, 5000ms}, {5000ms, 5500ms}}},
        {"r=0.5: one token, the next after 2 s", 0.5, {{0ms, 0ms}, {0ms, 2000ms}, {1999ms, 2000ms}, {2000ms, 2000ms}}},
        {"r=3: rounds the next token up", 3, {{0ms, 0ms}, {0ms, 0ms}, {0ms, 0ms}, {0ms, 334ms}, {334ms, 334ms}}},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            rate_limit_gate gate(c.rate, standard_backoff);
            scripted_random rng({0.5});
            int i = 0;
            for (auto const& s : c.steps) {
                BOOST_TEST_CONTEXT("step " << i++) {
                    BOOST_TEST(ms_between(t0, gate.acquire(t0 + s.at, rng)) == s.expected.count());
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(grants_match_the_rate_over_a_simulated_minute) {
    // Callers that retry exactly when told: r=2 -> 2 burst + 2 per second.
    rate_limit_gate gate(2, standard_backoff);
    scripted_random rng({0.5});
    sys_ms now = t0;
    int grants = 0;
    while (now < t0 + 60s) {
        auto const next = gate.acquire(now, rng);
        if (next == now) {
            ++grants;
        } else {
            BOOST_TEST_REQUIRE(next > now);
            now = next;
        }
    }
    BOOST_TEST(grants == 2 + 2 * 60 - 1);  // the grant due at exactly +60 s is outside
}

BOOST_AUTO_TEST_CASE(rate_zero_is_uncapped) {
    rate_limit_gate gate(0, standard_backoff);
    scripted_random rng({0.5});
    for (int i = 0; i < 1000; ++i) BOOST_TEST_REQUIRE(gate.acquire(t0, rng) == t0);
}

BOOST_AUTO_TEST_CASE(never_grants_before_the_pause_ends_and_spreads_waiters) {
    struct case_t {
        char const* name;
        double rate;
    };
    case_t const cases[] = {{"capped", 2}, {"uncapped", 0}};
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            rate_limit_gate gate(c.rate, standard_backoff);
            scripted_random pause_rng({0.0});
            auto const until = gate.observe(reply(429, headers("10", std::nullopt)), t0, pause_rng).until;
            BOOST_TEST_REQUIRE(ms_between(t0, until) == 10000);

            // Waiters asking at any moment of the pause get until + their jitter.
            struct waiter {
                milliseconds asks_at;
                double draw;
                milliseconds released_after_until;
            };
            waiter const waiters[] = {
                {0ms, 0.0, 0ms}, {1ms, 0.5, 500ms}, {5s, top_draw, 1000ms}, {9999ms, 0.25, 250ms},
            };
            for (auto const& w : waiters) {
                scripted_random rng({w.draw});
                auto const at = gate.acquire(t0 + w.asks_at, rng);
                BOOST_TEST(ms_between(until, at) == w.released_after_until.count());
                BOOST_TEST(at >= until);
                BOOST_TEST(at <= until + resume_spread);
            }
            // Asking during the pause consumed nothing: the full burst is there at the end.
            scripted_random rng({0.5});
            BOOST_TEST(gate.acquire(until, rng) == until);
            if (c.rate > 0) {
                BOOST_TEST(gate.acquire(until, rng) == until);
                BOOST_TEST(ms_between(until, gate.acquire(until, rng)) == 500);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_prng_never_releases_outside_the_spread) {
    rate_limit_gate gate(2, standard_backoff);
    prng rng(1);
    auto const until = gate.observe(reply(429, headers("30", std::nullopt)), t0, rng).until;
    BOOST_TEST_REQUIRE(ms_between(t0, until) == 30000);
    milliseconds lowest = resume_spread, highest{0};
    for (int i = 0; i < 2000; ++i) {
        auto const at = gate.acquire(t0 + milliseconds{i * 10}, rng);
        BOOST_TEST_REQUIRE(at >= until);
        BOOST_TEST_REQUIRE(at <= until + resume_spread);
        lowest = std::min(lowest, at - until);
        highest = std::max(highest, at - until);
    }
    // Actually spread, not all at one instant.
    BOOST_TEST(lowest.count() < 100);
    BOOST_TEST(highest.count() > 900);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(reconfigure)

BOOST_AUTO_TEST_CASE(keeps_the_pause_and_the_streak) {
    rate_limit_gate gate(2, standard_backoff);
    scripted_random rng({top_draw});
    sys_ms now = t0;
    now = gate.observe(reply(429), now, rng).until;  // 1s
    now = gate.observe(reply(429), now, rng).until;  // 2s
    auto const until = gate.observe(reply(429, headers("600", std::nullopt)), now, rng).until;
    gate.reconfigure(5, backoff_policy{10s, 1h, 3.0});
    BOOST_TEST(gate.paused_until() == until);
    BOOST_TEST(gate.consecutive_429() == 3);
    BOOST_TEST(gate.acquire(now, rng) >= until);
    // The 4th 429 uses the new policy at streak position 3: 10s * 3^3 = 270s.
    auto const v = gate.observe(reply(429), until, rng);
    BOOST_TEST(ms_between(until, v.until) == 270000);
}

BOOST_AUTO_TEST_CASE(changes_the_rate) {
    struct case_t {
        char const* name;
        double from, to;
        int spend_first;  // grants taken before the change; -1: the whole burst
        int burst;  // grants at one instant after the change, then the next is refused
    };
    case_t const cases[] = {
        {"2 -> 5 after a spent burst keeps nothing", 2, 5, -1, 0},
        {"2 -> 5 keeps the 1 left, does not jump to 5", 2, 5, 1, 1},
        {"5 -> 1 drops the excess", 5, 1, 1, 1},
        {"0 -> 3 starts full", 0, 3, 1, 3},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            rate_limit_gate gate(c.from, standard_backoff);
            scripted_random rng({0.5});
            if (c.spend_first < 0) {
                while (gate.acquire(t0, rng) == t0) {
                }
            }
            for (int i = 0; i < c.spend_first; ++i) BOOST_TEST_REQUIRE(gate.acquire(t0, rng) == t0);
            gate.reconfigure(c.to, standard_backoff);
            int grants = 0;
            while (gate.acquire(t0, rng) == t0 && grants < 100) ++grants;
            BOOST_TEST(grants == c.burst);
        }
    }
}

BOOST_AUTO_TEST_CASE(to_zero_uncaps) {
    rate_limit_gate gate(1, standard_backoff);
    scripted_random rng({0.5});
    BOOST_TEST(gate.acquire(t0, rng) == t0);
    BOOST_TEST(gate.acquire(t0, rng) > t0);
    gate.reconfigure(0, standard_backoff);
    for (int i = 0; i < 100; ++i) BOOST_TEST_REQUIRE(gate.acquire(t0, rng) == t0);
}

BOOST_AUTO_TEST_SUITE_END()
