#pragma once
// Config durations: "500ms", "30s", "5m", "1h30m", "30d"; "0" means zero.
#include <optional>
#include <string>
#include <string_view>

#include "core/time.hpp"

namespace importwatch::core {

std::optional<milliseconds> parse_duration(std::string_view text);
/// Shortest exact form: 90000ms -> "1m30s", 500ms -> "500ms", 0 -> "0s".
std::string format_duration(milliseconds d);

} // namespace importwatch::core
