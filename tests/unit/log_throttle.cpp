#define BOOST_TEST_MODULE log_throttle
#include <boost/test/unit_test.hpp>

#include "core/log_throttle.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;

namespace {
sys_ms at(milliseconds t) { return sys_ms{} + 1'000'000'000ms + t; }
} // namespace

BOOST_AUTO_TEST_CASE(first_error_logs_and_repeats_within_a_minute_are_held) {
    log_throttle t;
    BOOST_TEST(t.admit("w\x1fHTTP 503", at(0ms)).value_or(99) == 0u);
    BOOST_TEST(!t.admit("w\x1fHTTP 503", at(1s)));
    BOOST_TEST(!t.admit("w\x1fHTTP 503", at(59'999ms)));
    // A minute after the last line: logged again with the count it held back.
    BOOST_TEST(t.admit("w\x1fHTTP 503", at(60s)).value_or(99) == 2u);
    BOOST_TEST(!t.admit("w\x1fHTTP 503", at(61s)));
    BOOST_TEST(t.admit("w\x1fHTTP 503", at(120s)).value_or(99) == 1u);
}

BOOST_AUTO_TEST_CASE(different_watches_and_causes_are_separate) {
    log_throttle t;
    BOOST_TEST(t.admit("a\x1fHTTP 503", at(0ms)).has_value());
    BOOST_TEST(t.admit("b\x1fHTTP 503", at(1ms)).has_value());
    BOOST_TEST(t.admit("a\x1ftimeout", at(2ms)).has_value());
    BOOST_TEST(!t.admit("a\x1fHTTP 503", at(3ms)));
}

BOOST_AUTO_TEST_CASE(clear_lets_the_next_error_log_at_once) {
    log_throttle t(30s);
    BOOST_TEST(t.empty());
    BOOST_TEST(t.admit("k", at(0ms)).has_value());
    BOOST_TEST(!t.empty());
    BOOST_TEST(!t.admit("k", at(5s)));
    t.clear("k");
    BOOST_TEST(t.empty());   // the poller skips building keys to clear
    BOOST_TEST(t.admit("k", at(6s)).value_or(99) == 0u);
}
