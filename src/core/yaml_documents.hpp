#pragma once
// Reading the one YAML document a config or watch file must hold.
#include <optional>
#include <string>

#include <yaml-cpp/yaml.h>

namespace importwatch::core {

struct yaml_documents {
    YAML::Node first;                  // null when the text holds no document
    std::optional<YAML::Mark> second;  // where a second document starts
};

/// The first document of `text` and where a second one starts, if any;
/// throws YAML::Exception for invalid YAML. Never YAML::LoadAll: yaml-cpp
/// 0.7's parser reports endless empty documents, never moving on, for a
/// document that starts with a stray "," (found by fuzzing), so LoadAll
/// loops until memory runs out. Here a document that makes no progress is
/// invalid YAML.
yaml_documents load_yaml_documents(std::string const& text);

} // namespace importwatch::core
