#include "core/yaml_documents.hpp"

#include <sstream>

#include <yaml-cpp/eventhandler.h>

namespace importwatch::core {

namespace {

// Notes where each document starts and where its root node is.
class document_starts final : public YAML::EventHandler {
public:
    std::vector<YAML::Mark> starts;
    std::vector<YAML::Mark> roots;

    void OnDocumentStart(YAML::Mark const& mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(YAML::Mark const& mark, YAML::anchor_t) override { node(mark); }
    void OnAlias(YAML::Mark const& mark, YAML::anchor_t) override { node(mark); }
    void OnScalar(YAML::Mark const& mark, std::string const&, YAML::anchor_t, std::string const&) override {
        node(mark);
    }
    void OnSequenceStart(YAML::Mark const& mark, std::string const&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        node(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(YAML::Mark const& mark, std::string const&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        node(mark);
    }
    void OnMapEnd() override {}

private:
    void node(YAML::Mark const& mark) {
        if (roots.size() < starts.size()) roots.push_back(mark);
    }
};

} // namespace

yaml_documents load_yaml_documents(std::string const& text) {
    yaml_documents out;
    out.first = YAML::Load(text);   // one document only: this always returns
    std::istringstream in(text);
    YAML::Parser parser(in);
    document_starts starts;
    // Three documents tell all we need: a second one, or the parser stuck
    // (two documents starting at the same place).
    for (int i = 0; i < 3 && parser.HandleNextDocument(starts); ++i) {
    }
    auto const& s = starts.starts;
    for (std::size_t i = 1; i < s.size(); ++i) {
        if (s[i].pos != s[i - 1].pos) continue;
        bool const comma = s[i].pos >= 0 && static_cast<std::size_t>(s[i].pos) < text.size() && text[s[i].pos] == ',';
        throw YAML::ParserException(s[i], comma ? "unexpected ','" : "a document that cannot be read");
    }
    // Where its root node is, as YAML::LoadAll's second node would say.
    if (s.size() > 1) out.second = starts.roots.size() > 1 ? starts.roots[1] : s[1];
    return out;
}

} // namespace importwatch::core
