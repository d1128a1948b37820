#include "core/untrusted_text.hpp"

#include <cstdint>

namespace importwatch::core {

namespace {

struct decoded {
    char32_t cp;         // U+FFFD for an invalid sequence
    std::size_t length;  // bytes consumed (1 for an invalid lead byte)
    bool valid;
};

// One UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF).
decoded decode_at(std::string_view s, std::size_t i) {
    auto const b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return {b0, 1, true};
    std::size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2, cp = b0 & 0x1F, min = 0x80;
    else if (b0 >= 0xE0 && b0 <= 0xEF) len = 3, cp = b0 & 0x0F, min = 0x800;
    else if (b0 >= 0xF0 && b0 <= 0xF4) len = 4, cp = b0 & 0x07, min = 0x10000;
    else return {0xFFFD, 1, false};
    if (i + len > s.size()) return {0xFFFD, 1, false};
    for (std::size_t k = 1; k < len; ++k) {
        auto const b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return {0xFFFD, 1, false};
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0xFFFD, 1, false};
    return {cp, len, true};
}

// Whether s[i] starts something that must be rewritten (ASCII fast path).
bool safe_ascii(unsigned char b) { return b >= 0x20 && b < 0x7F; }

void append_u_escape(std::string& out, char32_t cp) {
    static constexpr char hex[] = "0123456789abcdef";
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 0xF];
}

// Whether anything in `s` needs rewriting by either form.
bool needs_rewrite(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto const b = static_cast<unsigned char>(s[i]);
        if (safe_ascii(b)) {
            ++i;
            continue;
        }
        auto const d = decode_at(s, i);
        if (!d.valid || is_unsafe_code_point(d.cp)) return true;
        i += d.length;
    }
    return false;
}

// Rewrites every unsafe character or invalid sequence with `escape`.
template <class Escape, class Invalid>
std::string rewrite(std::string_view s, Escape escape, Invalid invalid) {
    std::string out;
    out.reserve(s.size() + 16);
    for (std::size_t i = 0; i < s.size();) {
        auto const b = static_cast<unsigned char>(s[i]);
        if (safe_ascii(b)) {
            out += s[i++];
            continue;
        }
        auto const d = decode_at(s, i);
        if (!d.valid)
            invalid(out);
        else if (is_unsafe_code_point(d.cp))
            escape(out, d.cp);
        else
            out.append(s.substr(i, d.length));
        i += d.length;
    }
    return out;
}

} // namespace

std::string_view trim(std::string_view s) {
    auto const is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

std::string truncated(std::string_view s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) return std::string(s);
    std::size_t n = max_bytes;
    // Back up to a lead byte (at most 3 continuation bytes in valid UTF-8).
    for (int k = 0; k < 3 && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80; ++k) --n;
    std::string out;
    out.reserve(n + 3);
    out.append(s.substr(0, n));
    out += "\xE2\x80\xA6";   // …
    return out;
}

bool is_unsafe_code_point(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

std::string printable(std::string s) {
    if (!needs_rewrite(s)) return s;
    return rewrite(
        s,
        [](std::string& out, char32_t cp) {
            if (cp == '\n') out += "\\n";
            else if (cp == '\r') out += "\\r";
            else if (cp == '\t') out += "\\t";
            else append_u_escape(out, cp);
        },
        [](std::string& out) { out += "\xEF\xBF\xBD"; });
}

std::string json_printable(std::string json) {
    if (!needs_rewrite(json)) return json;
    return rewrite(
        json, [](std::string& out, char32_t cp) { append_u_escape(out, cp); },
        [](std::string& out) { out += "\\ufffd"; });
}

} // namespace importwatch::core
