#pragma once
// Reading the one YAML document a config or watch file must hold.
//
// yaml-cpp's own node tree (YAML::Load) costs a shared_ptr, a node, a
// node_ref, a node_data and a set entry per node, and building it took as
// long as scanning the text: with 100,000 watches start-up spent most of its
// time there. The tree here is built from the same parser's events in one
// pass, holds only what the config parser reads (kind, mark, scalar text,
// children) and lives only while a file is parsed. Its accessors keep
// YAML::Node's names so that the parser reads as it did.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/mark.h>

namespace importwatch::core {

class yaml_node;

namespace detail {
struct yaml_item {
    enum class kind : std::uint8_t { null, scalar, sequence, map };
    kind type = kind::null;
    YAML::Mark mark;
    std::string scalar;
    // A sequence's items, or a mapping's keys and values alternating, in
    // document order (duplicate keys are kept: the parser reports them).
    std::vector<yaml_item const*> children;
};
} // namespace detail

/// A node of a parsed document: a handle into its yaml_document, which must
/// outlive it. A default-constructed node is null and has a null mark.
class yaml_node {
public:
    yaml_node() = default;
    explicit yaml_node(detail::yaml_item const* item) : item_(item) {}

    bool IsNull() const { return !item_ || item_->type == detail::yaml_item::kind::null; }
    bool IsScalar() const { return item_ && item_->type == detail::yaml_item::kind::scalar; }
    bool IsSequence() const { return item_ && item_->type == detail::yaml_item::kind::sequence; }
    bool IsMap() const { return item_ && item_->type == detail::yaml_item::kind::map; }
    /// The text of a scalar; empty for anything else.
    std::string const& Scalar() const;
    YAML::Mark Mark() const { return item_ ? item_->mark : YAML::Mark::null_mark(); }

    /// A sequence's items (empty for anything else).
    std::vector<yaml_node> items() const;
    /// A mapping's (key, value) pairs in document order (empty for anything else).
    std::vector<std::pair<yaml_node, yaml_node>> pairs() const;

private:
    detail::yaml_item const* item_ = nullptr;
};

/// The first document of a text, and where a second one starts, if any.
class yaml_document {
public:
    yaml_document() = default;
    yaml_document(yaml_document&&) = default;
    yaml_document& operator=(yaml_document&&) = default;

    yaml_node root() const { return yaml_node(root_); }
    /// Where a second document starts (as YAML::LoadAll's second node would say).
    std::optional<YAML::Mark> second;

private:
    friend yaml_document load_yaml_document(std::string const& text);
    std::deque<detail::yaml_item> items_;   // stable addresses while building
    detail::yaml_item const* root_ = nullptr;
};

/// Parses the first document of `text` with yaml-cpp's event parser and
/// notes where a second one starts; throws YAML::Exception for invalid YAML
/// (the same exceptions, with the same marks, as YAML::Load). Never
/// YAML::LoadAll: yaml-cpp 0.7's parser reports endless empty documents,
/// never moving on, for a document that starts with a stray "," (found by
/// fuzzing). Here a document that makes no progress is invalid YAML.
yaml_document load_yaml_document(std::string const& text);

} // namespace importwatch::core
