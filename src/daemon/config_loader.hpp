#pragma once
// Reads the config file and its watch_files from disk and the environment,
// and hands the text to core::parse_config. Also reads the secrets the config
// points to. Errors never contain a secret.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/expected.hpp"

namespace importwatch::daemon {

/// Loads and validates `path` and every file its watch_files globs match
/// (sorted, each parsed with core::parse_watch_file), then runs
/// core::check_watch_set. A missing or unreadable file is an error naming
/// the path: "config.yaml: cannot read: No such file or directory".
core::expected<core::config> load_config(std::string const& path);

/// The API token from token_file or token_env (trailing newline stripped).
/// Error: "launchdarkly.token_file: cannot read /run/…: Permission denied" or
/// "launchdarkly.token_env: LD_API_TOKEN is not set".
core::expected<std::string> read_api_token(core::launchdarkly_config const& ld);

/// The decoded HMAC key of a webhook, nullopt when it has no secret.
/// Error names the webhook and the source, never the content.
core::expected<std::optional<std::string>> read_webhook_key(core::webhook_config const& webhook);

/// The secrets a config points to, read from files or the environment.
struct secrets {
    std::string api_token;
    std::map<std::string, std::optional<std::string>> webhook_keys;   // by webhook name
};

/// Reads every secret `cfg` names; the error names the key, never the value.
core::expected<secrets> read_secrets(core::config const& cfg);

/// Whether a secret source holds anything at all: the file is readable, or
/// the variable is set, and not empty. `check` (which may run where secrets
/// are not) only warns when it does not; a secret that is there but malformed
/// is an error for every command.
bool secret_present(std::optional<std::string> const& file, std::optional<std::string> const& env);

/// A webhook secret that cannot be used. `present` tells a secret that is
/// there but malformed (an error for every command) from one that is not
/// there at all (only a warning where no webhook is delivered).
struct secret_problem {
    std::string message;   // names the webhook and the source, never the content
    bool present;
};

/// The webhooks of `cfg` whose secret cannot be read or decoded.
std::vector<secret_problem> webhook_secret_problems(core::config const& cfg);

} // namespace importwatch::daemon
