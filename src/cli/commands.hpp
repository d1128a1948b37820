#pragma once
// One function per subcommand (README, "Commands"). Each returns the process exit code
// and reports its own errors on stderr; main.cpp only parses the command line.
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/time.hpp"

namespace importwatch::cli {

/// Exit codes, as the README's command table lists them.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_wait_failed_watch = 3;
inline constexpr int exit_wait_timeout = 4;

struct run_options {
    std::string config_path;
    std::optional<core::log_format> log_format;   // overrides events.log when given
    std::optional<core::log_level> log_level;
};
int run_command(run_options const& options);

int check_command(std::string const& config_path);

struct wait_options {
    // Form 1: --config FILE [--watch NAME]...
    std::optional<std::string> config_path;
    std::vector<std::string> watch_names;
    // Form 2: PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID
    std::optional<std::string> import_path;
    std::optional<std::string> base_url;
    std::optional<std::string> token_env;
    std::optional<std::string> token_file;
    std::optional<std::string> ca_file;
    std::optional<core::milliseconds> interval;
    // Both
    std::optional<core::milliseconds> timeout;
};
int wait_command(wait_options const& options);

struct demo_options {
    double speed = 1.0;
    std::optional<std::string> webhook_url;
};
int demo_command(demo_options const& options);

struct simulate_options {
    std::string listen;                    // HOST:PORT
    std::string scenario_file;
    std::optional<std::string> tls_cert;
    std::optional<std::string> tls_key;
};
int simulate_command(simulate_options const& options);

struct outbox_options {
    std::string config_path;
    std::string action = "list";           // list | replay
    std::optional<std::string> webhook;    // replay --webhook NAME
};
int outbox_command(outbox_options const& options);

/// GET `url`; for https the certificate is verified (chain and host name)
/// against `ca_file` or the system store: never skipped.
int healthcheck_command(std::string const& url, std::optional<std::string> const& ca_file);

} // namespace importwatch::cli
