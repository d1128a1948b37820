#pragma once
// A watch's identity — the import it polls — and the one syntax of its parts,
// shared by the config, `wait PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID`, the
// simulator's scenarios and LaunchDarkly's import path.
#include <compare>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/expected.hpp"

namespace importwatch::core {

struct watch_key {
    std::string project;
    std::string environment;
    std::string segment;
    std::string import_id;

    /// "project/environment/segment/import_id" — also the CloudEvent subject
    /// and the key of the watch's row in the state store.
    std::string path() const;
    auto operator<=>(watch_key const&) const = default;
};

/// For hash tables of watch keys (a reload matches 100,000 of them; no path
/// strings built for it).
struct watch_key_hash {
    std::size_t operator()(watch_key const& key) const noexcept;
};

/// A key that lives elsewhere, with its hash: for hash tables that match
/// 100,000 keys (duplicates in a config, running watches on reload) without
/// copying a key or hashing one twice. The key must outlive the reference.
struct watch_key_ref {
    watch_key const* key;
    std::size_t hash;
    explicit watch_key_ref(watch_key const& k) : key(&k), hash(watch_key_hash{}(k)) {}
    bool operator==(watch_key_ref const& o) const { return hash == o.hash && *key == *o.key; }
    struct hasher {
        std::size_t operator()(watch_key_ref const& r) const noexcept { return r.hash; }
    };
};

/// The characters a key part may use, as error messages spell them.
inline constexpr std::string_view key_part_syntax = "[A-Za-z0-9._-]+";

/// Whether `part` is a valid key part: [A-Za-z0-9._-]+. Project, environment
/// and segment are path segments of LaunchDarkly's URL, so "." and ".." are
/// refused for them (`dots_allowed` false); an import id may be either.
bool valid_key_part(std::string_view part, bool dots_allowed);

/// "PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID" as a key; the error says which
/// rule the text broke (it quotes the text: keys are not secret).
expected<watch_key> parse_watch_key(std::string_view text);

/// LaunchDarkly's resource for the key: /api/v2/segments/{p}/{e}/{s}/imports/{id}
/// (parts need no escaping: their syntax has nothing to escape), after
/// `base_path` (the path of a base_url such as https://host/ld, without its
/// trailing '/'), in one allocation: the poller builds one per poll.
std::string import_path(watch_key const& key, std::string_view base_path = {});

/// The key of an import path (a query is ignored); nullopt for any other path.
std::optional<watch_key> key_of_import_path(std::string_view target);

} // namespace importwatch::core
