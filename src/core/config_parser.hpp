#pragma once
// YAML -> config, strictly (docs/configuration.md). Pure: the caller reads the files and
// expands the watch_files globs; this only turns text into a validated model.
// Every error reads "FILE:LINE:COL: key.path: what is wrong", e.g.
//   config.yaml:14:7: watches[2].import_id: must match [A-Za-z0-9._-]+
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/expected.hpp"

namespace importwatch::core {

/// Looks up an environment variable (for ${VAR} and defaults such as
/// $STATE_DIRECTORY). Injected so tests need no real environment.
using env_lookup = std::function<std::optional<std::string>(std::string const& name)>;

/// Parses a whole config file. `file_name` is used in error messages and
/// stored in config::file. Checks everything that one file can show,
/// including duplicate watches within it and webhook references to them.
expected<config> parse_config(std::string_view yaml_text, std::string const& file_name,
                              env_lookup const& env);

/// Parses a watch file (a `watches:` list only; see watch_files in docs/configuration.md).
expected<std::vector<watch_config>> parse_watch_file(std::string_view yaml_text,
                                                     std::string const& file_name,
                                                     env_lookup const& env);

/// Cross-file checks after the watch files were appended to cfg.watches:
/// duplicate names/identities ("duplicate …", naming both origins) and
/// webhook `watches` that name no watch. parse_config runs it too.
expected<void> check_watch_set(config const& cfg);

/// Warnings that do not stop the daemon: rate cap off or interval 0
/// against a LaunchDarkly host; watches that cannot all be polled at their
/// interval within max_requests_per_second (with the effective interval).
/// `polled`: how many watches will be polled (the daemon leaves terminal ones
/// out); nullopt: all of cfg.watches.
std::vector<std::string> config_warnings(config const& cfg, std::optional<std::size_t> polled = std::nullopt);

} // namespace importwatch::core
