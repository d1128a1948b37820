#pragma once
// What importwatch knows about one watch. The persisted part is stored by
// store::state_store whenever it changes; the streaks live only in memory.
// The last Import object itself is only in the store (a poll_decision hands
// a new one to it): in memory a watch holds its files and whether one is
// stored.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/import.hpp"
#include "core/time.hpp"

namespace importwatch::core {

struct watch_failure {
    std::string reason;              // unauthorized, forbidden, not_found, invalid_request,
                                     // client_error, invalid_response
    std::optional<int> http_status;  // null when none
    std::string message;
    bool operator==(watch_failure const&) const = default;
};

struct watch_state {
    // persisted
    std::optional<std::string> status;          // last status seen; nullopt before the first
    std::vector<import_file> files;             // of the stored Import, sorted by filename
    sys_ms status_since{};                      // when `status` was first seen
    std::uint64_t sequence = 0;                 // sequence of the last event emitted
    std::optional<watch_failure> failure;
    bool stall_reported = false;                // import.stalled sent for this status
    bool has_import = false;                    // an Import object is stored (its text only there)

    // in memory only
    int error_streak = 0;                       // consecutive failed polls: backoff step
    int invalid_streak = 0;                     // consecutive invalid responses
    int rate_limited_streak = 0;                // consecutive 429s on this watch's route
    bool unknown_status_warned = false;
    // The last 200 body decoded into this state: its size (0: none) and
    // SipHash-2-4. decide does not decode a byte-identical body again.
    std::uint32_t body_size = 0;
    std::uint64_t body_hash = 0;

    bool terminal() const;
};

} // namespace importwatch::core
