#pragma once
// `promtool check metrics` on a scrape, for the tests that hold /metrics to
// the exposition format Prometheus ingests.
#include <optional>
#include <string>
#include <utility>

#include "common/testing.hpp"

namespace importwatch::testing {

/// promtool's exit code and output for `text`; nullopt when promtool is not
/// installed (apt `prometheus`).
std::optional<std::pair<int, std::string>> promtool_check(temp_dir const& dir, std::string const& text);

} // namespace importwatch::testing
