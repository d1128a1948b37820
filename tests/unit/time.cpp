#define BOOST_TEST_MODULE time
#include <boost/test/unit_test.hpp>

#include <set>
#include <vector>

#include "core/time.hpp"
#include "common/scripted_random.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;
using importwatch::testing::scripted_random;

namespace {

sys_ms at(std::int64_t epoch_ms) { return sys_ms{milliseconds{epoch_ms}}; }

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

} // namespace

BOOST_AUTO_TEST_SUITE(random_source_between)

BOOST_AUTO_TEST_CASE(maps_unit_draws_onto_the_inclusive_range) {
    struct case_t {
        char const* name;
        double draw;
        milliseconds lo, hi, expected;
    };
    case_t const cases[] = {
        {"0 gives lo", 0.0, 100ms, 200ms, 100ms},
        {"just below 1 gives hi (inclusive)", 0.999999, 100ms, 200ms, 200ms},
        {"middle of 11 values", 0.5, 0ms, 10ms, 5ms},
        {"last bucket starts at 10/11", 10.0 / 11.0, 0ms, 10ms, 10ms},
        {"just before the last bucket", 10.0 / 11.0 - 1e-9, 0ms, 10ms, 9ms},
        {"empty range", 0.7, 42ms, 42ms, 42ms},
        {"inverted range gives lo", 0.7, 50ms, 10ms, 50ms},
        {"negative bounds", 0.0, -10ms, 10ms, -10ms},
        {"misbehaving source returning 1.0 stays in range", 1.0, 0ms, 10ms, 10ms},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scripted_random rng({c.draw});
            BOOST_TEST(rng.between(c.lo, c.hi).count() == c.expected.count());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(uuid)

BOOST_AUTO_TEST_CASE(sets_version_and_variant_bits_from_scripted_draws) {
    struct case_t {
        char const* name;
        double draw;
        char const* expected;
    };
    case_t const cases[] = {
        {"all zero bits", 0.0, "00000000-0000-4000-8000-000000000000"},
        {"all one bits", 1.0 - 0x1.0p-53, "ffffffff-ffff-4fff-bfff-ffffffffffff"},
        {"top bit of each 32-bit word", 0.5, "80000000-8000-4000-8000-000080000000"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            scripted_random rng({c.draw});
            BOOST_TEST(rng.uuid_v4() == c.expected);
            BOOST_TEST(rng.draws() == 4u);
        }
    }
}

BOOST_AUTO_TEST_CASE(prng_uuids_are_well_formed_and_distinct) {
    prng rng(7);
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        auto const id = rng.uuid_v4();
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST_REQUIRE(id.size() == 36u);
            for (std::size_t k = 0; k < id.size(); ++k) {
                if (k == 8 || k == 13 || k == 18 || k == 23) {
                    BOOST_TEST(id[k] == '-');
                } else {
                    BOOST_TEST(is_lower_hex(id[k]));
                }
            }
            BOOST_TEST(id[14] == '4');
            BOOST_TEST((id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'));
        }
        seen.insert(id);
    }
    BOOST_TEST(seen.size() == 200u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(prng_unit)

BOOST_AUTO_TEST_CASE(draws_are_in_unit_interval_reproducible_and_spread) {
    prng a(42), b(42), c(43);
    double sum = 0;
    int low = 0, high = 0;
    bool differs = false;
    constexpr int n = 10000;
    for (int i = 0; i < n; ++i) {
        double const x = a.next_unit();
        BOOST_TEST_REQUIRE(x >= 0.0);
        BOOST_TEST_REQUIRE(x < 1.0);
        BOOST_TEST_REQUIRE(x == b.next_unit());
        if (x != c.next_unit()) differs = true;
        sum += x;
        if (x < 0.1) ++low;
        if (x >= 0.9) ++high;
    }
    BOOST_TEST(differs);
    BOOST_TEST(sum / n > 0.48);
    BOOST_TEST(sum / n < 0.52);
    // Both tails get their share (a draw squeezed into [0.5, 1) would fail).
    BOOST_TEST(low > 800);
    BOOST_TEST(high > 800);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rfc3339)

BOOST_AUTO_TEST_CASE(formats_utc_with_milliseconds) {
    struct case_t {
        std::int64_t ms;
        char const* expected;
    };
    case_t const cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1795894640123, "2026-11-28T19:37:20.123Z"},
        {1709251199999, "2024-02-29T23:59:59.999Z"},
        {951868800000, "2000-03-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.expected) {
            BOOST_TEST(format_rfc3339(at(c.ms)) == c.expected);
            auto const back = parse_rfc3339(c.expected);
            BOOST_TEST_REQUIRE(back.has_value());
            BOOST_TEST(back->time_since_epoch().count() == c.ms);
        }
    }
}

BOOST_AUTO_TEST_CASE(parses_offsets_and_fractions) {
    struct case_t {
        char const* text;
        std::int64_t expected_ms;
    };
    case_t const cases[] = {
        {"2026-11-28T19:37:20Z", 1795894640000},
        {"2026-11-28T19:37:20.1Z", 1795894640100},
        {"2026-11-28T19:37:20.123456789Z", 1795894640123},
        {"2026-11-28t19:37:20.123z", 1795894640123},
        {"2026-11-28T21:37:20.123+02:00", 1795894640123},
        {"2026-11-28T14:07:20.123-05:30", 1795894640123},
        {"2026-11-29T00:00:00+00:00", 1795910400000},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.text) {
            auto const t = parse_rfc3339(c.text);
            BOOST_TEST_REQUIRE(t.has_value());
            BOOST_TEST(t->time_since_epoch().count() == c.expected_ms);
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_malformed_text) {
    char const* const cases[] = {
        "",
        "garbage",
        "2026-11-28T19:37:20",          // no zone
        "2026-11-28 19:37:20Z",
        "2026-11-28T19:37:20.Z",        // dot without digits
        "2026-11-28T19:37:20Zjunk",
        "2026-02-29T00:00:00Z",         // not a leap year
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2026-11-28T24:00:00Z",
        "2026-11-28T19:60:00Z",
        "2026-11-28T19:37:20+2:00",
        "2026-11-28T19:37:20+02",
        "26-11-28T19:37:20Z",
    };
    for (auto const* text : cases) {
        BOOST_TEST_CONTEXT(text) { BOOST_TEST(!parse_rfc3339(text).has_value()); }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(http_date)

BOOST_AUTO_TEST_CASE(parses_the_three_forms_of_rfc_9110) {
    struct case_t {
        char const* text;
        std::int64_t expected_ms;
    };
    case_t const cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777000},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777000},
        {"Sun Nov  6 08:49:37 1994", 784111777000},
        {"Sun Nov 06 08:49:37 1994", 784111777000},
        {"  Sat, 28 Nov 2026 19:37:20 GMT ", 1795894640000},
        {"Saturday, 28-Nov-26 19:37:20 GMT", 1795894640000},   // two-digit year below 70 -> 20xx
        {"Thu, 29 Feb 2024 23:59:59 GMT", 1709251199000},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.text) {
            auto const t = parse_http_date(c.text);
            BOOST_TEST_REQUIRE(t.has_value());
            BOOST_TEST(t->time_since_epoch().count() == c.expected_ms);
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_garbage) {
    char const* const cases[] = {
        "",
        "120",
        "tomorrow",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "1994-11-06T08:49:37Z",
        "Sun Nov  6 08:49:37 94",
    };
    for (auto const* text : cases) {
        BOOST_TEST_CONTEXT(text) { BOOST_TEST(!parse_http_date(text).has_value()); }
    }
}

BOOST_AUTO_TEST_CASE(formats_imf_fixdate_truncating_to_seconds) {
    struct case_t {
        std::int64_t ms;
        char const* expected;
    };
    case_t const cases[] = {
        {784111777999, "Sun, 06 Nov 1994 08:49:37 GMT"},
        {1795894640123, "Sat, 28 Nov 2026 19:37:20 GMT"},
        {1709251199999, "Thu, 29 Feb 2024 23:59:59 GMT"},
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.expected) {
            BOOST_TEST(format_http_date(at(c.ms)) == c.expected);
            auto const back = parse_http_date(format_http_date(at(c.ms)));
            BOOST_TEST_REQUIRE(back.has_value());
            BOOST_TEST(back->time_since_epoch().count() == c.ms - ((c.ms % 1000 + 1000) % 1000));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
