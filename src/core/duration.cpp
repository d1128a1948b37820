#include "core/duration.hpp"

#include <array>
#include <cstdint>
#include <limits>

namespace importwatch::core {

namespace {

struct unit {
    std::string_view suffix;
    std::int64_t ms;
};

// Largest first: parsing requires this order, formatting emits it.
constexpr std::array<unit, 5> units{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

} // namespace

std::optional<milliseconds> parse_duration(std::string_view text) {
    if (text == "0") return milliseconds{0};
    if (text.empty()) return std::nullopt;

    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    std::int64_t total = 0;
    std::size_t next_unit = 0;   // index into units: each unit once, descending
    std::size_t i = 0;
    while (i < text.size()) {
        if (!is_digit(text[i])) return std::nullopt;
        std::int64_t value = 0;
        while (i < text.size() && is_digit(text[i])) {
            int digit = text[i] - '0';
            if (value > (max - digit) / 10) return std::nullopt;
            value = value * 10 + digit;
            ++i;
        }
        std::size_t start = i;
        while (i < text.size() && !is_digit(text[i])) ++i;
        std::string_view suffix = text.substr(start, i - start);
        std::size_t found = units.size();
        for (std::size_t u = next_unit; u < units.size(); ++u) {
            if (units[u].suffix == suffix) {
                found = u;
                break;
            }
        }
        if (found == units.size()) return std::nullopt;   // unknown, repeated or out of order
        next_unit = found + 1;
        if (value > (max - total) / units[found].ms) return std::nullopt;
        total += value * units[found].ms;
    }
    return milliseconds{total};
}

std::string format_duration(milliseconds d) {
    std::int64_t rest = d.count();
    if (rest == 0) return "0s";
    std::string out;
    if (rest < 0) {
        out = "-";
        // -(min) overflows; no config duration comes near it.
        rest = rest == std::numeric_limits<std::int64_t>::min() ? std::numeric_limits<std::int64_t>::max()
                                                                 : -rest;
    }
    for (auto const& u : units) {
        if (rest >= u.ms) {
            out += std::to_string(rest / u.ms);
            out += u.suffix;
            rest %= u.ms;
        }
    }
    return out;
}

} // namespace importwatch::core
