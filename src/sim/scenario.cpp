#include "sim/scenario.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <span>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "core/duration.hpp"
#include "core/spelling.hpp"
#include "core/watch_key.hpp"

namespace importwatch::sim {

std::string simulated_import::path() const {
    return project + "/" + environment + "/" + segment + "/" + import_id;
}

namespace {

// Thrown inside the parser only; parse_scenario turns it into an error value.
struct scenario_error {
    std::string message;
};

struct type_name {
    fault_type type;
    std::string_view name;
};

constexpr type_name fault_type_names[] = {
    {fault_type::rate_limit, "rate_limit"},       {fault_type::remaining_zero, "remaining_zero"},
    {fault_type::server_error, "server_error"},   {fault_type::delay, "delay"},
    {fault_type::reset, "reset"},                 {fault_type::truncate, "truncate"},
    {fault_type::malformed, "malformed"},         {fault_type::oversized, "oversized"},
    {fault_type::unauthorized, "unauthorized"},   {fault_type::forbidden, "forbidden"},
    {fault_type::not_found, "not_found"},         {fault_type::bad_request, "bad_request"},
    {fault_type::invalid_field, "invalid_field"}, {fault_type::unknown_status, "unknown_status"},
    {fault_type::flapping_files, "flapping_files"}, {fault_type::invented_status, "invented_status"},
};

constexpr std::array<std::string_view, 12> fault_keys{
    "type", "from", "until", "count", "probability", "status", "retry_after", "retry_after_date", "reset_in", "delay",
    "files", "length",
};

class parser {
public:
    explicit parser(std::string const& file_name) : file_(file_name) {}

    scenario parse_document(YAML::Node const& root) {
        scenario sc;
        if (!root.IsDefined() || root.IsNull()) fail_at(root, "", "the scenario is empty");
        auto const top = map(root, "", {"token", "imports", "faults"});
        if (auto token = top.find("token")) sc.token = string(token->value, "token", false);
        auto const* imports = top.find("imports");
        if (!imports) fail_at(root, "", "missing key \"imports\"");
        auto const& list = sequence(imports->value, "imports");
        if (list.size() == 0) fail_at(imports->value, "imports", "needs at least one import");
        std::set<std::string> paths;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto const path = "imports[" + std::to_string(i) + "]";
            auto imp = parse_import(list[i], path);
            if (!paths.insert(imp.path()).second) fail_at(list[i], path, "duplicate import " + imp.path());
            sc.imports.push_back(std::move(imp));
        }
        if (auto faults = top.find("faults")) sc.faults = parse_faults(faults->value, "faults");
        return sc;
    }

private:
    struct entry {
        std::string key;
        YAML::Node key_node;
        YAML::Node value;
    };
    struct mapping {
        std::vector<entry> entries;
        entry const* find(std::string_view key) const {
            for (auto const& e : entries)
                if (e.key == key) return &e;
            return nullptr;
        }
    };

    [[noreturn]] void fail_at(YAML::Node const& node, std::string const& path, std::string const& message) const {
        auto const mark = node.Mark();
        std::string where = file_;
        if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
        throw scenario_error{where + ": " + (path.empty() ? "" : path + ": ") + message};
    }

    static std::string join(std::string const& path, std::string const& key) {
        return path.empty() ? key : path + "." + key;
    }

    // A mapping whose keys must all be in `allowed`; duplicates are errors
    // (yaml-cpp 0.7 would silently keep one of them).
    mapping map(YAML::Node const& node, std::string const& path, std::vector<std::string_view> const& allowed,
                std::string_view not_here = {}) const {
        if (!node.IsMap()) fail_at(node, path, "expected a mapping");
        mapping m;
        for (auto const& kv : node) {
            if (!kv.first.IsScalar()) fail_at(kv.first, path, "keys must be strings");
            auto key = kv.first.Scalar();
            auto const key_path = join(path, key);
            if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
                if (!not_here.empty() && std::find(fault_keys.begin(), fault_keys.end(), key) != fault_keys.end())
                    fail_at(kv.first, key_path, std::string(not_here));
                std::string message = "unknown key";
                if (auto hint = core::closest_match(key, allowed)) message += " (did you mean \"" + *hint + "\"?)";
                fail_at(kv.first, key_path, message);
            }
            if (m.find(key)) fail_at(kv.first, key_path, "duplicate key");
            m.entries.push_back({std::move(key), kv.first, kv.second});
        }
        return m;
    }

    YAML::Node const& sequence(YAML::Node const& node, std::string const& path) const {
        if (!node.IsSequence()) fail_at(node, path, "expected a list");
        return node;
    }

    std::string string(YAML::Node const& node, std::string const& path, bool allow_empty) const {
        if (!node.IsScalar()) fail_at(node, path, "expected a string");
        if (!allow_empty && node.Scalar().empty()) fail_at(node, path, "must not be empty");
        return node.Scalar();
    }

