#define BOOST_TEST_MODULE basic_auth
#include <boost/test/unit_test.hpp>

#include "core/basic_auth.hpp"

using namespace importwatch::core;

BOOST_AUTO_TEST_SUITE(basic_auth)

BOOST_AUTO_TEST_CASE(bcrypt_hashes_are_recognised_by_form) {
    std::string const tail = "$10$O9ygQGHBAf3dSs2cBFziRO2oNZ/2IOzKq.3.2W6bmUq9eAzi/oUKS";
    for (std::string const prefix : {"$2y", "$2b", "$2a"}) {
        BOOST_TEST_CONTEXT(prefix) { BOOST_TEST(is_bcrypt_hash(prefix + tail)); }
    }
    std::string const good = "$2y" + tail;
    std::vector<std::string> const bad = {
        "",
        "s3cret",
        "$2x" + tail,                                   // the buggy-implementation marker
        "$2" + tail,
        good.substr(0, 59),                             // one character short
        good + "A",
        "$2y$03" + good.substr(6),                      // cost below 4
        "$2y$32" + good.substr(6),                      // cost above 31
        "$2y$1a" + good.substr(6),
        "$2y$10%" + good.substr(7),
        good.substr(0, 30) + "!" + good.substr(31),     // not bcrypt's base64
        "$5$rounds=5000$abcdefghijklmnop$" + std::string(43, 'a'),
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
    };
    for (auto const& b : bad) {
        BOOST_TEST_CONTEXT(b) { BOOST_TEST(!is_bcrypt_hash(b)); }
    }
}

BOOST_AUTO_TEST_CASE(authorization_headers_are_parsed) {
    // "prometheus:pa:ss" — a password may hold colons, a user may not.
    auto c = parse_basic_authorization("Basic cHJvbWV0aGV1czpwYTpzcw==");
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->user == "prometheus");
    BOOST_TEST(c->password == "pa:ss");

    auto lower = parse_basic_authorization("basic  dTpw ");   // "u:p", scheme case-insensitive
    BOOST_TEST_REQUIRE(lower.has_value());
    BOOST_TEST(lower->user == "u");
    BOOST_TEST(lower->password == "p");

    auto empty_password = parse_basic_authorization("BASIC dTo=");   // "u:"
    BOOST_TEST_REQUIRE(empty_password.has_value());
    BOOST_TEST(empty_password->password.empty());

    for (std::string const bad : {"", "Basic", "Basic ", "Bearer dTpw", "Basic dXNlcg==" /* no colon */,
                                  "Basic dTpw!", "Basic ====", "Digest username=\"u\""}) {
        BOOST_TEST_CONTEXT(bad) { BOOST_TEST(!parse_basic_authorization(bad).has_value()); }
    }
}

BOOST_AUTO_TEST_SUITE_END()
