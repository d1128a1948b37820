#include "daemon/metrics.hpp"

#include <algorithm>

namespace importwatch::daemon {

void histogram::observe(double v) {
    auto it = std::lower_bound(bounds.begin(), bounds.end(), v);
    ++counts[static_cast<std::size_t>(it - bounds.begin())];
    sum += v;
    ++count;
}

} // namespace importwatch::daemon