    std::string required_string(mapping const& m, YAML::Node const& node, std::string const& path,
                                 std::string const& key) const {
        auto const* e = m.find(key);
        if (!e) fail_at(node, path, "missing key \"" + key + "\"");
        return string(e->value, join(path, key), false);
    }

    std::string identifier(mapping const& m, YAML::Node const& node, std::string const& path,
                           std::string const& key) const {
        auto value = required_string(m, node, path, key);
        // Stricter than a watch's import_id: no "." or ".." anywhere.
        if (!core::valid_key_part(value, false))
            fail_at(m.find(key)->value, join(path, key), "must match " + std::string(core::key_part_syntax));
        return value;
    }

    milliseconds duration(YAML::Node const& node, std::string const& path) const {
        if (!node.IsScalar()) fail_at(node, path, "expected a duration like 500ms, 2s or 1h30m");
        auto d = core::parse_duration(node.Scalar());
        if (!d) fail_at(node, path, "expected a duration like 500ms, 2s or 1h30m");
        if (d->count() < 0) fail_at(node, path, "must not be negative");
        return *d;
    }

    double number(YAML::Node const& node, std::string const& path) const {
        if (!node.IsScalar()) fail_at(node, path, "expected a number");
        try {
            return node.as<double>();
        } catch (YAML::Exception const&) {
            fail_at(node, path, "expected a number");
        }
    }

    std::int64_t integer(YAML::Node const& node, std::string const& path) const {
        if (!node.IsScalar()) fail_at(node, path, "expected an integer");
        try {
            return node.as<std::int64_t>();
        } catch (YAML::Exception const&) {
            fail_at(node, path, "expected an integer");
        }
    }

    bool boolean(YAML::Node const& node, std::string const& path) const {
        if (!node.IsScalar()) fail_at(node, path, "expected true or false");
        try {
            return node.as<bool>();
        } catch (YAML::Exception const&) {
            fail_at(node, path, "expected true or false");
        }
    }

    simulated_import parse_import(YAML::Node const& node, std::string const& path) {
        auto const m = map(node, path, {"project", "environment", "segment", "import_id", "mode", "steps", "faults"});
        simulated_import imp;
        imp.project = identifier(m, node, path, "project");
        imp.environment = identifier(m, node, path, "environment");
        imp.segment = identifier(m, node, path, "segment");
        imp.import_id = identifier(m, node, path, "import_id");
        if (auto mode = m.find("mode")) {
            imp.mode = string(mode->value, join(path, "mode"), false);
            if (imp.mode != "merge" && imp.mode != "replace")
                fail_at(mode->value, join(path, "mode"), "must be merge or replace");
        }
        auto const* steps = m.find("steps");
        if (!steps) fail_at(node, path, "missing key \"steps\"");
        auto const steps_path = join(path, "steps");
        auto const& list = sequence(steps->value, steps_path);
        if (list.size() == 0) fail_at(steps->value, steps_path, "needs at least one step");
        for (std::size_t i = 0; i < list.size(); ++i) {
            bool const last = i + 1 == list.size();
            imp.steps.push_back(parse_step(list[i], steps_path + "[" + std::to_string(i) + "]", last));
        }
        if (auto faults = m.find("faults")) imp.faults = parse_faults(faults->value, join(path, "faults"));
        return imp;
    }

    import_step parse_step(YAML::Node const& node, std::string const& path, bool last) {
        auto const m = map(node, path, {"status", "for", "files"});
        import_step step;
        step.status = required_string(m, node, path, "status");
        if (auto d = m.find("for")) {
            // The last step lasts forever: a duration there would be a lie.
            if (last) fail_at(d->value, join(path, "for"), "the last step lasts forever; remove \"for\"");
            step.duration = duration(d->value, join(path, "for"));
            if (step.duration.count() == 0) fail_at(d->value, join(path, "for"), "must be greater than 0");
        } else if (!last) {
            fail_at(node, path, "missing key \"for\" (only the last step lasts forever)");
        }
        if (auto files = m.find("files")) {
            auto const files_path = join(path, "files");
            auto const& list = sequence(files->value, files_path);
            std::set<std::string> names;
            for (std::size_t i = 0; i < list.size(); ++i) {
                auto const file_path = files_path + "[" + std::to_string(i) + "]";
                auto const fm = map(list[i], file_path, {"filename", "status"});
                file_step f;
                f.filename = required_string(fm, list[i], file_path, "filename");
                f.status = required_string(fm, list[i], file_path, "status");
                if (!names.insert(f.filename).second)
                    fail_at(fm.find("filename")->value, join(file_path, "filename"), "duplicate file " + f.filename);
                step.files.push_back(std::move(f));
            }
        }
        return step;
    }

    std::vector<fault> parse_faults(YAML::Node const& node, std::string const& path) {
        auto const& list = sequence(node, path);
        std::vector<fault> faults;
        for (std::size_t i = 0; i < list.size(); ++i)
            faults.push_back(parse_fault(list[i], path + "[" + std::to_string(i) + "]"));
        return faults;
    }

