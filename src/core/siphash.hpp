#pragma once
// SipHash-2-4 (Aumasson and Bernstein, 2012): a fast keyed 64-bit hash whose
// outputs for different inputs collide with probability 2^-64 unless someone
// who knows the key crafts them.
#include <cstdint>
#include <string_view>

namespace importwatch::core {

struct siphash_key {
    std::uint64_t k0 = 0;
    std::uint64_t k1 = 0;
};

std::uint64_t siphash24(siphash_key key, std::string_view bytes);

} // namespace importwatch::core
