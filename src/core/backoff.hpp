#pragma once
// Exponential backoff with full jitter (docs/configuration.md, polling.backoff):
// random(0, min(max, initial * multiplier^n)).
#include "core/config.hpp"
#include "core/time.hpp"

namespace importwatch::core {

/// min(max, initial * multiplier^attempt); attempt counts from 0. Never overflows.
milliseconds backoff_ceiling(backoff_policy const& p, int attempt);
/// Uniform in [0, backoff_ceiling(p, attempt)].
milliseconds full_jitter(backoff_policy const& p, int attempt, random_source& rng);

} // namespace importwatch::core
