#pragma once
// Exponential backoff with full jitter (docs/configuration.md, polling.backoff):
// random(0, min(max, initial * multiplier^n)), and every retry rule of the
// poller built on it (the per-watch rules of a judged poll are in
// poll_decision, the process-wide 429 pause in rate_limit_gate).
#include "core/config.hpp"
#include "core/time.hpp"

namespace importwatch::core {

/// min(max, initial * multiplier^attempt); attempt counts from 0. Never overflows.
milliseconds backoff_ceiling(backoff_policy const& p, int attempt);
/// Uniform in [0, backoff_ceiling(p, attempt)].
milliseconds full_jitter(backoff_policy const& p, int attempt, random_source& rng);

/// When to repeat a poll whose outcome the state store could not commit: one
/// first-step backoff plus a second, so a struggling store gets a moment and
/// the watches do not retry in lockstep.
sys_ms commit_retry_time(backoff_policy const& p, sys_ms now, random_source& rng);

/// When to poll again after a poll ended in an unexpected error (a bug, not
/// anything LaunchDarkly said): backoff.max, as for a failed watch.
sys_ms unexpected_error_retry_time(backoff_policy const& p, sys_ms now);

} // namespace importwatch::core
