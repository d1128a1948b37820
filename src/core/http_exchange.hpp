#pragma once
// What an HTTP request came back with, as plain values: built by net (which
// knows nothing of imports or webhooks), judged by core.
#include <optional>
#include <string>

#include "core/expected.hpp"

namespace importwatch::core {

/// The response headers importwatch acts on (raw values, unparsed).
struct response_headers {
    std::optional<std::string> retry_after;
    std::optional<std::string> date;
    std::optional<std::string> ratelimit_reset;          // X-Ratelimit-Reset (epoch ms)
    std::optional<std::string> global_remaining;         // X-Ratelimit-Global-Remaining
    std::optional<std::string> route_remaining;          // X-Ratelimit-Route-Remaining
    std::optional<std::string> content_type;
};

struct http_reply {
    int status = 0;
    response_headers headers;
    std::string body;
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
