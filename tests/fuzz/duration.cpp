// Config durations and the timestamps importwatch parses (RFC 3339 from the
// state database, HTTP dates from servers). What parses must format back to
// the same value.
#include <string>

#include "core/duration.hpp"
#include "core/time.hpp"
#include "fuzz_check.hpp"

using namespace importwatch;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const text = fuzz::as_text(data, size);

    if (auto const d = core::parse_duration(text)) {
        FUZZ_CHECK(d->count() >= 0);
        auto const formatted = core::format_duration(*d);
        auto const back = core::parse_duration(formatted);
        FUZZ_CHECK(back.has_value() && *back == *d);
    }

    // Years 0000-9999 print in four digits and must read back.
    auto const first = core::sys_ms{} + std::chrono::floor<core::milliseconds>(
                                            std::chrono::sys_days{std::chrono::year{0} / 1 / 1}.time_since_epoch());
    auto const last = core::sys_ms{} + std::chrono::floor<core::milliseconds>(
                                           std::chrono::sys_days{std::chrono::year{10000} / 1 / 1}.time_since_epoch());
    if (auto const t = core::parse_rfc3339(text); t && *t >= first && *t < last) {
        auto const back = core::parse_rfc3339(core::format_rfc3339(*t));
        FUZZ_CHECK(back.has_value() && *back == *t);
    }
    if (auto const t = core::parse_http_date(text); t && *t >= first && *t < last) {
        FUZZ_CHECK(t->time_since_epoch().count() % 1000 == 0);
        auto const back = core::parse_http_date(core::format_http_date(*t));
        FUZZ_CHECK(back.has_value() && *back == *t);
    }
    return 0;
}
