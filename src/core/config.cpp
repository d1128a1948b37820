#include "core/config.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <arpa/inet.h>   // inet_pton: a pure parser, no sockets involved
#include <netinet/in.h>

namespace importwatch::core {

bool webhook_config::accepts(std::string_view type, std::string_view watch_name) const {
    bool type_ok = types.empty() || std::find(types.begin(), types.end(), type) != types.end();
    bool watch_ok =
        watches.empty() || std::find(watches.begin(), watches.end(), watch_name) != watches.end();
    return type_ok && watch_ok;
}

milliseconds stall_threshold(watch_config const& watch, polling_config const& polling, std::string_view status) {
    for (stall_thresholds const* t : {&watch.stall_after, &polling.stall_after}) {
        if (auto it = t->by_status.find(status); it != t->by_status.end()) return it->second;
        if (t->fallback) return *t->fallback;
    }
    return default_stall_after;
}

bool admin_config::beyond_loopback() const {
    if (listen.empty()) return false;
    return !is_loopback_host(std::string_view(listen).substr(0, listen.rfind(':')));
}

bool is_metric_label_name(std::string_view name) {
    auto const ascii_alpha = [](unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (name.empty() || name.starts_with("__")) return false;
    if (!ascii_alpha(static_cast<unsigned char>(name.front())) && name.front() != '_') return false;
    return std::all_of(name.begin(), name.end(), [&](unsigned char c) {
        return ascii_alpha(c) || (c >= '0' && c <= '9') || c == '_';
    });
}

bool is_loopback_host(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    std::string h(host);
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (h == "localhost" || h == "localhost.") return true;

    in_addr v4{};
    if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
        if (std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0) return true;
        // ::ffff:127.x.y.z is IPv4 loopback in IPv6 clothing.
        static constexpr unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return std::memcmp(v6.s6_addr, mapped_prefix, 12) == 0 && v6.s6_addr[12] == 127;
    }
    return false;
}

} // namespace importwatch::core
