#include "core/http_exchange.hpp"

namespace importwatch::core {

std::string to_text(request_failure const& f) {
    std::string_view kind = f.kind == failure_kind::timeout            ? "timeout"
                            : f.kind == failure_kind::invalid_response ? "invalid response"
                                                                        : "network";
    std::string text(kind);
    if (!f.message.empty()) text += ": " + f.message;
    return text;
}

} // namespace importwatch::core
