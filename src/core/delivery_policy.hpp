#pragma once
// When to try a webhook delivery again (docs/events.md): after the first attempt
// 5s, 30s, 2m, 10m, 30m, 1h, then hourly, each ±10 %, a longer Retry-After
// wins; 2xx delivered; 410 dead at once; past max_age (counted from the
// event's commit) dead instead of another attempt.
#include <string>

#include "core/http_exchange.hpp"
#include "core/time.hpp"

namespace importwatch::core {

/// The nominal delay after `attempts` attempts (1 = after the first), unjittered.
milliseconds retry_schedule(int attempts);

struct delivery_verdict {
    enum kind_t { delivered, retry, dead } kind = delivered;
    sys_ms next_attempt{};       // for retry
    std::string error;           // what went wrong ("HTTP 503", "timeout: …"); "" when delivered
};

/// Judges attempt number `attempts` (1-based, this one included).
delivery_verdict judge_delivery(http_outcome const& outcome, int attempts, sys_ms committed,
                                milliseconds max_age, sys_ms now, random_source& rng);

} // namespace importwatch::core
