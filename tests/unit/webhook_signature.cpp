#define BOOST_TEST_MODULE webhook_signature
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/webhook_signature.hpp"

using namespace importwatch::core;
using namespace std::string_literals;

BOOST_AUTO_TEST_SUITE(base64)

BOOST_AUTO_TEST_CASE(round_trips_the_rfc_4648_vectors) {
    struct case_t {
        std::string bytes;
        char const* text;
    };
    case_t const cases[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
        // High bytes and NUL; '+' and '/' from the standard (not URL) alphabet.
        {"key\0\xff\x80" "bytes"s, "a2V5AP+AYnl0ZXM="},
        {"\xfb\xff\xbf"s, "+/+/"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.text) {
            BOOST_TEST(base64_encode(c.bytes) == c.text);
            auto const decoded = base64_decode(c.text);
            BOOST_TEST_REQUIRE(decoded.has_value());
            BOOST_TEST(*decoded == c.bytes);
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_bad_characters_and_lengths) {
    char const* const cases[] = {
        "Zg",        // padding missing
        "Zg=",       // length 3
        "Zm9vY",     // length 5
        "Zm9v!mFy",  // foreign character
        "Zm9v YmF",  // space inside
        "Zm-_",      // URL-safe alphabet
        "Z===",      // too much padding
        "====",
        "Zg==Zg==",  // padding in the middle
        "Zm=v",      // '=' before data
    };
    for (auto const* text : cases) {
        BOOST_TEST_CONTEXT(text) { BOOST_TEST(!base64_decode(text).has_value()); }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(secret)

BOOST_AUTO_TEST_CASE(decodes_whsec_secrets) {
    struct case_t {
        char const* name;
        char const* secret;
        std::string key;
    };
    case_t const cases[] = {
        {"plain", "whsec_aW1wb3J0d2F0Y2gtdW5pdC10ZXN0LWtleQ==", "importwatch-unit-test-key"},
        {"padded, binary", "whsec_a2V5AP+AYnl0ZXMgYW5kIG1vcmUgYnl0ZXM=", "key\0\xff\x80" "bytes and more bytes"s},
        {"trailing newline from a secret file", "whsec_aW1wb3J0d2F0Y2gtdW5pdC10ZXN0LWtleQ==\n",
         "importwatch-unit-test-key"},
        {"shortest key: 24 bytes", "whsec_a2tra2tra2tra2tra2tra2tra2tra2tr", std::string(24, 'k')},
        {"longest key: 64 bytes",
         "whsec_a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2traw==",
         std::string(64, 'k')},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto const key = decode_webhook_secret(c.secret);
            BOOST_TEST_REQUIRE(key.has_value());
            BOOST_TEST(*key == c.key);
        }
    }
}

BOOST_AUTO_TEST_CASE(errors_name_the_problem_but_never_the_secret) {
    struct case_t {
        char const* name;
        char const* secret;
        char const* error;
    };
    case_t const cases[] = {
        {"no prefix", "Zm9vYmFyc2VjcmV0", "must start with whsec_"},
        {"wrong prefix", "whsk_Zm9vYmFyc2VjcmV0", "must start with whsec_"},
        {"upper-case prefix", "WHSEC_Zm9vYmFyc2VjcmV0", "must start with whsec_"},
        {"bad base64", "whsec_Zm9vYmFyc2VjcmV0!!", "is not valid base64"},
        {"bad length", "whsec_Zm9vYmFyc2VjcmV", "is not valid base64"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto const key = decode_webhook_secret(c.secret);
            BOOST_TEST_REQUIRE(!key.has_value());
            BOOST_TEST(key.error() == c.error);
            BOOST_TEST(key.error().find("Zm9vYmFy") == std::string::npos);
        }
    }
    BOOST_TEST(!decode_webhook_secret("whsec_").has_value());
}

// Standard Webhooks: a key is 24 to 64 bytes; `whsec_YQ==` (one byte) is no key.
BOOST_AUTO_TEST_CASE(keys_outside_24_to_64_bytes_are_refused) {
    struct case_t {
        char const* name;
        char const* secret;
        char const* error;
    };
    case_t const cases[] = {
        {"one byte", "whsec_YQ==", "decodes to 1 bytes; a key must be 24 to 64 bytes (Standard Webhooks)"},
        {"23 bytes", "whsec_a2tra2tra2tra2tra2tra2tra2tra2s=",
         "decodes to 23 bytes; a key must be 24 to 64 bytes (Standard Webhooks)"},
        {"65 bytes",
         "whsec_a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
         "decodes to 65 bytes; a key must be 24 to 64 bytes (Standard Webhooks)"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto const key = decode_webhook_secret(c.secret);
            BOOST_TEST_REQUIRE(!key.has_value());
            BOOST_TEST(key.error() == c.error);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(signature)

BOOST_AUTO_TEST_CASE(matches_independently_computed_hmacs) {
    // Expected values were produced outside this code base with:
    //   printf '%s' '<id>.<timestamp>.<body>' |
    //     openssl dgst -sha256 -mac HMAC -macopt hexkey:<key as hex> -binary | base64
    // (key hex from: printf '%s' '<base64 part>' | base64 -d | xxd -p -c 256).
    // The first is also the test vector published by Standard Webhooks.
    struct case_t {
        char const* name;
        char const* secret;
        char const* id;
        std::int64_t timestamp;
        char const* body;
        char const* expected;
    };
    case_t const cases[] = {
        {"standard webhooks vector", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
         1614265330, R"({"test": 2432232314})", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        // key hex 6b657900ff80627974657320616e64206d6f7265206279746573: a NUL and high bytes in the key
        {"binary key", "whsec_a2V5AP+AYnl0ZXMgYW5kIG1vcmUgYnl0ZXM=", "0b6c2f0e-6c1e-4a55-9d2a-0a5f3c1f9e11",
         1795894640, R"({"specversion":"1.0"})", "v1,Rmhie3NdxYHHiYZriK/TtX6Ef0xKX4QYYrzg9Gj8L6A="},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto const key = decode_webhook_secret(c.secret);
            BOOST_TEST_REQUIRE(key.has_value());
            BOOST_TEST(webhook_signature(*key, c.id, c.timestamp, c.body) == c.expected);
        }
    }
}

BOOST_AUTO_TEST_CASE(any_change_breaks_verification) {
    // A receiver verifies by recomputing over what it got.
    auto const key = *decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    auto const sent = webhook_signature(key, "msg_1", 1614265330, R"({"test": 1})");
    BOOST_TEST(webhook_signature(key, "msg_1", 1614265330, R"({"test": 1})") == sent);
    struct case_t {
        char const* name;
        std::string key;
        char const* id;
        std::int64_t timestamp;
        char const* body;
    };
    case_t const cases[] = {
        {"different body", key, "msg_1", 1614265330, R"({"test": 2})"},
        {"different id", key, "msg_2", 1614265330, R"({"test": 1})"},
        {"different timestamp", key, "msg_1", 1614265331, R"({"test": 1})"},
        {"different key", "other key", "msg_1", 1614265330, R"({"test": 1})"},
        // The dots are part of the signed content: moving them must change it.
        {"shifted separator", key, "msg_1.1614265330", 0, R"({"test": 1})"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto const other = webhook_signature(c.key, c.id, c.timestamp, c.body);
            BOOST_TEST(other.starts_with("v1,"));
            BOOST_TEST(other != sent);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
