#pragma once
// Logging (SPEC §4): every line goes to stderr as text
//   2026-11-28T19:37:20.123Z info vip-nightly status in_progress -> complete (…)
// or as one JSON object per line with ts, level, msg (and `event` for events).
// Other modules log with plain spdlog calls; configure_logging installs the
// formatter that turns them into these shapes.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/config.hpp"
#include "core/event.hpp"

namespace importwatch::daemon {

/// Installs the logger with the given format and level (again on reload).
/// Logs go to stderr; `demo` sends them to stdout, where its events belong.
void configure_logging(core::log_format format, core::log_level level, bool to_stdout = false);

/// Logs one event line (level from the event) in the configured format.
void log_event(core::event const& e);

/// The text form of an event line, also printed by `importwatch wait`.
std::string event_text_line(core::event const& e);

char const* to_string(core::log_level level);

/// Keeps a repeated identical error (same watch, same cause) to one line a
/// minute, with a count of the repeats it held back.
class error_throttle {
public:
    explicit error_throttle(std::chrono::milliseconds window = std::chrono::minutes(1)) : window_(window) {}

    /// nullopt: hold this one back. Otherwise log it, mentioning the returned
    /// number of repeats held back since the last line (0 = none).
    std::optional<std::uint64_t> admit(std::string const& key, core::sys_ms now);
    /// The cause went away (e.g. a successful poll): the next error logs at once.
    void clear(std::string const& key);

private:
    struct entry {
        core::sys_ms last_logged{};
        std::uint64_t held = 0;
    };
    std::chrono::milliseconds window_;
    std::map<std::string, entry> entries_;
};

} // namespace importwatch::daemon
