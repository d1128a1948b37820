#pragma once
// The process-wide gate every LaunchDarkly request passes (README, "Rate limits"). LD limits
// per account, so one 429 pauses the whole process, not one watch.
//
//  - a token bucket for max_requests_per_second (0 = no cap), burst 1 s worth
//    (at least one token);
//  - paused_until, set by 429 (longest of Retry-After, X-Ratelimit-Reset and
//    full-jitter backoff over consecutive 429s) and by *-Remaining: 0 holds;
//  - after a pause, each waiter is released at paused_until plus its own
//    jitter, so requests resume spread out and never before the pause ends.
#include <array>
#include <cstdint>
#include <optional>

#include "core/config.hpp"
#include "core/http_exchange.hpp"
#include "core/http_headers.hpp"
#include "core/time.hpp"

namespace importwatch::core {

/// Header-given waits are honoured in full up to this.
inline constexpr milliseconds max_header_wait = std::chrono::hours(1);
/// LaunchDarkly's rate-limit headers (epoch milliseconds; requests left).
inline constexpr std::string_view reset_header = "X-Ratelimit-Reset";
inline constexpr std::string_view global_remaining_header = "X-Ratelimit-Global-Remaining";
inline constexpr std::string_view route_remaining_header = "X-Ratelimit-Route-Remaining";
/// Every header observe() reads: what a LaunchDarkly request keeps of the reply.
inline constexpr std::array<std::string_view, 5> rate_limit_headers{
    retry_after_header, date_header, reset_header, global_remaining_header, route_remaining_header};

/// Released waiters are spread over up to this much after a pause.
inline constexpr milliseconds resume_spread = std::chrono::seconds(1);

class rate_limit_gate {
public:
    rate_limit_gate(double max_requests_per_second, backoff_policy backoff);

    /// Applies a reloaded config; keeps any pause in force.
    void reconfigure(double max_requests_per_second, backoff_policy backoff);

    /// Asks for a permit. Returns `now` when the request may go (a token is
    /// taken); otherwise the instant to ask again (a later time, jittered
    /// after a pause).
    sys_ms acquire(sys_ms now, random_source& rng);

    /// What a response taught us about the account's limits.
    struct verdict {
        bool paused = false;      // this response started or extended a pause / hold
        sys_ms until{};           // the pause end when paused
    };
    /// Feed every LaunchDarkly response (any status).
    verdict observe(http_reply const& reply, sys_ms now, random_source& rng);

    sys_ms paused_until() const { return paused_until_; }
    int consecutive_429() const { return consecutive_429_; }
    std::uint64_t pauses_total() const { return pauses_total_; }
    /// Total time covered by pauses so far (overlaps counted once).
    milliseconds paused_total() const { return paused_total_; }

private:
    double rate_;
    backoff_policy backoff_;
    double tokens_;
    sys_ms refilled_at_{};
    sys_ms paused_until_{};
    int consecutive_429_ = 0;
    std::uint64_t pauses_total_ = 0;
    milliseconds paused_total_{0};
};

} // namespace importwatch::core
