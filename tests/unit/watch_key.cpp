#define BOOST_TEST_MODULE watch_key
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/watch_key.hpp"

using namespace importwatch::core;

BOOST_AUTO_TEST_SUITE(watch_key_syntax)

BOOST_AUTO_TEST_CASE(key_parts) {
    BOOST_TEST(valid_key_part("vip-users_2.0", false));
    BOOST_TEST(!valid_key_part("", true));
    BOOST_TEST(!valid_key_part("a/b", true));
    BOOST_TEST(!valid_key_part("a b", true));
    BOOST_TEST(!valid_key_part("caf\xC3\xA9", true));
    BOOST_TEST(!valid_key_part("..", false));
    BOOST_TEST(!valid_key_part(".", false));
    BOOST_TEST(valid_key_part("..", true));
}

BOOST_AUTO_TEST_CASE(parse_a_key_path) {
    auto k = parse_watch_key("default/production/vip-users/1234-abcd");
    BOOST_TEST_REQUIRE(k.has_value());
    BOOST_TEST(k->project == "default");
    BOOST_TEST(k->environment == "production");
    BOOST_TEST(k->segment == "vip-users");
    BOOST_TEST(k->import_id == "1234-abcd");
    BOOST_TEST(k->path() == "default/production/vip-users/1234-abcd");
    BOOST_TEST(parse_watch_key("p/e/s/..").has_value());   // import ids may be dots

    struct bad {
        char const* text;
        char const* error;
    };
    for (auto const& b : {
             bad{"p/e/s", "\"p/e/s\": expected PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID"},
             bad{"p/e/s/i/x", "\"p/e/s/i/x\": expected PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID"},
             bad{"p//s/i", "\"p//s/i\": each part must match [A-Za-z0-9._-]+"},
             bad{"../e/s/i", "\"../e/s/i\": each part must match [A-Za-z0-9._-]+"},
             bad{"p/e/s/i?x", "\"p/e/s/i?x\": each part must match [A-Za-z0-9._-]+"},
         }) {
        BOOST_TEST_CONTEXT(b.text) {
            auto r = parse_watch_key(b.text);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error() == b.error);
        }
    }
}

BOOST_AUTO_TEST_CASE(import_path_round_trips) {
    watch_key const k{"default", "production", "vip-users", "1234-abcd"};
    BOOST_TEST(import_path(k) == "/api/v2/segments/default/production/vip-users/imports/1234-abcd");
    // Behind a base_url with a path (a proxy's prefix, say).
    BOOST_TEST(import_path(k, "/ld") == "/ld/api/v2/segments/default/production/vip-users/imports/1234-abcd");
    auto back = key_of_import_path(import_path(k) + "?x=1");
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST((*back == k));
    for (char const* other : {"/api/v2/segments/p/e/s/exports/i", "/api/v2/segments/p/e/s/imports/",
                              "/api/v2/segments/p/e/s/imports/i/x", "/api/v2/segments/p/e/imports/i", "/", ""})
        BOOST_TEST(!key_of_import_path(other).has_value(), other);
}

BOOST_AUTO_TEST_SUITE_END()
