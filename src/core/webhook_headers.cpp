#include "core/webhook_headers.hpp"

#include <algorithm>

#include "core/http_exchange.hpp"

namespace importwatch::core {
namespace {

constexpr std::string_view reserved[] = {
    // HTTP framing and routing
    "content-type", "content-length", "transfer-encoding", "host", "connection",
    // who is calling
    "user-agent",
    // Standard Webhooks
    "webhook-id", "webhook-timestamp", "webhook-signature"};

} // namespace

bool is_reserved_webhook_header(std::string_view name) {
    return std::any_of(std::begin(reserved), std::end(reserved),
                       [&](std::string_view r) { return same_header_name(name, r); });
}

} // namespace importwatch::core
