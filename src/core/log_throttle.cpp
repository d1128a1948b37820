#include "core/log_throttle.hpp"

namespace importwatch::core {

std::optional<std::uint64_t> log_throttle::admit(std::string const& key, sys_ms now) {
    auto [it, fresh] = entries_.try_emplace(key);
    auto& e = it->second;
    if (!fresh && now - e.last_logged < window_) {
        ++e.held;
        return std::nullopt;
    }
    auto held = e.held;
    e.held = 0;
    e.last_logged = now;
    return held;
}

void log_throttle::clear(std::string const& key) { entries_.erase(key); }

} // namespace importwatch::core
