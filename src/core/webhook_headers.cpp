#include "core/webhook_headers.hpp"

#include <algorithm>

namespace importwatch::core {
namespace {

constexpr std::string_view reserved[] = {
    // HTTP framing and routing
    "content-type", "content-length", "transfer-encoding", "host", "connection",
    // who is calling
    "user-agent",
    // Standard Webhooks
    "webhook-id", "webhook-timestamp", "webhook-signature"};

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

} // namespace

bool is_reserved_webhook_header(std::string_view name) {
    return std::any_of(std::begin(reserved), std::end(reserved), [&](std::string_view r) {
        return std::equal(name.begin(), name.end(), r.begin(), r.end(),
                          [](char a, char b) { return lower(a) == b; });
    });
}

} // namespace importwatch::core
