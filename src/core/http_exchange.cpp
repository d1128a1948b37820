#include "core/http_exchange.hpp"

#include <algorithm>

namespace importwatch::core {

bool same_header_name(std::string_view a, std::string_view b) {
    auto const lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [&](char x, char y) { return lower(x) == lower(y); });
}

std::optional<std::string_view> http_reply::header(std::string_view name) const {
    for (auto const& h : headers)
        if (same_header_name(h.name, name)) return h.value;
    return std::nullopt;
}

std::string to_text(request_failure const& f) {
    std::string_view kind = f.kind == failure_kind::timeout            ? "timeout"
                            : f.kind == failure_kind::invalid_response ? "invalid response"
                                                                        : "network";
    std::string text(kind);
    if (!f.message.empty()) text += ": " + f.message;
    return text;
}

} // namespace importwatch::core