    fault parse_fault(YAML::Node const& node, std::string const& path) {
        if (!node.IsMap()) fail_at(node, path, "expected a mapping");
        auto const type_node = node["type"];
        if (!type_node) fail_at(node, path, "missing key \"type\"");
        auto const type_text = string(type_node, join(path, "type"), false);
        auto const* known = std::find_if(std::begin(fault_type_names), std::end(fault_type_names),
                                         [&](type_name const& t) { return t.name == type_text; });
        if (known == std::end(fault_type_names)) {
            std::string names;
            for (auto const& t : fault_type_names) names += (names.empty() ? "" : ", ") + std::string(t.name);
            fail_at(type_node, join(path, "type"), "unknown fault type \"" + type_text + "\" (one of " + names + ")");
        }
        fault f;
        f.type = known->type;

        // Each type accepts the common keys plus only the ones it uses.
        std::vector<std::string_view> allowed{"type", "from", "until", "count", "probability"};
        switch (f.type) {
        case fault_type::rate_limit:
            allowed.insert(allowed.end(), {"retry_after", "retry_after_date", "reset_in"});
            break;
        case fault_type::remaining_zero: allowed.push_back("reset_in"); break;
        case fault_type::server_error: allowed.push_back("status"); break;
        case fault_type::delay: allowed.push_back("delay"); break;
        case fault_type::flapping_files: allowed.push_back("files"); break;
        case fault_type::invented_status: allowed.push_back("length"); break;
        default: break;
        }
        auto const m = map(node, path, allowed, "not used by fault type " + type_text);

        if (auto e = m.find("from")) f.from = duration(e->value, join(path, "from"));
        if (auto e = m.find("until")) {
            f.until = duration(e->value, join(path, "until"));
            if (*f.until <= f.from) fail_at(e->value, join(path, "until"), "must be after \"from\"");
        }
        if (auto e = m.find("count")) {
            auto const n = integer(e->value, join(path, "count"));
            if (n < 1) fail_at(e->value, join(path, "count"), "must be at least 1");
            f.count = static_cast<std::uint64_t>(n);
        }
        if (auto e = m.find("probability")) {
            f.probability = number(e->value, join(path, "probability"));
            if (!(f.probability >= 0.0 && f.probability <= 1.0))
                fail_at(e->value, join(path, "probability"), "must be between 0 and 1");
        }
        if (auto e = m.find("status")) {
            auto const s = integer(e->value, join(path, "status"));
            if (s < 500 || s > 599) fail_at(e->value, join(path, "status"), "must be a 5xx status");
            f.status = static_cast<int>(s);
        }
        if (auto e = m.find("retry_after")) f.retry_after = duration(e->value, join(path, "retry_after"));
        if (auto e = m.find("retry_after_date")) {
            f.retry_after_date = boolean(e->value, join(path, "retry_after_date"));
            if (f.retry_after_date && !f.retry_after)
                fail_at(e->value, join(path, "retry_after_date"), "needs \"retry_after\"");
        }
        if (auto e = m.find("reset_in")) f.reset_in = duration(e->value, join(path, "reset_in"));
        if (f.type == fault_type::remaining_zero && !f.reset_in)
            fail_at(node, path, "missing key \"reset_in\" (remaining_zero says when the window resets)");
        if (auto e = m.find("files")) {
            auto const n = integer(e->value, join(path, "files"));
            if (n < 1 || n > 20000) fail_at(e->value, join(path, "files"), "must be between 1 and 20000");
            f.files = static_cast<std::size_t>(n);
        }
        if (auto e = m.find("length")) {
            auto const n = integer(e->value, join(path, "length"));
            if (n < 1 || n > 512 * 1024) fail_at(e->value, join(path, "length"), "must be between 1 and 524288");
            f.length = static_cast<std::size_t>(n);
        }
        if (f.type == fault_type::delay) {
            auto const* e = m.find("delay");
            if (!e) fail_at(node, path, "missing key \"delay\"");
            f.delay = duration(e->value, join(path, "delay"));
            if (f.delay.count() == 0) fail_at(e->value, join(path, "delay"), "must be greater than 0");
        }
        return f;
    }

    std::string file_;
};

} // namespace

std::string_view to_string(fault_type type) {
    for (auto const& t : fault_type_names)
        if (t.type == type) return t.name;
    return "unknown";
}

core::expected<scenario> parse_scenario(std::string_view yaml_text, std::string const& file_name) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml_text));
    } catch (YAML::ParserException const& e) {
        return core::fail(file_name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": " + e.msg);
    } catch (YAML::Exception const& e) {
        return core::fail(file_name + ": " + e.what());
    }
    try {
        return parser(file_name).parse_document(root);
    } catch (scenario_error& e) {
        return core::fail(std::move(e.message));
    }
}

} // namespace importwatch::sim
