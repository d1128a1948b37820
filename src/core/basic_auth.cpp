#include "core/basic_auth.hpp"

#include <algorithm>
#include <cctype>

#include "core/webhook_signature.hpp"

namespace importwatch::core {

namespace {

bool is_bcrypt_base64(unsigned char c) { return std::isalnum(c) || c == '.' || c == '/'; }

} // namespace

bool is_bcrypt_hash(std::string_view text) {
    // "$2y$10$" + 53 characters.
    if (text.size() != 60) return false;
    if (text[0] != '$' || text[1] != '2' || (text[2] != 'y' && text[2] != 'b' && text[2] != 'a') || text[3] != '$')
        return false;
    if (!std::isdigit(static_cast<unsigned char>(text[4])) || !std::isdigit(static_cast<unsigned char>(text[5])))
        return false;
    int const cost = (text[4] - '0') * 10 + (text[5] - '0');
    if (cost < 4 || cost > 31 || text[6] != '$') return false;
    return std::all_of(text.begin() + 7, text.end(), [](char c) { return is_bcrypt_base64(static_cast<unsigned char>(c)); });
}

std::optional<basic_credentials> parse_basic_authorization(std::string_view header) {
    auto const space = header.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    std::string scheme(header.substr(0, space));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme != "basic") return std::nullopt;
    auto token = header.substr(space + 1);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    auto decoded = base64_decode(token);
    if (!decoded) return std::nullopt;
    auto const colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    return basic_credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

} // namespace importwatch::core
