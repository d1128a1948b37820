#pragma once
// The header values importwatch acts on in any HTTP reply: Retry-After (a
// delta or an HTTP-date), the server's Date (its clock's skew), and whole
// non-negative numbers. Used by polling (the rate-limit gate) and by webhook
// delivery alike.
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/time.hpp"

namespace importwatch::core {

inline constexpr std::string_view retry_after_header = "Retry-After";
inline constexpr std::string_view date_header = "Date";

/// Only clock differences larger than this are treated as skew (Date has 1 s resolution).
inline constexpr milliseconds max_tolerated_skew = std::chrono::seconds(2);

/// A whole header value as a non-negative integer (digits only, surrounding
/// whitespace ignored); all digits but too big saturates.
std::optional<std::uint64_t> parse_header_unsigned(std::string_view value);

/// Parses Retry-After (delta-seconds or HTTP-date) into a wait from `now`,
/// with the server's clock offset applied to dates. nullopt when absent/garbage.
std::optional<milliseconds> retry_after_wait(std::optional<std::string_view> retry_after,
                                             milliseconds server_offset, sys_ms now);

/// The server clock minus ours, when its Date differs by more than
/// max_tolerated_skew; else zero.
milliseconds server_clock_offset(std::optional<std::string_view> date, sys_ms now);

} // namespace importwatch::core
