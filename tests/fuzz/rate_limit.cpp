// Rate-limit headers: Retry-After (seconds or HTTP-date), Date (clock skew),
// X-Ratelimit-Reset and the *-Remaining counts, fed to the process-wide gate.
//
// Input: responses separated by blank lines; each is a status line ("429")
// then "Name: value" header lines (names case-insensitive), e.g.
//   429
//   Retry-After: 120
//   X-Ratelimit-Reset: 1764500000000
// One second passes between responses. Whatever the headers say, a pause
// never ends before now nor later than the one-hour cap.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/rate_limit_gate.hpp"
#include "fuzz_check.hpp"

using namespace importwatch;

namespace {

std::vector<core::http_reply> responses_of(std::string_view text) {
    std::vector<core::http_reply> out;
    bool in_response = false;
    while (!text.empty()) {
        auto const eol = text.find('\n');
        auto line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) {
            in_response = false;
            continue;
        }
        if (!in_response) {
            core::http_reply r;
            std::from_chars(line.data(), line.data() + line.size(), r.status);
            out.push_back(std::move(r));
            in_response = true;
            continue;
        }
        auto const colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        out.back().headers.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const responses = responses_of(fuzz::as_text(data, size));
    core::prng rng(1);
    core::backoff_policy const backoff;   // the defaults: 1s doubling to 5m
    core::rate_limit_gate gate(10.0, backoff);
    // 2026-11-30T00:00:00Z
    auto now = core::sys_ms{std::chrono::milliseconds{1'796'083'200'000}};
    for (auto const& reply : responses) {
        now += std::chrono::seconds(1);

        auto const offset = core::server_clock_offset(reply.header(core::date_header), now);
        if (auto const wait = core::retry_after_wait(reply.header(core::retry_after_header), offset, now))
            FUZZ_CHECK(wait->count() >= 0);
        if (auto const wait = core::retry_after_wait(reply.header(core::retry_after_header), core::milliseconds{0}, now))
            FUZZ_CHECK(wait->count() >= 0);

        auto const before = gate.paused_until();
        auto const verdict = gate.observe(reply, now, rng);
        FUZZ_CHECK(gate.paused_until() >= before);
        FUZZ_CHECK(gate.paused_until() <= now + std::max(core::max_header_wait, backoff.max));
        if (verdict.paused) {
            FUZZ_CHECK(verdict.until >= now);
            FUZZ_CHECK(verdict.until == gate.paused_until());
        }
        FUZZ_CHECK(gate.paused_total().count() >= 0);
        FUZZ_CHECK(gate.consecutive_429() >= 0);

        auto const next = gate.acquire(now, rng);
        FUZZ_CHECK(next >= now);
        if (now < gate.paused_until()) FUZZ_CHECK(next >= gate.paused_until());
    }
    return 0;
}
