#include "core/api_token.hpp"

#include <algorithm>
#include <string>

namespace importwatch::core {

std::string_view secret_text(std::string_view text) {
    static constexpr std::string_view bom = "\xEF\xBB\xBF";
    if (text.starts_with(bom)) text.remove_prefix(bom.size());
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                             text.back() == '\n' || text.back() == '\v' || text.back() == '\f'))
        text.remove_suffix(1);
    return text;
}

expected<void> check_api_token(std::string_view token) {
    if (token.empty()) return fail("the token is empty");
    if (token.size() > max_api_token_bytes)
        return fail("the token is " + std::to_string(token.size()) + " bytes; at most " +
                    std::to_string(max_api_token_bytes) + " are allowed");
    if (!std::all_of(token.begin(), token.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; }))
        return fail("the token holds a space, a control character or a byte that is not ASCII "
                    "(a token is printable ASCII without spaces)");
    return {};
}

} // namespace importwatch::core
