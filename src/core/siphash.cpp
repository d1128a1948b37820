#include "core/siphash.hpp"

#include <bit>
#include <cstring>

namespace importwatch::core {

namespace {

// Little-endian, as the reference implementation reads its input.
std::uint64_t load_le(char const* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

struct state {
    std::uint64_t v0, v1, v2, v3;

    void round() {
        v0 += v1;
        v1 = std::rotl(v1, 13);
        v1 ^= v0;
        v0 = std::rotl(v0, 32);
        v2 += v3;
        v3 = std::rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = std::rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = std::rotl(v1, 17);
        v1 ^= v2;
        v2 = std::rotl(v2, 32);
    }

    void absorb(std::uint64_t m) {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }
};

} // namespace

std::uint64_t siphash24(siphash_key key, std::string_view bytes) {
    state s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL, key.k0 ^ 0x6c7967656e657261ULL,
            key.k1 ^ 0x7465646279746573ULL};
    char const* p = bytes.data();
    std::size_t const n = bytes.size();
    std::size_t const whole = n - n % 8;
    for (std::size_t i = 0; i < whole; i += 8) {
        std::uint64_t m;
        std::memcpy(&m, p + i, 8);
        if constexpr (std::endian::native == std::endian::big) m = load_le(p + i, 8);
        s.absorb(m);
    }
    s.absorb(load_le(p + whole, n - whole) | (std::uint64_t(n & 0xff) << 56));
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) s.round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

} // namespace importwatch::core
