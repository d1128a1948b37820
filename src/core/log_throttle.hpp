#pragma once
// Keeps a repeated identical error (same watch, same cause) to one log line a
// minute, with a count of the repeats it held back.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/time.hpp"

namespace importwatch::core {

class log_throttle {
public:
    explicit log_throttle(milliseconds window = std::chrono::minutes(1)) : window_(window) {}

    /// nullopt: hold this one back. Otherwise log it, mentioning the returned
    /// number of repeats held back since the last line (0 = none).
    std::optional<std::uint64_t> admit(std::string const& key, sys_ms now);
    /// The cause went away (e.g. a successful poll): the next error logs at once.
    void clear(std::string const& key);
    /// Nothing held: clear() has nothing to do (callers skip building a key).
    bool empty() const { return entries_.empty(); }

private:
    struct entry {
        sys_ms last_logged{};
        std::uint64_t held = 0;
    };
    milliseconds window_;
    std::map<std::string, entry> entries_;
};

} // namespace importwatch::core
