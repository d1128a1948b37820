#pragma once
// The standard process_* metrics, as the Prometheus client libraries export
// them on Linux: read from /proc/self at each scrape.
#include <optional>

namespace importwatch::daemon {

/// What could be read; a value /proc did not give is left out of /metrics.
struct process_stats {
    std::optional<double> cpu_seconds;         // user + system
    std::optional<double> resident_bytes;
    std::optional<double> virtual_bytes;
    std::optional<double> start_time_seconds;  // Unix time
    std::optional<double> open_fds;
    std::optional<double> max_fds;             // the soft RLIMIT_NOFILE
};

process_stats read_process_stats();

} // namespace importwatch::daemon
