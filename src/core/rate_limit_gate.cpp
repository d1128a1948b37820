#include "core/rate_limit_gate.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/backoff.hpp"
#include "core/http_headers.hpp"
#include "core/untrusted_text.hpp"

namespace importwatch::core {

namespace {

// Floating-point refill may leave 0.9999999 where 1 was meant.
constexpr double token_epsilon = 1e-9;

// Beyond this, epoch-millisecond values are nonsense (about ±31,000 years);
// clamping keeps the arithmetic below far from overflow.
constexpr std::int64_t max_sane_ms = 1'000'000'000'000'000;

double capacity_for(double rate) { return std::max(1.0, rate); }

bool uncapped(double rate) { return !(rate > 0.0); }

/// X-Ratelimit-Reset (epoch ms, server clock) as a local instant.
std::optional<sys_ms> reset_local(std::optional<std::string_view> reset, milliseconds offset) {
    if (!reset) return std::nullopt;
    auto const s = trim(*reset);
    std::int64_t v = 0;
    auto const [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    v = std::clamp(v, -max_sane_ms, max_sane_ms);
    return sys_ms{milliseconds{v}} - offset;
}

bool says_zero(std::optional<std::string_view> remaining) {
    if (!remaining) return false;
    auto const v = parse_header_unsigned(*remaining);
    return v && *v == 0;
}

} // namespace

rate_limit_gate::rate_limit_gate(double max_requests_per_second, backoff_policy backoff)
    : rate_(max_requests_per_second), backoff_(backoff), tokens_(capacity_for(max_requests_per_second)) {}

void rate_limit_gate::reconfigure(double max_requests_per_second, backoff_policy backoff) {
    bool const was_uncapped = uncapped(rate_);
    rate_ = max_requests_per_second;
    backoff_ = backoff;
    // A new cap starts with a full bucket; a changed one keeps what is left.
    tokens_ = was_uncapped ? capacity_for(rate_) : std::min(tokens_, capacity_for(rate_));
}

sys_ms rate_limit_gate::acquire(sys_ms now, random_source& rng) {
    if (!uncapped(rate_)) {
        if (now > refilled_at_) {
            auto const elapsed = std::chrono::duration<double>(now - refilled_at_).count();
            tokens_ = std::min(capacity_for(rate_), tokens_ + elapsed * rate_);
        }
        refilled_at_ = std::max(refilled_at_, now);
    }

    // Waiters wake at the pause end plus their own jitter so they do not all
    // hit the API in the same millisecond.
    if (now < paused_until_) return paused_until_ + rng.between(milliseconds{0}, resume_spread);

    if (uncapped(rate_)) return now;
    if (tokens_ + token_epsilon >= 1.0) {
        tokens_ = std::max(0.0, tokens_ - 1.0);
        return now;
    }
    auto const due_ms = std::ceil((1.0 - tokens_) / rate_ * 1000.0 - token_epsilon);
    return now + milliseconds{std::max<milliseconds::rep>(1, static_cast<milliseconds::rep>(due_ms))};
}

rate_limit_gate::verdict rate_limit_gate::observe(http_reply const& reply, sys_ms now,
                                                  random_source& rng) {
    auto const offset = server_clock_offset(reply.header(date_header), now);
    auto const reset = reset_local(reply.header(reset_header), offset);

    auto const extend = [&](sys_ms until) {
        auto const covered_from = std::max(now, paused_until_);
        if (until > covered_from) paused_total_ += until - covered_from;
        paused_until_ = std::max(paused_until_, until);
        ++pauses_total_;
        return verdict{true, paused_until_};
    };

    if (reply.status == 429) {
        ++consecutive_429_;
        milliseconds wait{0};
        if (auto const ra = retry_after_wait(reply.header(retry_after_header), offset, now)) {
            wait = std::max(wait, std::clamp(*ra, milliseconds{0}, max_header_wait));
        }
        if (reset) {
            // A reset in the past (LD does send those) counts as no wait.
            wait = std::max(wait, std::clamp(*reset - now, milliseconds{0}, max_header_wait));
        }
        wait = std::max(wait, full_jitter(backoff_, consecutive_429_ - 1, rng));
        return extend(now + wait);
    }

    consecutive_429_ = 0;
    if ((says_zero(reply.header(global_remaining_header)) || says_zero(reply.header(route_remaining_header))) &&
        reset && *reset > now) {
        auto const until = std::min(*reset, now + max_header_wait);
        // Responses still in flight repeat the same reset: only a hold that
        // reaches further than the current one counts as a new pause.
        if (until > paused_until_) return extend(until);
    }
    return verdict{};
}

} // namespace importwatch::core
