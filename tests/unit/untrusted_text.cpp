#define BOOST_TEST_MODULE untrusted_text
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <string>

#include <boost/json/parse.hpp>

#include "core/untrusted_text.hpp"

using namespace importwatch::core;

namespace {

struct text_case {
    char const* name;
    std::string in;
    std::string text;   // printable(in)
    std::string json;   // json_printable(serialized string of in), without the quotes
};

// Every character class the text forms must neutralise, as raw UTF-8.
text_case const cases[] = {
    {"plain ASCII", "in_progress", "in_progress", "in_progress"},
    {"printable non-ASCII", "caf\xC3\xA9 \xE2\x9C\x93", "caf\xC3\xA9 \xE2\x9C\x93", "caf\xC3\xA9 \xE2\x9C\x93"},
    {"newline, CR, tab", "a\nb\rc\td", "a\\nb\\rc\\td", "a\\nb\\rc\\td"},
    {"ESC (a terminal sequence)", "\x1b[31mred", "\\u001b[31mred", "\\u001b[31mred"},
    {"BEL and NUL", std::string("a\x07" "b\0c", 5), "a\\u0007b\\u0000c", "a\\u0007b\\u0000c"},
    {"DEL", "a\x7f" "b", "a\\u007fb", "a\\u007fb"},
    {"C1 CSI U+009B", "a\xC2\x9B" "31mb", "a\\u009b31mb", "a\\u009b31mb"},
    {"C1 NEL U+0085", "a\xC2\x85" "b", "a\\u0085b", "a\\u0085b"},
    {"U+0080 and U+009F", "\xC2\x80\xC2\x9F", "\\u0080\\u009f", "\\u0080\\u009f"},
    {"U+00A0 is not a control", "a\xC2\xA0" "b", "a\xC2\xA0" "b", "a\xC2\xA0" "b"},
    {"line separator U+2028", "a\xE2\x80\xA8" "b", "a\\u2028b", "a\\u2028b"},
    {"paragraph separator U+2029", "a\xE2\x80\xA9" "b", "a\\u2029b", "a\\u2029b"},
    {"RLO U+202E", "evil\xE2\x80\xAEtxt.exe", "evil\\u202etxt.exe", "evil\\u202etxt.exe"},
    {"LRE U+202A", "\xE2\x80\xAA", "\\u202a", "\\u202a"},
    {"LRI..PDI U+2066-2069", "\xE2\x81\xA6\xE2\x81\xA7\xE2\x81\xA8\xE2\x81\xA9", "\\u2066\\u2067\\u2068\\u2069",
     "\\u2066\\u2067\\u2068\\u2069"},
    {"U+2065 and U+206A are left alone", "\xE2\x81\xA5\xE2\x81\xAA", "\xE2\x81\xA5\xE2\x81\xAA",
     "\xE2\x81\xA5\xE2\x81\xAA"},
    {"emoji (4 bytes)", "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
};

// Invalid UTF-8: each bad byte becomes one U+FFFD.
struct invalid_case {
    char const* name;
    std::string in;
    std::string text;
};
std::string const fffd = "\xEF\xBF\xBD";
invalid_case const invalid[] = {
    {"lone continuation byte", "a\x80" "b", "a" + fffd + "b"},
    {"truncated sequence at the end", "a\xE2\x80", "a" + fffd + fffd},
    {"overlong slash", "\xC0\xAF", fffd + fffd},
    {"overlong NUL (3 bytes)", "\xE0\x80\x80", fffd + fffd + fffd},
    {"surrogate U+D800", "\xED\xA0\x80", fffd + fffd + fffd},
    {"above U+10FFFF", "\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},
    {"0xFF", "\xFF", fffd},
    {"C1 as a raw Latin-1 byte", "a\x9B" "b", "a" + fffd + "b"},
};

} // namespace

BOOST_AUTO_TEST_SUITE(untrusted_text)

BOOST_AUTO_TEST_CASE(printable_escapes_every_unsafe_character) {
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            BOOST_TEST(printable(c.in) == c.text);
            // Idempotent: a line escaped twice (core, then the log sink) reads the same.
            BOOST_TEST(printable(printable(c.in)) == c.text);
        }
    }
}

