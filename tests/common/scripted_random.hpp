#pragma once
// A random_source for pinning jitter in unit tests: returns the given values
// in order, then keeps repeating the last one. Header-only: unit tests link
// nothing but importwatch_core.
#include <algorithm>
#include <ostream>
#include <utility>
#include <vector>

#include <boost/test/tools/detail/print_helper.hpp>

#include "core/time.hpp"

namespace importwatch::testing {

class scripted_random final : public core::random_source {
public:
    explicit scripted_random(std::vector<double> values) : values_(std::move(values)) {}
    double next_unit() override {
        double const v = values_.at(std::min(next_, values_.size() - 1));
        ++next_;
        return v;
    }
    /// How many numbers were drawn so far.
    std::size_t draws() const { return next_; }

private:
    std::vector<double> values_;
    std::size_t next_ = 0;
};

/// A draw that makes random_source::between(lo, hi) return hi.
inline constexpr double top_draw = 1.0 - 1e-12;

} // namespace importwatch::testing

// Failed comparisons of instants print as RFC 3339.
template <>
struct boost::test_tools::tt_detail::print_log_value<importwatch::core::sys_ms> {
    void operator()(std::ostream& os, importwatch::core::sys_ms t) { os << importwatch::core::format_rfc3339(t); }
};
