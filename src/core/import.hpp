#pragma once
// LaunchDarkly's Import object (launchdarkly/get-big-segment-import.md).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "core/expected.hpp"
#include "core/import_status.hpp"

namespace importwatch::core {

struct import_file {
    std::string filename;
    std::string status;
    auto operator<=>(import_file const&) const = default;
};

struct import_snapshot {
    std::string id;
    std::string segment_key;
    std::int64_t creation_time = 0;           // epoch milliseconds
    std::string mode;
    std::string status;
    std::vector<import_file> files;           // sorted by filename; empty if absent/null
    boost::json::value json;                  // the object as returned, for events
};

/// Response bodies above this are invalid responses.
inline constexpr std::size_t max_import_body = 1024 * 1024;
/// A status (the import's or a file's) longer than this is an invalid
/// response: LaunchDarkly's are at most 16 bytes, and statuses end up in
/// events, log lines and state.
inline constexpr std::size_t max_status_bytes = 64;
/// In decode_import's error when a status was longer than that (for counting).
inline constexpr std::string_view over_status_limit = "longer than the status limit";

/// Decodes a 200 body. Errors name the problem ("missing field status",
/// "field creationTime: expected integer", "malformed JSON: …").
expected<import_snapshot> decode_import(std::string_view body);

/// Files from a stored Import JSON (for restoring state); empty on any error.
std::vector<import_file> files_of(boost::json::value const& import_json);

} // namespace importwatch::core
