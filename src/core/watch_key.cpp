#include "core/watch_key.hpp"

#include <functional>

#include <algorithm>
#include <array>
#include <cstddef>

namespace importwatch::core {

namespace {

constexpr std::string_view segments_prefix = "/api/v2/segments/";
constexpr std::string_view imports_infix = "/imports/";

bool is_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

/// Splits `text` at '/' into exactly N parts; nullopt for any other count.
template <std::size_t N>
std::optional<std::array<std::string_view, N>> split_exactly(std::string_view text) {
    std::array<std::string_view, N> parts;
    for (std::size_t i = 0; i < N; ++i) {
        auto const slash = text.find('/');
        if ((slash == std::string_view::npos) != (i + 1 == N)) return std::nullopt;
        parts[i] = text.substr(0, slash);
        if (slash != std::string_view::npos) text.remove_prefix(slash + 1);
    }
    return parts;
}

} // namespace

std::size_t watch_key_hash::operator()(watch_key const& key) const noexcept {
    std::size_t h = 0;
    for (std::string_view part : {key.project, key.environment, key.segment, key.import_id})
        h = (h ^ std::hash<std::string_view>{}(part)) * 0x100000001b3ULL;   // FNV-style mix of the parts
    return h;
}

std::string watch_key::path() const {
    std::string p;
    p.reserve(project.size() + environment.size() + segment.size() + import_id.size() + 3);
    p.append(project).append("/").append(environment).append("/").append(segment).append("/").append(import_id);
    return p;
}

bool valid_key_part(std::string_view part, bool dots_allowed) {
    if (part.empty() || !std::all_of(part.begin(), part.end(), is_key_char)) return false;
    return dots_allowed || (part != "." && part != "..");
}

expected<watch_key> parse_watch_key(std::string_view text) {
    auto const quoted = "\"" + std::string(text) + "\": ";
    auto const parts = split_exactly<4>(text);
    if (!parts) return fail(quoted + "expected PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID");
    for (std::size_t i = 0; i < parts->size(); ++i) {
        if (!valid_key_part((*parts)[i], i == 3))
            return fail(quoted + "each part must match " + std::string(key_part_syntax));
    }
    return watch_key{std::string((*parts)[0]), std::string((*parts)[1]), std::string((*parts)[2]),
                     std::string((*parts)[3])};
}

std::string import_path(watch_key const& key, std::string_view base_path) {
    std::string t;
    t.reserve(base_path.size() + segments_prefix.size() + imports_infix.size() + key.project.size() +
              key.environment.size() + key.segment.size() + key.import_id.size() + 2);
    t.append(base_path).append(segments_prefix).append(key.project).append("/").append(key.environment).append("/");
    t.append(key.segment).append(imports_infix).append(key.import_id);
    return t;
}

std::optional<watch_key> key_of_import_path(std::string_view target) {
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    if (!target.starts_with(segments_prefix)) return std::nullopt;
    target.remove_prefix(segments_prefix.size());
    auto const parts = split_exactly<5>(target);
    if (!parts || (*parts)[3] != "imports") return std::nullopt;
    for (auto p : *parts)
        if (p.empty()) return std::nullopt;
    return watch_key{std::string((*parts)[0]), std::string((*parts)[1]), std::string((*parts)[2]),
                     std::string((*parts)[4])};
}

} // namespace importwatch::core
