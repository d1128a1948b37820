#pragma once
// Clocks and memory readings shared by the benchmarks. CPU time comes from
// getrusage (user + system) because wall time on a shared 2-core box mostly
// measures the neighbours.
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

#include "alloc_counter.hpp"

namespace importwatch::bench {

inline std::chrono::nanoseconds to_ns(timeval t) { return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec); }

/// User + system CPU of this process.
inline std::chrono::nanoseconds cpu_time() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return to_ns(ru.ru_utime) + to_ns(ru.ru_stime);
}

/// The kernel's share of cpu_time(): syscalls (epoll, socket reads/writes).
inline std::chrono::nanoseconds system_time() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return to_ns(ru.ru_stime);
}

/// A point in a run: wall clock, CPU of this process, allocations so far.
struct sample {
    std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
    std::chrono::nanoseconds cpu = cpu_time();
    std::chrono::nanoseconds sys = system_time();
    allocation_totals heap = allocations();
};

/// Resident set size in bytes, from /proc/self/statm (pages).
inline std::int64_t rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::int64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * sysconf(_SC_PAGESIZE);
}

/// A "Vm...:" line of /proc/self/status in bytes (VmHWM: peak RSS).
inline std::int64_t proc_status_bytes(std::string const& key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
    }
    return -1;
}

/// Keeps the optimiser from deleting a loop whose result nobody reads.
template <class T>
inline void keep(T const& value) {
    asm volatile("" : : "r,m"(value) : "memory");
}

} // namespace importwatch::bench
