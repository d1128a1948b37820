#pragma once
// An import's status (launchdarkly/get-big-segment-import.md): the one list of
// the statuses LaunchDarkly documents. The config's per-status keys, metric
// labels and terminal checks all come from it. A status is kept as the server
// sent it (watch state, events, logs); the enum classifies that text, and a
// status LaunchDarkly may add later is `unknown`, its text kept verbatim.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace importwatch::core {

enum class import_status { preparing, pending_approval, ready, in_progress, complete, stopped, unknown };

/// The documented statuses, in lifecycle order (the enum's order).
inline constexpr std::array<import_status, 6> known_statuses{
    import_status::preparing,   import_status::pending_approval, import_status::ready,
    import_status::in_progress, import_status::complete,         import_status::stopped,
};
/// How many values import_status has, unknown included (arrays indexed by it).
inline constexpr std::size_t import_status_count = known_statuses.size() + 1;

/// The documented name, or "unknown".
constexpr std::string_view to_string(import_status status) {
    switch (status) {
    case import_status::preparing: return "preparing";
    case import_status::pending_approval: return "pending_approval";
    case import_status::ready: return "ready";
    case import_status::in_progress: return "in_progress";
    case import_status::complete: return "complete";
    case import_status::stopped: return "stopped";
    case import_status::unknown: break;
    }
    return "unknown";
}

/// complete and stopped end a watch; unknown statuses are non-terminal.
constexpr bool is_terminal(import_status status) {
    return status == import_status::complete || status == import_status::stopped;
}

/// The documented statuses a watch is still polled in (the non-terminal
/// ones): the keys of the config's per-status settings (status_intervals).
inline constexpr std::array<std::string_view, 4> polled_status_names{
    to_string(import_status::preparing), to_string(import_status::pending_approval),
    to_string(import_status::ready), to_string(import_status::in_progress)};

import_status classify_status(std::string_view status);
bool is_terminal(std::string_view status);

/// Every value a status metric label takes: "none" (no status observed yet),
/// the documented statuses, and "unknown". Never server text, so a server
/// inventing statuses cannot grow /metrics.
inline constexpr std::array<std::string_view, import_status_count + 1> status_labels{
    "none",
    to_string(import_status::preparing),
    to_string(import_status::pending_approval),
    to_string(import_status::ready),
    to_string(import_status::in_progress),
    to_string(import_status::complete),
    to_string(import_status::stopped),
    to_string(import_status::unknown),
};
/// A watch's last status as a metric label (one of status_labels).
std::string_view status_label(std::optional<std::string> const& status);

} // namespace importwatch::core
