#pragma once
// A file of this repository (docs, shipped configs) for tests that check
// the code against what the repository tells users. Header-only: the unit
// tests link nothing but importwatch_core.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <boost/test/unit_test.hpp>

namespace importwatch::testing {

/// The text of `relative` (e.g. "docs/events.md"), from the repository root.
inline std::string read_source_file(std::string const& relative) {
    auto path = std::filesystem::path(__FILE__).parent_path() / "../.." / relative;
    std::ifstream in(path);
    BOOST_TEST_REQUIRE(in.good(), "cannot open " << path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace importwatch::testing
