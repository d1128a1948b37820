#pragma once
// What an HTTP request came back with, as plain values: built by net (which
// knows nothing of imports or webhooks), judged by core.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"

namespace importwatch::core {

/// Header names compare ASCII case-insensitively (RFC 9110 §5.1).
bool same_header_name(std::string_view a, std::string_view b);

struct header_field {
    std::string name;
    std::string value;
};

struct http_reply {
    int status = 0;
    /// The headers the request asked to keep, as received (no parsing): a
    /// reply holds only what someone reads.
    std::vector<header_field> headers;
    std::string body;

    /// The first kept header named `name` (ASCII case-insensitive).
    std::optional<std::string_view> header(std::string_view name) const;
};

enum class failure_kind {
    network,            // resolve, connect, TLS, reset, truncated response
    timeout,            // the request deadline passed
    invalid_response,   // not HTTP, headers > 64 KiB, body > limit
};

struct request_failure {
    failure_kind kind = failure_kind::network;
    /// Names the stage, without the kind: "tls handshake: certificate verify
    /// failed", "reading response". Never contains the token or a secret.
    std::string message;
};

/// The one human form of a failure, kind first: "timeout: reading response",
/// "invalid response: response headers exceed 64 KiB", "network: connect
/// 10.0.0.1:443: Connection refused". Logs, events and the outbox all use it.
std::string to_text(request_failure const& f);

using http_outcome = expected<http_reply, request_failure>;

} // namespace importwatch::core
