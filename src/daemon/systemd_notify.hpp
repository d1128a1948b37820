#pragma once
// The service manager's notification protocol (sd_notify), the daemon's one
// door to systemd. Built without libsystemd (-DIMPORTWATCH_SYSTEMD=OFF, or
// the library missing), both functions do nothing, so callers never ask.
#include <chrono>
#include <optional>
#include <string>

namespace importwatch::daemon {

/// Sends newline-separated `KEY=value` assignments (READY=1, STATUS=…) to
/// systemd; a no-op unless NOTIFY_SOCKET is set.
void notify_systemd(std::string const& state);

/// The watchdog timeout systemd expects pings within (WatchdogSec=), or
/// nothing when the watchdog is off for this process.
std::optional<std::chrono::microseconds> systemd_watchdog_timeout();

} // namespace importwatch::daemon
