#pragma once
// The configuration model (docs/configuration.md). Plain values, filled in and validated by
// config_parser; secrets are *where to find them*, never their content.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/time.hpp"
#include "core/watch_key.hpp"

namespace importwatch::core {

using namespace std::chrono_literals;

struct backoff_policy {
    milliseconds initial = 1s;
    milliseconds max = 5min;
    double multiplier = 2.0;
};

struct launchdarkly_config {
    std::string base_url = "https://app.launchdarkly.com";
    std::optional<std::string> token_file;
    std::string token_env = "LD_API_TOKEN";   // used when token_file is not set
    /// "file:line:col" of the token_file/token_env value (the file alone when
    /// defaulted), so a missing token is reported like any config error.
    std::string token_origin;
    std::string api_version = "20240415";
    std::optional<std::string> ca_file;
    milliseconds request_timeout = 10s;
    int max_connections = 2;
    double max_requests_per_second = 2;       // 0 = no client-side cap
    std::optional<std::string> proxy;         // unset: HTTPS_PROXY / NO_PROXY
};

/// `stall_after` as written: a threshold per status, and `fallback` (the
/// `default` key) for the statuses not listed. A single duration is a
/// fallback alone. 0 = never stalls. Which one applies: stall_threshold.
struct stall_thresholds {
    std::map<std::string, milliseconds, std::less<>> by_status;   // keys: non-terminal statuses
    std::optional<milliseconds> fallback;
    bool operator==(stall_thresholds const&) const = default;
};

/// The threshold of a status that nothing configured covers.
inline constexpr milliseconds default_stall_after = 6h;

struct polling_config {
    milliseconds interval = 30s;
    /// Per-status override; keys are preparing, pending_approval, ready, in_progress.
    std::map<std::string, milliseconds> status_intervals;
    double jitter = 0.1;
    stall_thresholds stall_after;             // empty: default_stall_after
    backoff_policy backoff;
};

/// A watch: what it polls (`key`); `name` is only a label.
struct watch_config {
    std::string name;                          // defaults to key.path()
    watch_key key;
    /// Sorted by key; each key is a metric label name (is_metric_label_name)
    /// and none is one of watch_info_labels.
    std::vector<std::pair<std::string, std::string>> labels;
    stall_thresholds stall_after;              // empty: polling's
    std::string origin;                        // "file:line:col" of the entry, for messages
};

enum class log_format { text, json };
enum class log_level { trace, debug, info, warn, error };

struct log_config {
    log_format format = log_format::text;
    log_level level = log_level::info;
};

/// What a webhook's bodies are (core/webhook_body.hpp): the CloudEvent, a
/// Slack message, or `template` rendered.
enum class webhook_format { cloudevents, slack, body_template };

struct webhook_config {
    std::string name;
    std::string url;
    webhook_format format = webhook_format::cloudevents;
    std::string body_template;                 // `template`, for format body_template
    std::optional<std::string> secret_file;
    std::optional<std::string> secret_env;
    std::vector<std::string> types;            // empty = all event types
    std::vector<std::string> watches;          // empty = all watches (by name)
    std::vector<std::pair<std::string, std::string>> headers;
    milliseconds timeout = 15s;
    std::optional<std::string> ca_file;
    milliseconds max_age = 24h;
    std::optional<std::string> proxy;
    std::string path;                          // "events.webhooks[0]", for messages
    std::string secret_origin;                 // "file:line:col" of secret_file/secret_env

    /// Whether an event of `type` for watch `watch_name` goes to this webhook.
    bool accepts(std::string_view type, std::string_view watch_name) const;
    bool operator==(webhook_config const&) const = default;
};

struct state_config {
    std::string dir;                           // resolved: $STATE_DIRECTORY, else ./state
    milliseconds dead_letter_retention = std::chrono::days(30);
};

struct admin_tls_config {
    std::string cert_file;                     // PEM chain, leaf first
    std::string key_file;
    std::optional<std::string> client_ca_file; // set: clients need a certificate it signed
};

struct admin_config {
    std::string listen = "127.0.0.1:9464";     // "" disables the admin server
    bool enable_reload = false;
    std::optional<admin_tls_config> tls;       // unset: plain HTTP
    /// basic_auth.users: name -> bcrypt hash. Empty: no authentication.
    std::map<std::string, std::string> users;
    /// Paths answered without credentials when `users` is set.
    std::vector<std::string> open_paths = {"/healthz", "/readyz"};

    /// Whether `listen` reaches beyond this host (not 127.0.0.0/8, ::1 or
    /// localhost): then the admin endpoints need TLS or basic auth.
    bool beyond_loopback() const;
};

/// `reload`: how a running daemon learns that its files changed.
struct reload_config {
    /// Reload when the config file or a file `watch_files` can match changes
    /// (besides SIGHUP and POST /-/reload, which always work).
    bool automatic = true;
};

/// The admin server's paths (docs/operations.md); open_paths name some of them.
inline constexpr char const* admin_paths[] = {"/healthz", "/readyz", "/metrics", "/v1/watches", "/-/reload"};

struct config {
    std::string file;                          // path the config was read from
    launchdarkly_config launchdarkly;
    polling_config polling;
    std::vector<watch_config> watches;         // inline and from watch_files
    log_config log;
    std::vector<webhook_config> webhooks;
    std::vector<std::string> watch_files;      // globs, as written
    state_config state;
    admin_config admin;
    reload_config reload;
    milliseconds shutdown_grace = 5s;
};

/// How long `status` may last for `watch` before import.stalled (0 = never):
/// the watch's own threshold for that status, else the watch's default, else
/// polling's for that status, else polling's default, else
/// default_stall_after. Terminal statuses are never asked about.
milliseconds stall_threshold(watch_config const& watch, polling_config const& polling, std::string_view status);

/// The labels importwatch_watch_info gives every watch, in this order; a
/// watch's configured `labels` follow them and may not reuse their names.
inline constexpr char const* watch_info_labels[] = {"watch", "project", "environment", "segment", "import_id"};

/// A Prometheus label name a config may use: [a-zA-Z_][a-zA-Z0-9_]*, not
/// starting with "__" (reserved for Prometheus itself).
bool is_metric_label_name(std::string_view name);

/// True for 127.0.0.0/8, ::1 and localhost: the only hosts allowed plain http.
bool is_loopback_host(std::string_view host);

} // namespace importwatch::core
