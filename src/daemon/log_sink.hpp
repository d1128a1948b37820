#pragma once
// Logging (docs/events.md, "Log lines"): every line goes to stderr as text
//   2026-11-28T19:37:20.123Z info vip-nightly status in_progress -> complete (…)
// or as one JSON object per line with ts, level, msg (and `event` for events).
// Other modules log with plain spdlog calls; configure_logging installs the
// formatter that turns them into these shapes.
#include <string>

#include <boost/json/object.hpp>

#include "core/config.hpp"
#include "core/event.hpp"

namespace importwatch::daemon {

/// Installs the logger with the given format and level (again on reload).
/// Logs go to stderr; `demo` sends them to stdout, where its events belong.
void configure_logging(core::log_format format, core::log_level level, bool to_stdout = false);

/// Logs a non-event line with structured fields: in json mode the
/// fields sit beside ts, level and msg; in text mode the line is just `msg`,
/// which must say everything by itself.
void log_fields(core::log_level level, std::string const& msg, boost::json::object fields);

/// Logs one event line (level from the event) in the configured format.
void log_event(core::event const& e);

/// The text form of an event line, also printed by `importwatch wait`.
std::string event_text_line(core::event const& e);

char const* to_string(core::log_level level);

} // namespace importwatch::daemon
