#define BOOST_TEST_MODULE siphash
#include <boost/test/unit_test.hpp>

#include <string>

#include "core/siphash.hpp"

using namespace importwatch::core;

namespace {
// The key of the reference vectors: bytes 00..0f.
siphash_key const reference_key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

std::string counting(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i));
    return s;
}
} // namespace

// Vectors from the SipHash paper's reference implementation (vectors.h):
// messages 00, 00 01, ..., with the key 00..0f. Lengths 0, 7, 8 and 15 cover
// the empty input, a tail alone, a whole word alone and both.
BOOST_AUTO_TEST_CASE(reference_vectors) {
    BOOST_TEST(siphash24(reference_key, counting(0)) == 0x726fdb47dd0e0e31ULL);
    BOOST_TEST(siphash24(reference_key, counting(7)) == 0xab0200f58b01d137ULL);
    BOOST_TEST(siphash24(reference_key, counting(8)) == 0x93f5f5799a932462ULL);
    BOOST_TEST(siphash24(reference_key, counting(15)) == 0xa129ca6149be45e5ULL);
    BOOST_TEST(siphash24(reference_key, counting(63)) == 0x958a324ceb064572ULL);
}

BOOST_AUTO_TEST_CASE(every_single_byte_change_changes_the_hash) {
    std::string const body = R"({"id":"imp-1","status":"in_progress","files":[{"filename":"a.csv","status":"pending"}]})";
    auto const h = siphash24(reference_key, body);
    for (std::size_t i = 0; i < body.size(); ++i) {
        auto changed = body;
        changed[i] ^= 0x01;
        BOOST_TEST_CONTEXT("byte " << i) { BOOST_TEST(siphash24(reference_key, changed) != h); }
    }
}
