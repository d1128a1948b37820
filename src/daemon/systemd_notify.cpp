#include "daemon/systemd_notify.hpp"

// The only file that knows whether libsystemd is there (CMake defines this).
#if IMPORTWATCH_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace importwatch::daemon {

#if IMPORTWATCH_HAVE_SYSTEMD

void notify_systemd(std::string const& state) { sd_notify(0, state.c_str()); }

std::optional<std::chrono::microseconds> systemd_watchdog_timeout() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
    return std::chrono::microseconds(usec);
}

#else

void notify_systemd(std::string const&) {}

std::optional<std::chrono::microseconds> systemd_watchdog_timeout() { return std::nullopt; }

#endif

} // namespace importwatch::daemon
