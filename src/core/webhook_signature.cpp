#include "core/webhook_signature.hpp"

#include <array>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/untrusted_text.hpp"

namespace importwatch::core {

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view secret_prefix = "whsec_";

/// The 6-bit value of a base64 character, or -1.
int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

} // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto const byte = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
    for (; i + 3 <= bytes.size(); i += 3) {
        unsigned const v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out.push_back(alphabet[(v >> 6) & 63]);
        out.push_back(alphabet[v & 63]);
    }
    if (auto const rest = bytes.size() - i; rest == 1) {
        unsigned const v = byte(i) << 16;
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out += "==";
    } else if (rest == 2) {
        unsigned const v = (byte(i) << 16) | (byte(i + 1) << 8);
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out.push_back(alphabet[(v >> 6) & 63]);
        out.push_back('=');
    }
    return out;
}

expected<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return fail("length is not a multiple of 4");
    std::size_t padding = 0;
    if (!text.empty() && text.back() == '=') ++padding;
    if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;

    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        bool const last = i + 4 == text.size();
        std::size_t const pad_here = last ? padding : 0;
        unsigned v = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            int s = 0;
            if (k < 4 - pad_here) {
                s = sextet(text[i + k]);
                // '=' anywhere but the tail, or any foreign character
                if (s < 0) return fail("invalid character");
            }
            v = (v << 6) | static_cast<unsigned>(s);
        }
        out.push_back(static_cast<char>((v >> 16) & 0xff));
        if (pad_here < 2) out.push_back(static_cast<char>((v >> 8) & 0xff));
        if (pad_here < 1) out.push_back(static_cast<char>(v & 0xff));
    }
    return out;
}

expected<std::string> decode_webhook_secret(std::string_view secret) {
    // Secret files usually end with a newline.
    secret = trim(secret);
    if (!secret.starts_with(secret_prefix)) return fail("must start with whsec_");
    auto key = base64_decode(secret.substr(secret_prefix.size()));
    // Never echo the secret or where decoding broke inside it.
    if (!key) return fail("is not valid base64");
    if (key->empty()) return fail("has no key after whsec_");
    if (key->size() < min_webhook_key_bytes || key->size() > max_webhook_key_bytes)
        return fail("decodes to " + std::to_string(key->size()) + " bytes; a key must be " +
                    std::to_string(min_webhook_key_bytes) + " to " + std::to_string(max_webhook_key_bytes) +
                    " bytes (Standard Webhooks)");
    return key;
}

std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                              std::string_view body) {
    std::string message;
    auto const ts = std::to_string(timestamp);
    message.reserve(id.size() + ts.size() + body.size() + 2);
    message.append(id).append(".").append(ts).append(".").append(body);

    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_len = 0;
    static constexpr unsigned char no_key = 0;
    auto const* key_data = key.empty() ? &no_key : reinterpret_cast<unsigned char const*>(key.data());
    HMAC(EVP_sha256(), key_data, static_cast<int>(key.size()),
         reinterpret_cast<unsigned char const*>(message.data()), message.size(), mac.data(), &mac_len);
    return "v1," + base64_encode(std::string_view(reinterpret_cast<char const*>(mac.data()), mac_len));
}

} // namespace importwatch::core
