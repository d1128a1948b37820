// The HTTP responses the LaunchDarkly client reads: any bytes from a server,
// parsed as send() parses them (64 KiB of headers, 1 MiB of body). How the
// bytes are split into reads must not change the result. A 200 body goes on
// to Import decoding and every reply to the rate-limit gate, as in a poll.
#include "core/import.hpp"
#include "core/rate_limit_gate.hpp"
#include "fuzz_check.hpp"
#include "net/http_client.hpp"

using namespace importwatch;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const bytes = fuzz::as_text(data, size);
    auto const whole = net::parse_response(bytes, core::max_import_body, core::rate_limit_headers);
    auto const split = net::parse_response(bytes, core::max_import_body, core::rate_limit_headers, 1 + size % 61);
    FUZZ_CHECK(whole.has_value() == split.has_value());
    if (!whole) {
        // Beast reports a bad byte in headers that never end as "bad line
        // ending" (invalid) when it sees the byte with what follows in one
        // read, else as "partial message" (network) at the end of the bytes:
        // a failure either way, so only two invalid verdicts must agree.
        bool const cut_short = whole.error().kind == core::failure_kind::network ||
                               split.error().kind == core::failure_kind::network;
        FUZZ_CHECK(cut_short || whole.error().kind == split.error().kind);
        FUZZ_CHECK(!whole.error().message.empty());
        return 0;
    }
    FUZZ_CHECK(whole->status == split->status && whole->body == split->body);
    FUZZ_CHECK(whole->header(core::retry_after_header) == split->header(core::retry_after_header) &&
               whole->header(core::reset_header) == split->header(core::reset_header));
    // Beast takes any three digits ("029" is 29); decide() calls what is not
    // 200, 429, 4xx or 5xx an invalid response.
    FUZZ_CHECK(whole->status >= 0 && whole->status <= 999);
    FUZZ_CHECK(whole->body.size() <= core::max_import_body);

    if (whole->status == 200) (void)core::decode_import(whole->body);
    core::prng rng(1);
    core::rate_limit_gate gate(10.0, core::backoff_policy{});
    auto const now = core::sys_ms{std::chrono::milliseconds{1'796'083'200'000}};
    auto const verdict = gate.observe(*whole, now, rng);
    if (verdict.paused) FUZZ_CHECK(verdict.until >= now);
    return 0;
}
