#pragma once
// The LaunchDarkly API token as importwatch reads it: what a secret's text
// means and which tokens can go into an Authorization header. Pure; the
// daemon reads the file or the variable.
#include <cstddef>
#include <string_view>

#include "core/expected.hpp"

namespace importwatch::core {

/// A longer token cannot be a LaunchDarkly token, and would fail every poll
/// with "field value too large" instead of failing at load.
inline constexpr std::size_t max_api_token_bytes = 4096;

/// A secret's text as meant: a leading UTF-8 byte order mark (Windows editors
/// write one) and trailing whitespace (the final newline, CR LF) removed.
/// Used for the token and for webhook secrets, from files and variables.
std::string_view secret_text(std::string_view text);

/// The token goes into a header line as is: 1 to max_api_token_bytes bytes
/// of printable ASCII without spaces. The error says what is wrong, never
/// what the token is.
expected<void> check_api_token(std::string_view token);

} // namespace importwatch::core
