#pragma once
// Standard Webhooks signing: v1,base64(HMAC-SHA256(key, id.timestamp.body)).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/expected.hpp"

namespace importwatch::core {

/// Standard Webhooks keys are 24 to 64 bytes: shorter ones are guessable,
/// longer ones are no stronger for HMAC-SHA256.
inline constexpr std::size_t min_webhook_key_bytes = 24;
inline constexpr std::size_t max_webhook_key_bytes = 64;

/// "whsec_<base64>" -> the raw key bytes (24 to 64 of them). Errors never
/// quote the secret.
expected<std::string> decode_webhook_secret(std::string_view secret);

/// The webhook-signature header value for one attempt.
std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                              std::string_view body);

std::string base64_encode(std::string_view bytes);
expected<std::string> base64_decode(std::string_view text);

} // namespace importwatch::core
