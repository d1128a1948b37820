#pragma once
// The one clock daemon code reads: wall time in milliseconds, handed to core
// as `now`. Wall time because LaunchDarkly's reset headers and our persisted
// times are wall time anyway.
#include <chrono>

#include "core/time.hpp"

namespace importwatch::daemon {

inline core::sys_ms wall_now() {
    return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

} // namespace importwatch::daemon
