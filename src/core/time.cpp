#include "core/time.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "core/untrusted_text.hpp"

namespace importwatch::core {

namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// Howard Hinnant's civil-date algorithms: proleptic Gregorian, no time zone DB.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2 ? 1 : 0;
    std::int64_t const era = (y >= 0 ? y : y - 399) / 400;
    auto const yoe = static_cast<unsigned>(y - era * 400);
    unsigned const doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil {
    std::int64_t year;
    unsigned month;
    unsigned day;
};

constexpr civil civil_from_days(std::int64_t z) {
    z += 719468;
    std::int64_t const era = (z >= 0 ? z : z - 146096) / 146097;
    auto const doe = static_cast<unsigned>(z - era * 146097);
    unsigned const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned const mp = (5 * doy + 2) / 153;
    unsigned const d = doy - (153 * mp + 2) / 5 + 1;
    unsigned const m = mp < 10 ? mp + 3 : mp - 9;
    return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);

constexpr bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

constexpr unsigned days_in_month(std::int64_t y, unsigned m) {
    constexpr std::array<unsigned, 12> table{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : table[m - 1];
}

constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> day_names{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> long_day_names{"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                         "Thursday", "Friday", "Saturday"};

// Splits t into a day number and the milliseconds into that day (floored, so
// instants before 1970 format correctly too).
struct split_time {
    std::int64_t day;
    std::int64_t ms_of_day;
};

split_time split(sys_ms t) {
    constexpr std::int64_t ms_per_day = 86'400'000;
    std::int64_t const ms = t.time_since_epoch().count();
    std::int64_t day = ms / ms_per_day;
    std::int64_t rem = ms % ms_per_day;
    if (rem < 0) {
        rem += ms_per_day;
        --day;
    }
    return {day, rem};
}

// A tiny cursor over the text being parsed: every step either consumes
// exactly what it expects or fails.
class cursor {
public:
    explicit cursor(std::string_view s) : s_(s) {}

    bool done() const { return pos_ == s_.size(); }
    std::size_t pos() const { return pos_; }

    bool literal(char c) {
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool literal_ci(char c) {
        if (pos_ < s_.size() && (s_[pos_] == c || s_[pos_] == (c ^ 0x20))) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) == word) {
            pos_ += word.size();
            return true;
        }
        return false;
    }
    /// Exactly n digits.
    std::optional<unsigned> digits(std::size_t n) {
        if (pos_ + n > s_.size()) return std::nullopt;
        unsigned v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            char const c = s_[pos_ + i];
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<unsigned>(c - '0');
        }
        pos_ += n;
        return v;
    }
    /// One of `names`; returns its index.
    template <std::size_t N>
    std::optional<unsigned> one_of(std::array<std::string_view, N> const& names) {
        for (std::size_t i = 0; i < N; ++i) {
            if (literal(names[i])) return static_cast<unsigned>(i);
        }
        return std::nullopt;
    }
    bool peek_digit() const { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
    char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
    void skip() { ++pos_; }

private:
    std::string_view s_;
    std::size_t pos_ = 0;
};

std::optional<sys_ms> make_time(std::int64_t year, unsigned month, unsigned day, unsigned hour,
                                unsigned minute, unsigned second, unsigned milli = 0) {
    if (month < 1 || month > 12) return std::nullopt;
    if (day < 1 || day > days_in_month(year, month)) return std::nullopt;
    // 60 is a leap second (RFC 3339 §5.7); it lands on the next second.
    if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    auto const d = days_from_civil(year, month, day);
    return sys_ms{days{d} + hours{hour} + minutes{minute} + seconds{second} + milliseconds{milli}};
}

// hh:mm:ss
struct clock_time {
    unsigned hour, minute, second;
};

std::optional<clock_time> parse_clock(cursor& c) {
    auto const h = c.digits(2);
    if (!h || !c.literal(':')) return std::nullopt;
    auto const m = c.digits(2);
    if (!m || !c.literal(':')) return std::nullopt;
    auto const s = c.digits(2);
    if (!s) return std::nullopt;
    return clock_time{*h, *m, *s};
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<sys_ms> parse_imf_fixdate(std::string_view s) {
    cursor c(s);
    if (!c.one_of(day_names) || !c.literal(", ")) return std::nullopt;
    auto const day = c.digits(2);
    if (!day || !c.literal(' ')) return std::nullopt;
    auto const month = c.one_of(month_names);
    if (!month || !c.literal(' ')) return std::nullopt;
    auto const year = c.digits(4);
    if (!year || !c.literal(' ')) return std::nullopt;
    auto const t = parse_clock(c);
    if (!t || !c.literal(" GMT") || !c.done()) return std::nullopt;
    return make_time(*year, *month + 1, *day, t->hour, t->minute, t->second);
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<sys_ms> parse_rfc850(std::string_view s) {
    cursor c(s);
    if (!c.one_of(long_day_names) || !c.literal(", ")) return std::nullopt;
    auto const day = c.digits(2);
    if (!day || !c.literal('-')) return std::nullopt;
    auto const month = c.one_of(month_names);
    if (!month || !c.literal('-')) return std::nullopt;
    auto const yy = c.digits(2);
    if (!yy || !c.literal(' ')) return std::nullopt;
    auto const t = parse_clock(c);
    if (!t || !c.literal(" GMT") || !c.done()) return std::nullopt;
    // RFC 9110 §5.6.7 pivots two-digit years on the current date; core has no
    // clock, so use the conventional fixed pivot (70..99 -> 19xx, else 20xx).
    std::int64_t const year = *yy >= 70 ? 1900 + *yy : 2000 + *yy;
    return make_time(year, *month + 1, *day, t->hour, t->minute, t->second);
}

// "Sun Nov  6 08:49:37 1994"
std::optional<sys_ms> parse_asctime(std::string_view s) {
    cursor c(s);
    if (!c.one_of(day_names) || !c.literal(' ')) return std::nullopt;
    auto const month = c.one_of(month_names);
    if (!month || !c.literal(' ')) return std::nullopt;
    std::optional<unsigned> day;
    if (c.literal(' ')) {
        day = c.digits(1);
    } else {
        day = c.digits(2);
    }
    if (!day || !c.literal(' ')) return std::nullopt;
    auto const t = parse_clock(c);
    if (!t || !c.literal(' ')) return std::nullopt;
    auto const year = c.digits(4);
    if (!year || !c.done()) return std::nullopt;
    return make_time(*year, *month + 1, *day, t->hour, t->minute, t->second);
}

} // namespace

milliseconds random_source::between(milliseconds lo, milliseconds hi) {
    if (hi <= lo) return lo;
    // hi - lo + 1 equally likely values; clamp guards next_unit() == 1.0 from a
    // misbehaving source.
    auto const span = static_cast<double>(hi.count() - lo.count()) + 1.0;
    auto const offset = static_cast<std::int64_t>(std::floor(next_unit() * span));
    return lo + milliseconds{std::clamp<std::int64_t>(offset, 0, hi.count() - lo.count())};
}

std::string random_source::uuid_v4() {
    // 32 bits per draw: well inside the 53 bits a double carries.
    std::array<std::uint32_t, 4> words{};
    for (auto& word : words) {
        auto const u = std::clamp(next_unit(), 0.0, 1.0);
        word = static_cast<std::uint32_t>(std::min(std::floor(u * 4294967296.0), 4294967295.0));
    }
    std::array<unsigned char, 16> bytes{};   // the words, big-endian
    for (std::size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = static_cast<unsigned char>(words[i / 4] >> (24 - 8 * (i % 4)));
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40); // version 4
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80); // RFC 4122 variant

    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        out.push_back(hex[bytes[i] >> 4]);
        out.push_back(hex[bytes[i] & 0x0f]);
    }
    return out;
}

double prng::next_unit() {
    // The top 53 bits fill a double's mantissa exactly: uniform in [0, 1).
    return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

std::string format_rfc3339(sys_ms t) {
    auto const [day, ms] = split(t);
    auto const date = civil_from_days(day);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                  static_cast<long long>(date.year), date.month, date.day,
                  static_cast<long long>(ms / 3'600'000), static_cast<long long>(ms / 60'000 % 60),
                  static_cast<long long>(ms / 1000 % 60), static_cast<long long>(ms % 1000));
    return buf;
}

std::optional<sys_ms> parse_rfc3339(std::string_view s) {
    cursor c(s);
    auto const year = c.digits(4);
    if (!year || !c.literal('-')) return std::nullopt;
    auto const month = c.digits(2);
    if (!month || !c.literal('-')) return std::nullopt;
    auto const day = c.digits(2);
    if (!day || !c.literal_ci('T')) return std::nullopt;
    auto const t = parse_clock(c);
    if (!t) return std::nullopt;

    unsigned milli = 0;
    if (c.literal('.')) {
        if (!c.peek_digit()) return std::nullopt;
        // Any number of digits; precision beyond milliseconds is truncated.
        unsigned scale = 100;
        while (c.peek_digit()) {
            milli += static_cast<unsigned>(c.peek() - '0') * scale;
            scale /= 10;
            c.skip();
        }
    }

    milliseconds offset{0};
    if (c.literal_ci('Z')) {
        // UTC
    } else if (c.peek() == '+' || c.peek() == '-') {
        bool const negative = c.peek() == '-';
        c.skip();
        auto const oh = c.digits(2);
        if (!oh || !c.literal(':')) return std::nullopt;
        auto const om = c.digits(2);
        if (!om || *oh > 23 || *om > 59) return std::nullopt;
        offset = hours{*oh} + minutes{*om};
        if (negative) offset = -offset;
    } else {
        return std::nullopt;
    }
    if (!c.done()) return std::nullopt;

    auto const local = make_time(*year, *month, *day, t->hour, t->minute, t->second, milli);
    if (!local) return std::nullopt;
    // "12:00+02:00" is 10:00 UTC.
    return *local - offset;
}

std::optional<sys_ms> parse_http_date(std::string_view s) {
    s = trim(s);
    if (auto t = parse_imf_fixdate(s)) return t;
    if (auto t = parse_rfc850(s)) return t;
    return parse_asctime(s);
}

std::string format_http_date(sys_ms t) {
    auto const [day, ms] = split(t);
    auto const date = civil_from_days(day);
    // 1970-01-01 was a Thursday.
    auto const weekday = static_cast<std::size_t>(((day % 7) + 11) % 7);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3s, %02u %.3s %04lld %02lld:%02lld:%02lld GMT",
                  day_names[weekday].data(), date.day, month_names[date.month - 1].data(),
                  static_cast<long long>(date.year), static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60), static_cast<long long>(ms / 1000 % 60));
    return buf;
}

} // namespace importwatch::core
