#pragma once
// Logging (docs/events.md, "Log lines"): every line goes to stderr as text
//   2026-11-28T19:37:20.123Z info vip-nightly status in_progress -> complete (…)
// or as one JSON object per line with ts, level, msg (and `event` for events).
// Other modules log with plain spdlog calls, which the sink formats; events
// and lines with fields reach it whole, through log_event and log_fields.
#include <iosfwd>
#include <mutex>
#include <string>

#include <boost/json/object.hpp>
#include <spdlog/sinks/base_sink.h>

#include "core/config.hpp"
#include "core/event.hpp"

namespace importwatch::daemon {

/// Writes log lines in one format to one stream. The format is the sink's
/// own (set at construction, changed by a reload): two sinks in one process
/// may write different formats.
class log_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    /// `journal`: every line starts with its sd-daemon priority prefix.
    log_sink(std::ostream& out, core::log_format format, bool journal = false);

    void set_line_format(core::log_format format);

    /// One event line (level from the event). The JSON form carries the
    /// event's serialized CloudEvent as `event`, byte for byte.
    void write_event(core::event const& e);
    /// One line with structured fields: in json format they sit beside ts,
    /// level and msg; in text format the line is just `msg`.
    void write_fields(core::log_level level, std::string const& msg, boost::json::object const& fields);

private:
    void sink_it_(spdlog::details::log_msg const& msg) override;
    void flush_() override;
    /// Writes one whole line (the mutex held), made safe for a terminal.
    void write_line(spdlog::level::level_enum level, std::string line);

    std::ostream& out_;
    core::log_format format_;
    bool journal_;
};

/// Installs the logger with the given format and level (again on reload).
/// Logs go to stderr; `demo` sends them to stdout, where its events belong.
void configure_logging(core::log_format format, core::log_level level, bool to_stdout = false);

/// Logs a non-event line with structured fields through the default logger
/// (a sink that is not a log_sink gets just `msg`).
void log_fields(core::log_level level, std::string const& msg, boost::json::object const& fields);

/// Logs one event line (level from the event) through the default logger
/// (a sink that is not a log_sink gets event_text_line).
void log_event(core::event const& e);

/// The text form of an event line, also printed by `importwatch wait`.
std::string event_text_line(core::event const& e);

char const* to_string(core::log_level level);

} // namespace importwatch::daemon
