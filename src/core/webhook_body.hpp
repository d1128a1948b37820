#pragma once
// What a webhook's request body is made of an event, per `format`
// (docs/events.md, "Webhook formats"): the CloudEvent itself, a Slack
// incoming-webhook message, or a body template over the event's fields.
// The body is rendered once, when the event is committed to the outbox, so
// every attempt (and a replay) sends, and signs, the same bytes.
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/event.hpp"
#include "core/expected.hpp"

namespace importwatch::core {

/// The fields a body template may name, in the order docs/events.md lists
/// them. Every value is text, JSON-escaped; a value the event does not have
/// is empty.
inline constexpr std::string_view body_template_fields[] = {
    "id",          "type",      "time",     "source",          "subject",              "watch",
    "labels",      "project",   "environment", "segment",      "import_id",            "sequence",
    "previous_status", "status", "terminal", "filename",       "previous_file_status", "file_status",
    "reason",      "http_status", "message", "files",          "summary",              "segment_url",
};

/// Bounds on a template, and so on what it makes of one event (every value
/// is short: server text is cut at 256 bytes, `files` lists 10 files).
inline constexpr std::size_t max_body_template_bytes = 16 * 1024;
inline constexpr std::size_t max_body_template_fields = 32;

/// The Content-Type header of a format's bodies.
std::string_view content_type(webhook_format format);

/// The LaunchDarkly UI page of a watch's segment in its environment, on the
/// host of `base_url` (the API's): base_url + /projects/P/segments/S/targeting?env=E&selected-env=E.
std::string segment_url(std::string_view base_url, watch_key const& key);

/// Checks a body template when the config is loaded: within the bounds
/// above, fmt syntax with named fields only, every field known, and rendered
/// for a sample event it must be JSON. The error says what is wrong (the
/// caller adds where).
expected<void> check_body_template(std::string_view body_template);

/// The body `hook` sends for `e` (whose body is the CloudEvent). `base_url`
/// is launchdarkly.base_url, for the segment link. A template that passed
/// check_body_template always renders.
std::string webhook_body(webhook_config const& hook, event const& e, std::string_view base_url);

} // namespace importwatch::core
