#define BOOST_TEST_MODULE duration
#include <boost/test/unit_test.hpp>

#include "core/duration.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(duration)

BOOST_AUTO_TEST_CASE(parses_every_unit_and_combination) {
    struct case_ {
        char const* text;
        milliseconds expected;
    };
    case_ const cases[] = {
        {"0", 0ms},           {"0s", 0ms},
        {"0ms", 0ms},         {"500ms", 500ms},
        {"30s", 30s},         {"5m", 5min},
        {"1h", 1h},           {"30d", std::chrono::days(30)},
        {"1h30m", 90min},     {"1d2h3m4s5ms", std::chrono::days(1) + 2h + 3min + 4s + 5ms},
        {"1m0s", 1min},       {"90s", 90s},
        {"1s500ms", 1500ms},  {"2h0m", 2h},
        {"007s", 7s},         {"9223372036854775807ms", milliseconds(9223372036854775807LL)},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.text) {
            auto d = parse_duration(c.text);
            BOOST_TEST_REQUIRE(d.has_value());
            BOOST_TEST(d->count() == c.expected.count());
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_malformed_text) {
    char const* const bad[] = {
        "",       "s",      "-5s",   "+5s",  "5",     "00",     "1.5s",  "5 s",   " 5s",  "5s ",
        "5S",     "5sec",   "5x",    "30m1h", "1h1h", "1s1m",   "1ms1s", "5mss",  "h1",   "1d1d",
        "ms",     "1hm",    "1_000s",
        "9223372036854775808ms",   // one past int64
        "106751991168d",           // fits as a number, overflows in milliseconds
        "1s1s",
    };
    for (auto const* text : bad) {
        BOOST_TEST_CONTEXT('"' << text << '"') { BOOST_TEST(!parse_duration(text).has_value()); }
    }
}

BOOST_AUTO_TEST_CASE(sum_overflow_is_rejected) {
    // Each component fits; the total does not.
    // int64 max is 106751991167d 7h 12m 55s 807ms.
    BOOST_TEST(parse_duration("106751991167d7h12m55s807ms").has_value());
    BOOST_TEST(!parse_duration("106751991167d7h12m55s808ms").has_value());
    BOOST_TEST(!parse_duration("106751991167d8h").has_value());
}

BOOST_AUTO_TEST_CASE(formats_shortest_exact_form) {
    BOOST_TEST(format_duration(0ms) == "0s");
    BOOST_TEST(format_duration(500ms) == "500ms");
    BOOST_TEST(format_duration(1500ms) == "1s500ms");
    BOOST_TEST(format_duration(30s) == "30s");
    BOOST_TEST(format_duration(60s) == "1m");
    BOOST_TEST(format_duration(90s) == "1m30s");
    BOOST_TEST(format_duration(90min) == "1h30m");
    BOOST_TEST(format_duration(24h) == "1d");
    BOOST_TEST(format_duration(std::chrono::days(30)) == "30d");
    BOOST_TEST(format_duration(25h + 1ms) == "1d1h1ms");
    BOOST_TEST(format_duration(-1500ms) == "-1s500ms");
}

BOOST_AUTO_TEST_CASE(format_round_trips_through_parse) {
    for (long long ms : {1LL, 999LL, 1000LL, 61001LL, 3600000LL, 86399999LL, 86400000LL, 2592000000LL,
                         123456789012LL}) {
        BOOST_TEST_CONTEXT(ms) {
            auto text = format_duration(milliseconds(ms));
            auto back = parse_duration(text);
            BOOST_TEST_REQUIRE(back.has_value());
            BOOST_TEST(back->count() == ms);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
