#pragma once
// Absolute http(s) URLs as the config gives them.
#include <optional>
#include <string>
#include <string_view>

#include "core/expected.hpp"

namespace importwatch::core {

struct url {
    std::string scheme;   // "http" or "https"
    std::string host;     // without brackets for IPv6
    std::string port;     // always set: explicit, or 80 / 443
    std::string target;   // path and query, at least "/"
    bool has_userinfo = false;

    bool tls() const { return scheme == "https"; }
    /// scheme://host[:port]/path — no userinfo, no query: safe to log.
    std::string redacted() const;
    bool operator==(url const&) const = default;
};

/// Parses an absolute http:// or https:// URL; nullopt for anything else.
std::optional<url> parse_url(std::string_view text);

/// A URL the configuration may name (every URL key, and `wait --base-url`):
/// absolute http:// or https://, without userinfo. importwatch never sends URL
/// credentials, and a base_url is copied into every event's `source`, so
/// `user:password@` is refused rather than dropped. Errors never quote the URL.
expected<url> parse_config_url(std::string_view text);

/// A URL importwatch may talk to: a parse_config_url that is
/// https://, or plain http:// only to a loopback host. The error says which
/// rule failed.
expected<url> parse_secure_url(std::string_view text);

} // namespace importwatch::core
