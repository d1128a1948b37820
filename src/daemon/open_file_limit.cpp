#include "daemon/open_file_limit.hpp"

#include <cerrno>
#include <cstring>

#include <sys/resource.h>

#include <spdlog/spdlog.h>

namespace importwatch::daemon {

void raise_open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        spdlog::warn("cannot read the open-file limit: {}", std::strerror(errno));
        return;
    }
    if (limit.rlim_cur == limit.rlim_max) return;
    auto const before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        spdlog::warn("cannot raise the open-file limit from {}: {}", before, std::strerror(errno));
        return;
    }
    spdlog::debug("raised the open-file limit from {} to {}", before, limit.rlim_cur);
}

} // namespace importwatch::daemon
