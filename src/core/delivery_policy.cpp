#include "core/delivery_policy.hpp"

#include <array>

#include "core/http_headers.hpp"
#include "core/untrusted_text.hpp"

namespace importwatch::core {

namespace {

using namespace std::chrono_literals;

constexpr std::array<milliseconds, 6> schedule{5s, 30s, 2min, 10min, 30min, 1h};

// "24h", "1h30m", "1m30s", "500ms": the shape of config durations (hours are
// not folded into days, so the default reads "24h" as configured).
std::string describe(milliseconds d) {
    if (d <= 0ms) return "0s";
    std::string out;
    auto append = [&](long long n, char const* unit) {
        if (n > 0) out += std::to_string(n) + unit;
    };
    auto const ms = d.count();
    append(ms / 3'600'000, "h");
    append(ms / 60'000 % 60, "m");
    append(ms / 1000 % 60, "s");
    append(ms % 1000, "ms");
    return out;
}

std::string describe_status(int status) {
    std::string s = "HTTP " + std::to_string(status);
    if (status >= 300 && status < 400) s += " (redirects are not followed)";
    return s;
}

} // namespace

milliseconds retry_schedule(int attempts) {
    if (attempts < 1) return schedule.front();
    auto const i = static_cast<std::size_t>(attempts - 1);
    return i < schedule.size() ? schedule[i] : schedule.back();
}

delivery_verdict judge_delivery(http_outcome const& outcome, int attempts, sys_ms committed,
                                milliseconds max_age, sys_ms now, random_source& rng) {
    std::string error;
    std::optional<milliseconds> retry_after;
    if (outcome) {
        int const status = outcome->status;
        if (status >= 200 && status < 300) return {delivery_verdict::delivered, {}, {}};
        // 410 Gone: the receiver says this endpoint will never take it.
        if (status == 410) return {delivery_verdict::dead, {}, "HTTP 410 Gone"};
        error = describe_status(status);
        retry_after = retry_after_wait(outcome->header(retry_after_header), 0ms, now);
    } else {
        error = to_text(outcome.error());
    }
    // Error texts end up in logs, the outbox and `outbox list`: keep them short.
    error = truncated(error);

    auto const nominal = retry_schedule(attempts);
    // ±10 % so a receiver that comes back is not hit by every queue at once.
    auto delay = rng.between(nominal * 9 / 10, nominal * 11 / 10);
    if (retry_after && *retry_after > delay) delay = *retry_after;

    auto const next = now + delay;
    if (next > committed + max_age) {
        auto const n = attempts < 1 ? 1 : attempts;
        return {delivery_verdict::dead, {},
                "gave up after " + std::to_string(n) + (n == 1 ? " attempt" : " attempts") +
                    " over max_age " + describe(max_age) + ": " + error};
    }
    return {delivery_verdict::retry, next, error};
}

} // namespace importwatch::core
