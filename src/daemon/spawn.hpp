#pragma once
// Completion handler for co_spawn: work whose failure matters is never
// `detached` silently; an escaped exception is logged with what stopped.
#include <exception>

#include <spdlog/spdlog.h>

namespace importwatch::daemon {

inline auto log_on_failure(char const* what) {
    return [what](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (std::exception const& ex) {
            spdlog::critical("{} stopped: {}", what, ex.what());
        }
    };
}

} // namespace importwatch::daemon
