#include "core/url.hpp"

#include <algorithm>
#include <cctype>

#include "core/config.hpp"

namespace importwatch::core {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool is_reg_name_char(unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool is_ipv6_char(unsigned char c) { return std::isxdigit(c) || c == ':' || c == '.'; }

std::string default_port(std::string_view scheme) { return scheme == "https" ? "443" : "80"; }

} // namespace

std::string url::redacted() const {
    std::string out = scheme + "://";
    out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != default_port(scheme)) out += ":" + port;
    out += target.substr(0, target.find('?'));
    return out;
}

std::optional<url> parse_url(std::string_view text) {
    // Whitespace and control characters never belong in a URL; rejecting them
    // here also keeps them out of request lines.
    for (unsigned char c : text) {
        if (c <= 0x20 || c == 0x7f) return std::nullopt;
    }
    url u;
    auto sep = text.find("://");
    if (sep == std::string_view::npos) return std::nullopt;
    u.scheme = lower(text.substr(0, sep));
    if (u.scheme != "http" && u.scheme != "https") return std::nullopt;
    text.remove_prefix(sep + 3);

    auto authority_end = text.find_first_of("/?#");
    std::string_view authority = text.substr(0, authority_end);
    std::string_view rest = authority_end == std::string_view::npos ? std::string_view{}
                                                                    : text.substr(authority_end);

    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
        u.has_userinfo = true;
        authority.remove_prefix(at + 1);
    }

    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        std::string_view host = authority.substr(1, close - 1);
        if (host.empty() || host.find(':') == std::string_view::npos ||
            !std::all_of(host.begin(), host.end(), [](unsigned char c) { return is_ipv6_char(c); }))
            return std::nullopt;
        u.host = lower(host);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::nullopt;
            port = after.substr(1);
        }
    } else {
        auto colon = authority.find(':');
        std::string_view host = authority.substr(0, colon);
        if (host.empty() ||
            !std::all_of(host.begin(), host.end(), [](unsigned char c) { return is_reg_name_char(c); }))
            return std::nullopt;
        u.host = lower(host);
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }

    if (port.empty()) {
        u.port = default_port(u.scheme);
    } else {
        if (port.size() > 5 ||
            !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }))
            return std::nullopt;
        int number = std::stoi(std::string(port));
        if (number < 1 || number > 65535) return std::nullopt;
        u.port = std::to_string(number);
    }

    // The fragment is never sent to a server.
    rest = rest.substr(0, rest.find('#'));
    if (rest.empty()) {
        u.target = "/";
    } else if (rest.front() == '?') {
        u.target = "/" + std::string(rest);
    } else {
        u.target = std::string(rest);
    }
    return u;
}

expected<url> parse_config_url(std::string_view text) {
    auto u = parse_url(text);
    if (!u) return fail("expected an absolute http:// or https:// URL");
    if (u->has_userinfo) return fail("must not contain a user name or password (user:password@ before the host)");
    return *u;
}

expected<url> parse_secure_url(std::string_view text) {
    auto u = parse_config_url(text);
    if (!u) return u;
    if (!u->tls() && !is_loopback_host(u->host)) return fail("must use https:// (plain http:// only for loopback hosts)");
    return *u;
}

} // namespace importwatch::core
