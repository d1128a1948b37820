#include "core/webhook_signature.hpp"

#include <array>
#include <memory>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

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

namespace {

/// OpenSSL 3's one-shot HMAC() looks the MAC and the digest up by name on
/// every call (~a third of a signature's cost); they are fetched once here.
/// A fetched EVP_MAC is immutable and safe to share between threads.
EVP_MAC* hmac_algorithm() {
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    return mac;
}

} // namespace

std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp,
                              std::string_view body) {
    auto const ts = std::to_string(timestamp);
    std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_new(hmac_algorithm()),
                                                                 &EVP_MAC_CTX_free);
    char digest[] = "SHA256";
    OSSL_PARAM const params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    static constexpr unsigned char no_key = 0;
    auto const* key_data = key.empty() ? &no_key : reinterpret_cast<unsigned char const*>(key.data());
    auto const update = [&](std::string_view part) {
        return EVP_MAC_update(ctx.get(), reinterpret_cast<unsigned char const*>(part.data()), part.size()) == 1;
    };
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    std::size_t mac_len = 0;
    // The signed content is "id.timestamp.body" (Standard Webhooks), fed in
    // parts rather than copied into one string.
    bool const ok = ctx && EVP_MAC_init(ctx.get(), key_data, key.size(), params) == 1 && update(id) &&
                    update(".") && update(ts) && update(".") && update(body) &&
                    EVP_MAC_final(ctx.get(), mac.data(), &mac_len, mac.size()) == 1;
    // Only allocation failure inside OpenSSL gets here.
    if (!ok) throw std::runtime_error("HMAC-SHA256 failed");
    return "v1," + base64_encode(std::string_view(reinterpret_cast<char const*>(mac.data()), mac_len));
}

} // namespace importwatch::core
