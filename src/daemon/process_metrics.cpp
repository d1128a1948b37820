#include "daemon/process_metrics.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace importwatch::daemon {
namespace {

std::string read_small_file(char const* path) {
    std::ifstream in(path);
    std::string text;
    std::getline(in, text, '\0');   // /proc files are a few hundred bytes
    return text;
}

std::optional<double> number(std::string_view s) {
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

/// The fields of /proc/self/stat after the command name (which may hold
/// spaces and parentheses, so it ends at the last ')'): [0] is field 3, state.
std::vector<std::string_view> stat_fields(std::string_view stat) {
    std::vector<std::string_view> out;
    auto const close = stat.rfind(')');
    if (close == std::string_view::npos) return out;
    stat.remove_prefix(close + 1);
    while (!stat.empty()) {
        auto const start = stat.find_first_not_of(" \n");
        if (start == std::string_view::npos) break;
        stat.remove_prefix(start);
        auto const end = stat.find_first_of(" \n");
        out.push_back(stat.substr(0, end));
        if (end == std::string_view::npos) break;
        stat.remove_prefix(end);
    }
    return out;
}

/// Boot time (Unix seconds) from /proc/stat's btime line.
std::optional<double> boot_time() {
    std::istringstream in(read_small_file("/proc/stat"));
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("btime ")) return number(std::string_view(line).substr(6));
    return std::nullopt;
}

} // namespace

process_stats read_process_stats() {
    process_stats p;
    auto const ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    auto const page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    auto const stat = read_small_file("/proc/self/stat");
    auto const f = stat_fields(stat);
    // proc(5): utime (14), stime (15), starttime (22), vsize (23), rss (24).
    auto field = [&](std::size_t n) { return f.size() > n - 3 ? number(f[n - 3]) : std::nullopt; };
    if (auto utime = field(14), stime = field(15); utime && stime && ticks > 0)
        p.cpu_seconds = (*utime + *stime) / ticks;
    if (auto start = field(22), boot = boot_time(); start && boot && ticks > 0)
        p.start_time_seconds = *boot + *start / ticks;
    p.virtual_bytes = field(23);
    if (auto rss = field(24); rss && page > 0) p.resident_bytes = *rss * page;

    std::error_code ec;
    std::size_t fds = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
    if (!ec) p.open_fds = static_cast<double>(fds);
    if (rlimit limit{}; ::getrlimit(RLIMIT_NOFILE, &limit) == 0) p.max_fds = static_cast<double>(limit.rlim_cur);
    return p;
}

} // namespace importwatch::daemon