BOOST_AUTO_TEST_CASE(printable_replaces_invalid_utf8) {
    for (auto const& c : invalid) {
        BOOST_TEST_CONTEXT(c.name) { BOOST_TEST(printable(c.in) == c.text); }
    }
}

BOOST_AUTO_TEST_CASE(json_printable_escapes_inside_strings_and_stays_equivalent_json) {
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            // What boost::json::serialize writes for the string (raw C1, U+2028, bidi; escaped C0).
            std::string serialized = "\"";
            for (char ch : c.in) {
                auto const b = static_cast<unsigned char>(ch);
                if (ch == '\n') serialized += "\\n";
                else if (ch == '\r') serialized += "\\r";
                else if (ch == '\t') serialized += "\\t";
                else if (b < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", b);
                    serialized += buf;
                } else serialized += ch;
            }
            serialized += '"';
            auto const out = json_printable(serialized);
            BOOST_TEST(out == "\"" + c.json + "\"");
            // Same value after parsing: only the spelling changed.
            BOOST_TEST(boost::json::parse(out) == boost::json::parse(serialized));
        }
    }
}

BOOST_AUTO_TEST_CASE(json_printable_makes_invalid_utf8_valid_json) {
    auto const out = json_printable("{\"s\":\"a\x9B" "b\xC0\xAF\"}");
    BOOST_TEST(out == "{\"s\":\"a\\ufffdb\\ufffd\\ufffd\"}");
    BOOST_TEST(boost::json::parse(out).at("s").as_string() == "a" + fffd + "b" + fffd + fffd);
}

BOOST_AUTO_TEST_CASE(truncated_keeps_short_text_and_cuts_long_text_on_a_character_boundary) {
    BOOST_TEST(truncated("abc", 3) == "abc");
    BOOST_TEST(truncated("abcd", 3) == "abc\xE2\x80\xA6");
    BOOST_TEST(truncated(std::string(10'000, 'x')) == std::string(max_peer_text, 'x') + "\xE2\x80\xA6");
    // "é" is 2 bytes: a cut in the middle backs up before it.
    BOOST_TEST(truncated("ab\xC3\xA9" "cd", 3) == "ab\xE2\x80\xA6");
    // A 4-byte emoji cut after 1, 2 or 3 of its bytes.
    for (std::size_t n : {3u, 4u, 5u}) {
        BOOST_TEST_CONTEXT(n) { BOOST_TEST(truncated("ab\xF0\x9F\x98\x80" "cd", n) == "ab\xE2\x80\xA6"); }
    }
    BOOST_TEST(truncated("ab\xF0\x9F\x98\x80" "cd", 6) == "ab\xF0\x9F\x98\x80\xE2\x80\xA6");
    // Garbage (all continuation bytes) still gets cut, never grows past the limit by more than "…".
    BOOST_TEST(truncated(std::string(100, '\x80'), 10).size() <= 13u);
}

BOOST_AUTO_TEST_CASE(unsafe_code_points) {
    for (char32_t cp : {0x00, 0x1F, 0x7F, 0x80, 0x85, 0x9B, 0x9F, 0x2028, 0x2029, 0x202A, 0x202E, 0x2066, 0x2069})
        BOOST_TEST_CONTEXT(static_cast<unsigned>(cp)) { BOOST_TEST(is_unsafe_code_point(cp)); }
    for (char32_t cp : {0x20, 0x7E, 0xA0, 0xE9, 0x2027, 0x202F, 0x2065, 0x206A, 0xFFFD, 0x1F600})
        BOOST_TEST_CONTEXT(static_cast<unsigned>(cp)) { BOOST_TEST(!is_unsafe_code_point(cp)); }
}

BOOST_AUTO_TEST_SUITE_END()
