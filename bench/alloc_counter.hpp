#pragma once
// Global operator new/delete replaced by counting versions (alloc_counter.cpp
// is linked into every benchmark): "allocations per poll" is the cheapest
// profile there is, and a steady poll must make none that grow with the watch count.
#include <cstdint>

namespace importwatch::bench {

struct allocation_totals {
    std::uint64_t count = 0;   // operator new calls (aligned new included)
    std::uint64_t bytes = 0;   // bytes requested
};

allocation_totals allocations();

} // namespace importwatch::bench
