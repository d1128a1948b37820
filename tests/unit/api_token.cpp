#define BOOST_TEST_MODULE api_token
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/api_token.hpp"

using namespace importwatch::core;
using namespace std::string_literals;

BOOST_AUTO_TEST_SUITE(api_token)

BOOST_AUTO_TEST_CASE(secret_text_drops_a_bom_and_trailing_whitespace) {
    struct case_t {
        char const* name;
        std::string text;
        std::string meant;
    };
    case_t const cases[] = {
        {"as is", "api-abc123", "api-abc123"},
        {"final newline", "api-abc123\n", "api-abc123"},
        {"CR LF from Windows", "api-abc123\r\n", "api-abc123"},
        {"BOM and CR LF", "\xEF\xBB\xBF" "api-abc123\r\n", "api-abc123"},
        {"trailing blanks and tabs", "api-abc123 \t \n\n", "api-abc123"},
        // Only a leading BOM is dropped: leading blanks stay, and make the token invalid.
        {"leading blank", " api-abc123", " api-abc123"},
        {"BOM only", "\xEF\xBB\xBF", ""},
        {"BOM twice", "\xEF\xBB\xBF\xEF\xBB\xBF" "x", "\xEF\xBB\xBF" "x"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) { BOOST_TEST(std::string(secret_text(c.text)) == c.meant); }
    }
}

BOOST_AUTO_TEST_CASE(a_token_is_printable_ascii_without_spaces_up_to_4_kib) {
    BOOST_TEST(check_api_token("api-0123abcd-ef45-6789-abcd-ef0123456789").has_value());
    BOOST_TEST(check_api_token(std::string(4096, 'a')).has_value());
    BOOST_TEST(check_api_token("!~").has_value());

    struct case_t {
        char const* name;
        std::string token;
        std::string error;
    };
    std::string const characters =
        "the token holds a space, a control character or a byte that is not ASCII "
        "(a token is printable ASCII without spaces)";
    case_t const cases[] = {
        {"empty", "", "the token is empty"},
        {"4097 bytes", std::string(4097, 's'), "the token is 4097 bytes; at most 4096 are allowed"},
        {"100 KB", std::string(100000, 's'), "the token is 100000 bytes; at most 4096 are allowed"},
        {"inner space", "api-secret part", characters},
        {"leading blank", " api-secret", characters},
        {"tab", "api-secret\tx", characters},
        {"CR LF inside (header injection)", "api-secret\r\nX-Evil: 1", characters},
        {"NUL", "api-secret\0x"s, characters},
        {"DEL", "api-secret\x7f", characters},
        {"a BOM not at the start of the file", "\xEF\xBB\xBF" "api-secret", characters},
        {"UTF-8", "api-secr\xC3\xA9t", characters},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto const r = check_api_token(c.token);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error() == c.error);
            BOOST_TEST(r.error().find("secret") == std::string::npos);   // never quoted
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
