#include "daemon/bounded_file.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace importwatch::daemon {

namespace {

std::atomic<std::uint64_t> refused_not_regular{0};
std::atomic<std::uint64_t> refused_too_large{0};

std::string size_text(std::size_t bytes) {
    if (bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
    if (bytes % (1u << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
    return std::to_string(bytes) + " bytes";
}

core::unexpected<file_read_error> not_regular(mode_t mode) {
    ++refused_not_regular;
    char const* what = S_ISDIR(mode)    ? "a directory"
                       : S_ISFIFO(mode) ? "a FIFO"
                       : S_ISCHR(mode)  ? "a character device"
                       : S_ISBLK(mode)  ? "a block device"
                       : S_ISSOCK(mode) ? "a socket"
                                        : "not a file";
    return {{file_read_error::kind::not_regular, std::string("not a regular file (") + what + ")"}};
}

core::unexpected<file_read_error> too_large(std::size_t max_bytes) {
    ++refused_too_large;
    return {{file_read_error::kind::too_large, "larger than the limit of " + size_text(max_bytes)}};
}

core::unexpected<file_read_error> errno_error(file_read_error::kind kind, int error) {
    return {{kind, std::strerror(error)}};
}

// Closes the descriptor on every way out.
struct descriptor {
    int fd;
    ~descriptor() {
        if (fd >= 0) ::close(fd);
    }
};

} // namespace

core::expected<std::string, file_read_error> read_bounded_file(std::string const& path, std::size_t max_bytes) {
    // stat first, so a device is never even opened; then fstat what was
    // opened, in case the path was swapped in between (O_NONBLOCK keeps that
    // open from waiting for a FIFO's writer).
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno_error(file_read_error::kind::cannot_open, errno);
    if (!S_ISREG(st.st_mode)) return not_regular(st.st_mode);
    descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
    if (file.fd < 0) return errno_error(file_read_error::kind::cannot_open, errno);
    if (::fstat(file.fd, &st) != 0) return errno_error(file_read_error::kind::read_failed, errno);
    if (!S_ISREG(st.st_mode)) return not_regular(st.st_mode);
    if (static_cast<std::uintmax_t>(st.st_size) > max_bytes) return too_large(max_bytes);

    // The file may grow while it is read: never take more than max_bytes + 1.
    std::string out;
    out.resize(std::min<std::size_t>(static_cast<std::size_t>(st.st_size), max_bytes) + 1);
    std::size_t used = 0;
    for (;;) {
        if (used == out.size()) {
            if (used > max_bytes) return too_large(max_bytes);
            out.resize(std::min(max_bytes + 1, out.size() * 2));
        }
        ssize_t n = ::read(file.fd, out.data() + used, out.size() - used);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error(file_read_error::kind::read_failed, errno);
        }
        if (n == 0) break;
        used += static_cast<std::size_t>(n);
    }
    if (used > max_bytes) return too_large(max_bytes);
    out.resize(used);
    return out;
}

file_refusals refused_files() { return {refused_not_regular.load(), refused_too_large.load()}; }

} // namespace importwatch::daemon
