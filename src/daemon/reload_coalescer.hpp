#pragma once
// Reload requests (SIGHUP, POST /-/reload) coalesced: at most one reload runs
// at a time and at most one waits; a reload starts at least `min_spacing`
// after the previous one ended. A storm of thousands of SIGHUPs costs two
// reloads, not thousands; a lone request after a quiet spell runs at once.
// Each request names its trigger ("SIGHUP", "POST /-/reload", "file change:
// …"); a reload is told the distinct triggers it covers.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/expected.hpp"
#include "daemon/metrics.hpp"
#include "net/asio.hpp"

namespace importwatch::daemon {

/// The least time between the end of one reload and the start of the next.
inline constexpr std::chrono::milliseconds reload_min_spacing{1000};

class reload_coalescer {
public:
    /// Called with the triggers the reload covers, e.g. "SIGHUP, file change: /etc/importwatch/config.yaml".
    using reload_fn = std::function<core::expected<void>(std::string const& triggers)>;

    /// Counts folded requests in `counters.reload_requests_coalesced`.
    reload_coalescer(asio::any_io_executor ex, metrics& counters, reload_fn reload,
                     std::chrono::milliseconds min_spacing = reload_min_spacing);
    ~reload_coalescer();
    reload_coalescer(reload_coalescer const&) = delete;
    reload_coalescer& operator=(reload_coalescer const&) = delete;

    /// Asks for a reload (SIGHUP, a file change) without waiting for it.
    void request(std::string trigger);
    /// Asks for a reload and returns the outcome of the one that covers the
    /// request (it may be shared with other requests).
    asio::awaitable<core::expected<void>> request_and_wait(std::string trigger);
    /// No reload starts any more; waiters get an error.
    void stop();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace importwatch::daemon
