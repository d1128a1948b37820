#include "core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace importwatch::core {

milliseconds backoff_ceiling(backoff_policy const& p, int attempt) {
    if (p.max <= milliseconds{0} || p.initial <= milliseconds{0}) return milliseconds{0};
    auto const cap = static_cast<double>(p.max.count());
    // In double space initial * multiplier^attempt saturates at +inf instead of
    // overflowing, and the comparison with max clamps it.
    double const grown = static_cast<double>(p.initial.count()) *
                         std::pow(std::max(p.multiplier, 1.0), std::max(attempt, 0));
    if (!(grown < cap)) return p.max;  // also catches inf and NaN
    return milliseconds{static_cast<milliseconds::rep>(std::llround(grown))};
}

milliseconds full_jitter(backoff_policy const& p, int attempt, random_source& rng) {
    return rng.between(milliseconds{0}, backoff_ceiling(p, attempt));
}

sys_ms commit_retry_time(backoff_policy const& p, sys_ms now, random_source& rng) {
    return now + full_jitter(p, 0, rng) + std::chrono::seconds(1);
}

sys_ms unexpected_error_retry_time(backoff_policy const& p, sys_ms now) { return now + p.max; }

} // namespace importwatch::core
