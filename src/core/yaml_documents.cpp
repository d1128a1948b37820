#include "core/yaml_documents.hpp"

#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

namespace importwatch::core {

using detail::yaml_item;

std::string const& yaml_node::Scalar() const {
    static std::string const none;
    return IsScalar() ? item_->scalar : none;
}

std::vector<yaml_node> yaml_node::items() const {
    std::vector<yaml_node> out;
    if (!IsSequence()) return out;
    out.reserve(item_->children.size());
    for (auto const* c : item_->children) out.emplace_back(c);
    return out;
}

std::vector<std::pair<yaml_node, yaml_node>> yaml_node::pairs() const {
    std::vector<std::pair<yaml_node, yaml_node>> out;
    if (!IsMap()) return out;
    auto const& c = item_->children;
    out.reserve(c.size() / 2);
    for (std::size_t i = 0; i + 1 < c.size(); i += 2) out.emplace_back(yaml_node(c[i]), yaml_node(c[i + 1]));
    return out;
}

namespace {

// Builds the first document's tree as yaml-cpp's NodeBuilder would (an
// alias is the anchored node itself), and notes where every document starts
// and where its root node is.
class tree_builder final : public YAML::EventHandler {
public:
    explicit tree_builder(std::deque<yaml_item>& items) : items_(items) {}

    std::vector<YAML::Mark> starts;
    std::vector<YAML::Mark> roots;
    yaml_item const* root = nullptr;

    void OnDocumentStart(YAML::Mark const& mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}

    void OnNull(YAML::Mark const& mark, YAML::anchor_t anchor) override {
        add(mark, yaml_item::kind::null, anchor);
    }
    void OnAlias(YAML::Mark const& mark, YAML::anchor_t anchor) override {
        note_root(mark);
        if (!building()) return;
        // The parser has already refused an alias to an unknown anchor.
        attach(anchor < anchors_.size() ? anchors_[anchor] : nullptr);
    }
    void OnScalar(YAML::Mark const& mark, std::string const&, YAML::anchor_t anchor,
                  std::string const& value) override {
        if (auto* item = add(mark, yaml_item::kind::scalar, anchor)) item->scalar = value;
    }
    void OnSequenceStart(YAML::Mark const& mark, std::string const&, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        open(add(mark, yaml_item::kind::sequence, anchor));
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(YAML::Mark const& mark, std::string const&, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        open(add(mark, yaml_item::kind::map, anchor));
    }
    void OnMapEnd() override { close(); }

private:
    // Only the first document is kept; the others are only located.
    bool building() const { return starts.size() == 1; }

    void note_root(YAML::Mark const& mark) {
        if (roots.size() < starts.size()) roots.push_back(mark);
    }

    yaml_item* add(YAML::Mark const& mark, yaml_item::kind type, YAML::anchor_t anchor) {
        note_root(mark);
        if (!building()) return nullptr;
        auto& item = items_.emplace_back();
        item.type = type;
        item.mark = mark;
        if (anchor != YAML::NullAnchor) {
            if (anchors_.size() <= anchor) anchors_.resize(anchor + 1, nullptr);
            anchors_[anchor] = &item;
        }
        attach(&item);
        return &item;
    }

    void attach(yaml_item const* item) {
        if (!item) return;
        if (open_.empty()) {
            if (!root) root = item;
        } else {
            open_.back()->children.push_back(item);
        }
    }

    void open(yaml_item* item) {
        if (building()) open_.push_back(item);
    }
    void close() {
        if (building() && !open_.empty()) open_.pop_back();
    }

    std::deque<yaml_item>& items_;
    std::vector<yaml_item const*> anchors_;   // by anchor number
    std::vector<yaml_item*> open_;            // the containers being filled
};

} // namespace

yaml_document load_yaml_document(std::string const& text) {
    yaml_document out;
    std::istringstream in(text);
    YAML::Parser parser(in);
    tree_builder builder(out.items_);
    // Three documents tell all we need: a second one, or the parser stuck
    // (two documents starting at the same place).
    for (int i = 0; i < 3 && parser.HandleNextDocument(builder); ++i) {
    }
    auto const& s = builder.starts;
    for (std::size_t i = 1; i < s.size(); ++i) {
        if (s[i].pos != s[i - 1].pos) continue;
        bool const comma = s[i].pos >= 0 && static_cast<std::size_t>(s[i].pos) < text.size() && text[s[i].pos] == ',';
        throw YAML::ParserException(s[i], comma ? "unexpected ','" : "a document that cannot be read");
    }
    // Where its root node is, as YAML::LoadAll's second node would say.
    if (s.size() > 1) out.second = builder.roots.size() > 1 ? builder.roots[1] : s[1];
    out.root_ = builder.root;
    return out;
}

} // namespace importwatch::core
