#pragma once
// CloudEvents 1.0 (structured mode) for the five event types. See docs/events.md.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/config.hpp"
#include "core/time.hpp"

namespace importwatch::core {

inline constexpr std::string_view status_changed_type = "importwatch.import.status_changed";
inline constexpr std::string_view file_status_changed_type = "importwatch.import.file_status_changed";
inline constexpr std::string_view stalled_type = "importwatch.import.stalled";
inline constexpr std::string_view watch_failed_type = "importwatch.watch.failed";
inline constexpr std::string_view watch_recovered_type = "importwatch.watch.recovered";
/// All of them (a webhook's `types` must name these).
inline constexpr std::array<std::string_view, 5> event_types{
    status_changed_type, file_status_changed_type, stalled_type, watch_failed_type, watch_recovered_type,
};

/// An event carries the Import object whole when it serializes to at most
/// this many bytes; a larger one is shortened (bounded_import).
inline constexpr std::size_t max_event_import_bytes = 16 * 1024;

/// The Import object as events carry it, given its serialized size: `import`
/// itself when it fits in max_event_import_bytes; else a copy whose `files`
/// list keeps as many leading entries as fit, plus
/// `"_importwatch": {"files_omitted": N, "original_bytes": B}`; and when even
/// that cannot fit, only `id`, `segmentKey`, `creationTime`, `mode` and
/// `status` (strings truncated) plus `"_importwatch": {"truncated": true,
/// "original_bytes": B}`. Null stays null.
boost::json::value bounded_import(boost::json::value const& import, std::size_t serialized_size);

struct event {
    std::string id;            // UUID v4; the same across retries and restarts
    std::string type;
    std::uint64_t sequence = 0;
    sys_ms time{};
    log_level level = log_level::info;
    /// The CloudEvent, serialized once (make_event): these bytes are the
    /// outbox row and webhook body (cloudevents format) and the `event` of
    /// the JSON log line, never parsed again on the way.
    std::string body;
    /// The text log line after "<time> <level> ", e.g.
    /// "vip-nightly status in_progress -> complete (default/production/vip-users/1234…)"
    std::string summary;
};

/// Everything an event of one watch shares; the type-specific keys go in `extra`.
struct event_subject {
    watch_config const& watch;
    std::string_view base_url;                 // for the CloudEvent source
    std::optional<std::string> const& status;  // after this event (null before first observation)
    /// The Import object, serialized and already bounded (bounded_import);
    /// empty when none was received yet (the event says null). Spliced into
    /// the event as it is: the Import is serialized once per decision, not
    /// once per event.
    std::string_view import_json;
};

/// Builds one event. `extra` is a JSON object whose members are added to
/// `data` (previous_status, filename, reason, …).
event make_event(event_subject const& subject, std::string_view type, std::uint64_t sequence,
                 boost::json::object extra, std::string summary, log_level level, sys_ms now,
                 random_source& rng);

/// Puts an Import (serialized and bounded, as event_subject::import_json) into
/// an event made without one, whose body ends in "import":null: the stored
/// Import a watch.failed carries, read after the decision (core::carry_stored_import).
/// The body is then what make_event would have made with it.
void put_import(event& e, std::string_view import_json);

} // namespace importwatch::core
