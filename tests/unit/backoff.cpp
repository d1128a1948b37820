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

BOOST_AUTO_TEST_SUITE_END()
