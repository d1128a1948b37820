#pragma once
// Time and randomness as values. Core never reads a clock or a global RNG:
// callers pass `now` and a random_source, so tests can pin every rule.
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace importwatch::core {

using std::chrono::milliseconds;
/// Wall-clock instant with millisecond resolution. All of core uses it:
/// LaunchDarkly's reset times and our persisted times are wall-clock anyway.
using sys_ms = std::chrono::sys_time<milliseconds>;

/// A source of uniform numbers in [0, 1).
class random_source {
public:
    virtual ~random_source() = default;
    virtual double next_unit() = 0;

    /// Uniform in [lo, hi].
    milliseconds between(milliseconds lo, milliseconds hi);
    /// 128 random bits as a lower-case RFC 4122 version 4 UUID.
    std::string uuid_v4();
};

/// The production source: a seeded Mersenne Twister.
class prng final : public random_source {
public:
    explicit prng(std::uint64_t seed) : engine_(seed) {}
    double next_unit() override;

private:
    std::mt19937_64 engine_;
};

/// RFC 3339 UTC with milliseconds: 2026-11-28T19:37:20.123Z
std::string format_rfc3339(sys_ms t);
/// Parses RFC 3339 (as written by format_rfc3339; also without fraction).
std::optional<sys_ms> parse_rfc3339(std::string_view s);
/// RFC 9110 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); also the two
/// obsolete forms a recipient must accept (RFC 850 and asctime).
std::optional<sys_ms> parse_http_date(std::string_view s);
/// IMF-fixdate of t (seconds resolution).
std::string format_http_date(sys_ms t);

} // namespace importwatch::core
