#pragma once
// Strings a peer chose (a status, a file name, an error message) on their way
// into logs, events and metrics: cut to a bounded length without splitting a
// UTF-8 sequence, and stripped of what could forge or disguise a line on a
// terminal or in a log viewer — C0 and DEL, C1 controls (U+0080–U+009F: CSI,
// NEL), the line and paragraph separators U+2028/U+2029, bidirectional
// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) — and
// invalid UTF-8.
#include <cstddef>
#include <string>
#include <string_view>

namespace importwatch::core {

/// Server-supplied text written outside the Import object (file names in
/// events and log lines, error messages) is cut to this many bytes.
inline constexpr std::size_t max_peer_text = 256;

/// `s` if it fits in `max_bytes`, else its first `max_bytes` bytes or fewer
/// (never half a UTF-8 sequence) followed by "…".
std::string truncated(std::string_view s, std::size_t max_bytes = max_peer_text);

/// `s` without the ASCII whitespace around it (space, tab, CR, LF): header
/// values, dates, secrets read from files.
std::string_view trim(std::string_view s);

/// Whether code point `cp` is one of those escaped (see above).
bool is_unsafe_code_point(char32_t cp);

/// The text-log form: \n, \r and \t as such, every other unsafe character as
/// \uXXXX (the spelling JSON uses), invalid UTF-8 as U+FFFD. Idempotent, and
/// allocation-free when nothing needs escaping (the string is moved through).
std::string printable(std::string s);

/// Serialized JSON (as boost::json::serialize writes it) made safe for a log
/// line or a receiver's terminal: unsafe characters inside strings become
/// \uXXXX escapes and invalid UTF-8 becomes \ufffd, so it stays valid JSON
/// with the same meaning.
std::string json_printable(std::string json);

} // namespace importwatch::core
