#pragma once
// Reads the config file and its watch_files from disk and the environment,
// and hands the text to core::parse_config. Also reads the secrets the config
// points to. Errors never contain a secret.
#include <array>
#include <cstddef>
#include <functional>
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

/// The SHA-256 of a watch file's bytes: what tells a reload the file is the
/// one it read before.
using file_digest = std::array<unsigned char, 32>;

/// A watch file as a config read found it.
struct watch_file_read {
    file_digest digest{};
    std::size_t watches = 0;   // how many watches it gave
};

/// A config as read, with what was read of every watch file.
struct read_config {
    core::config config;
    std::map<std::string, watch_file_read> watch_files;   // by path, as the glob gave it
};

/// The watches read before from `file`, when its bytes then had `digest`;
/// nullopt when the file must be parsed (new, or changed since).
using earlier_watches =
    std::function<std::optional<std::vector<core::watch_config>>(std::string const& file, file_digest const& digest)>;

/// load_config for a reload: a watch file whose bytes are unchanged is not
/// parsed again, its watches come from `earlier` (parsing is most of a
/// reload's cost at 100,000 watches, and a reload usually changes one file).
/// Every file is still read and the whole set checked (check_watch_set).
core::expected<read_config> reread_config(std::string const& path, earlier_watches const& earlier);

/// What a reload may take over: the running watches (the applied config's),
/// for the files whose digest and watch count are still those of `before`,
/// the read that config came from. Watches are told apart by the file their
/// origin ("file:line:col") names.
earlier_watches unchanged_files(std::map<std::string, watch_file_read> before,
                                std::vector<core::watch_config const*> const& running);

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
