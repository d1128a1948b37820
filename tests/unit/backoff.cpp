#define BOOST_TEST_MODULE backoff
#include <boost/test/unit_test.hpp>

#include <limits>
#include <vector>

#include "core/backoff.hpp"
#include "common/scripted_random.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;
using importwatch::testing::scripted_random;

BOOST_AUTO_TEST_SUITE(backoff)

BOOST_AUTO_TEST_CASE(ceiling_grows_exponentially_up_to_max) {
    backoff_policy const standard{1s, 5min, 2.0};
    struct case_t {
        char const* name;
        backoff_policy policy;
        int attempt;
        milliseconds expected;
    };
    case_t const cases[] = {
        {"attempt 0 is initial", standard, 0, 1s},
        {"attempt 1 doubles", standard, 1, 2s},
        {"attempt 8", standard, 8, 256s},
        {"attempt 9 would be 512s: capped", standard, 9, 5min},
        {"attempt 1000 does not overflow", standard, 1000, 5min},
        {"attempt INT_MAX does not overflow", standard, std::numeric_limits<int>::max(), 5min},
        {"negative attempt treated as 0", standard, -3, 1s},
        {"fractional multiplier", {500ms, 1h, 1.5}, 2, 1125ms},
        {"multiplier 1 stays at initial", {3s, 1h, 1.0}, 50, 3s},
        {"initial above max is capped", {10min, 5min, 2.0}, 0, 5min},
        {"huge multiplier", {1s, 5min, 1e300}, 5, 5min},
        {"max zero", {1s, 0ms, 2.0}, 3, 0ms},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            BOOST_TEST(backoff_ceiling(c.policy, c.attempt).count() == c.expected.count());
        }
    }
}

BOOST_AUTO_TEST_CASE(full_jitter_is_uniform_from_zero_to_the_ceiling) {
    backoff_policy const p{1s, 5min, 2.0};
    struct case_t {
        char const* name;
        int attempt;
        double draw;
        milliseconds expected;
    };
    case_t const cases[] = {
        {"lowest draw waits 0", 3, 0.0, 0ms},
        {"highest draw waits the full ceiling", 3, 1.0 - 1e-12, 8s},
        {"middle draw", 3, 0.5, 4000ms},
        {"capped ceiling", 20, 1.0 - 1e-12, 5min},
        {"capped middle", 20, 0.5, 150000ms},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scripted_random rng({c.draw});
            BOOST_TEST(full_jitter(p, c.attempt, rng).count() == c.expected.count());
        }
    }
}

// A failed commit is repeated within [1 s, initial + 1 s]: never at once (the
// store needs a moment), spread by the first backoff step.
BOOST_AUTO_TEST_CASE(a_failed_commit_is_retried_after_a_first_step_backoff_and_a_second) {
    sys_ms const now{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}};
    backoff_policy const p{200ms, 5min, 2.0};
    struct case_t {
        char const* name;
        double draw;
        milliseconds expected;
    };
    case_t const cases[] = {
        {"lowest draw: one second", 0.0, 1000ms},
        {"middle draw", 0.5, 1100ms},
        {"highest draw: initial plus one second", importwatch::testing::top_draw, 1200ms},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scripted_random rng({c.draw});
            BOOST_TEST((commit_retry_time(p, now, rng) - now).count() == c.expected.count());
        }
    }
    // It does not grow with failures: backoff.max would hold a recovered store's watches too long.
    scripted_random rng({importwatch::testing::top_draw});
    BOOST_TEST((commit_retry_time({1s, 5min, 10.0}, now, rng) - now).count() == 2000);
}

BOOST_AUTO_TEST_CASE(an_unexpected_error_is_retried_at_backoff_max) {
    sys_ms const now{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}};
    BOOST_TEST((unexpected_error_retry_time({1s, 5min, 2.0}, now) - now).count() == 300000);
    BOOST_TEST((unexpected_error_retry_time({100ms, 1500ms, 2.0}, now) - now).count() == 1500);
}

BOOST_AUTO_TEST_SUITE_END()
