#pragma once
// The one way importwatch reads a file it is pointed at: the config, the
// files its watch_files match, token and webhook secret files. Those run on
// the event loop (a reload is a SIGHUP or a POST away), so a read must end
// soon and small: only regular files are read (a FIFO would block until a
// writer comes, /dev/zero never ends), opened with O_NONBLOCK, and never more
// than the limit + 1 bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/expected.hpp"

namespace importwatch::daemon {

/// The config file and each watch file (README "Limits").
inline constexpr std::size_t max_config_file_bytes = std::size_t{4} << 20;
/// A token or webhook secret file: a token is at most 4 KiB, a secret less.
inline constexpr std::size_t max_secret_file_bytes = std::size_t{64} << 10;

struct file_read_error {
    enum class kind {
        cannot_open,   // missing, no permission: errno's text
        not_regular,   // a FIFO, a device, a directory, a socket
        too_large,     // over the limit
        read_failed,   // errno during read()
    };
    kind what;
    std::string message;   // "No such file or directory", "not a regular file (a FIFO)", …
};

/// The whole content of the regular file `path`, at most `max_bytes` bytes.
core::expected<std::string, file_read_error> read_bounded_file(std::string const& path, std::size_t max_bytes);

/// Files refused since start (process-wide), for /metrics.
struct file_refusals {
    std::uint64_t not_regular = 0;
    std::uint64_t too_large = 0;
};
file_refusals refused_files();

} // namespace importwatch::daemon
