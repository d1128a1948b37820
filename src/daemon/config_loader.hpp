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
/// core::check_watch_set. Every file is read with read_bounded_file
/// (max_config_file_bytes). A missing, unreadable or refused file is an
/// error naming the path: "config.yaml: cannot read: No such file or
/// directory", "watches.d/x.yaml: not a regular file (a FIFO)".
core::expected<core::config> load_config(std::string const& path);

/// What is wrong with a secret, and whether it is simply not there (unset,
/// missing or unreadable file, empty): `check`, which may run where secrets
/// are not installed, only warns about those; a secret that is there but
/// malformed is an error for every command. The message names the key and
/// the source, never the content.
struct secret_error {
    std::string message;
    bool absent = false;
};

/// The API token from token_file or token_env: BOM and trailing whitespace
/// removed (core::secret_text), then core::check_api_token. Files are read
/// with read_bounded_file (max_secret_file_bytes).
/// Error: "c.yaml:3:3: launchdarkly.token_file: cannot read /run/…: Permission denied" or
/// "c.yaml: launchdarkly.token_env: LD_API_TOKEN is not set".
core::expected<std::string, secret_error> read_api_token(core::launchdarkly_config const& ld);

/// The decoded HMAC key of a webhook (24 to 64 bytes), nullopt when it has
/// no secret. Error names the webhook and the source, never the content.
core::expected<std::optional<std::string>, secret_error> read_webhook_key(core::webhook_config const& webhook);

/// The secrets a config points to, read from files or the environment.
struct secrets {
    std::string api_token;
    std::map<std::string, std::optional<std::string>> webhook_keys;   // by webhook name
};

/// Reads every secret `cfg` names; the error names the key, never the value.
core::expected<secrets> read_secrets(core::config const& cfg);

/// What is wrong with the secrets of `cfg`'s webhooks, one entry per webhook
/// whose secret cannot be read or decoded (`absent` tells a missing one, only
/// a warning where no webhook is delivered, from a malformed one).
std::vector<secret_error> webhook_secret_problems(core::config const& cfg);

} // namespace importwatch::daemon
