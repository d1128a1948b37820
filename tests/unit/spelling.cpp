#define BOOST_TEST_MODULE spelling
#include <boost/test/unit_test.hpp>

#include <set>
#include <vector>

#include "core/spelling.hpp"

using namespace importwatch::core;

BOOST_AUTO_TEST_CASE(distance_counts_edits_and_adjacent_swaps_once) {
    BOOST_TEST(edit_distance("interval", "interval") == 0u);
    BOOST_TEST(edit_distance("intervall", "interval") == 1u);
    BOOST_TEST(edit_distance("fautls", "faults") == 1u);   // a swap is one edit
    BOOST_TEST(edit_distance("", "abc") == 3u);
}

BOOST_AUTO_TEST_CASE(suggests_only_a_likely_typo) {
    std::vector<std::string_view> const keys{"interval", "jitter", "backoff"};
    BOOST_TEST(closest_match("intervall", keys).value_or("") == "interval");
    BOOST_TEST(closest_match("jiter", keys).value_or("") == "jitter");
    BOOST_TEST(!closest_match("timeout", keys));           // a different word
    BOOST_TEST(!closest_match("x", std::vector<std::string_view>{"y"}));     // every one-letter word is one edit away
    std::set<std::string> const names{"vip-nightly", "beta-weekly"};
    BOOST_TEST(closest_match("vip-nigthly", names).value_or("") == "vip-nightly");
}
