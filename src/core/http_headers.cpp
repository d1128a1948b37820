#include "core/http_headers.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "core/untrusted_text.hpp"

namespace importwatch::core {

std::optional<std::uint64_t> parse_header_unsigned(std::string_view s) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    std::uint64_t v = 0;
    auto const [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range) {
        // All digits but too big: saturate (still "a very long time").
        bool const all_digits = std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (all_digits) return std::numeric_limits<std::uint64_t>::max();
        return std::nullopt;
    }
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<milliseconds> retry_after_wait(std::optional<std::string_view> retry_after,
                                             milliseconds server_offset, sys_ms now) {
    if (!retry_after) return std::nullopt;
    auto const text = trim(*retry_after);
    if (!text.empty() && text.front() >= '0' && text.front() <= '9') {
        auto const secs = parse_header_unsigned(text);
        if (!secs) return std::nullopt;
        // Saturate absurd values (about 31,000 years); the caller caps the wait anyway.
        constexpr std::uint64_t max_secs = 1'000'000'000'000;
        return milliseconds{static_cast<milliseconds::rep>(std::min(*secs, max_secs) * 1000)};
    }
    auto const date = parse_http_date(text);
    if (!date) return std::nullopt;
    // The date is on the server's clock; ours is server - offset.
    return std::max(milliseconds{0}, *date - server_offset - now);
}

milliseconds server_clock_offset(std::optional<std::string_view> date, sys_ms now) {
    if (!date) return milliseconds{0};
    auto const server = parse_http_date(*date);
    if (!server) return milliseconds{0};
    auto const diff = *server - now;
    if (diff > max_tolerated_skew || diff < -max_tolerated_skew) return diff;
    return milliseconds{0};
}

} // namespace importwatch::core
