#pragma once
// HTTP basic authentication for the admin server (RFC 7617), the pure parts:
// which password hashes a config may hold, and what an Authorization header
// claims. Verifying a password against a hash is daemon/admin_auth's job.
#include <optional>
#include <string>
#include <string_view>

namespace importwatch::core {

/// A bcrypt hash as htpasswd -B, mkpasswd -m bcrypt or crypt(3) write it:
/// "$2y$", "$2b$" or "$2a$", a two-digit cost 04–31, "$", then 53 characters
/// of bcrypt's base64 (22 of salt, 31 of hash).
bool is_bcrypt_hash(std::string_view text);

struct basic_credentials {
    std::string user;
    std::string password;
};

/// "Basic <base64(user:password)>" (scheme case-insensitive) -> the user and
/// password; nullopt for any other scheme, bad base64 or no colon.
std::optional<basic_credentials> parse_basic_authorization(std::string_view header);

} // namespace importwatch::core
