#include "core/config_parser.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <yaml-cpp/exceptions.h>

#include "core/basic_auth.hpp"
#include "core/duration.hpp"
#include "core/event.hpp"
#include "core/import.hpp"
#include "core/spelling.hpp"
#include "core/url.hpp"
#include "core/webhook_body.hpp"
#include "core/webhook_headers.hpp"
#include "core/yaml_documents.hpp"

namespace importwatch::core {

namespace {

// Thrown inside this file only and turned into an expected<> at the entry
// points: validation is a deep walk and every step can fail.
struct config_error {
    std::string message;
};

std::string location(std::string const& file, YAML::Mark const& mark) {
    if (mark.is_null()) return file;
    return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::string join(std::string const& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string index(std::string const& path, std::size_t i) {
    return path + "[" + std::to_string(i) + "]";
}

bool is_env_name(std::string_view s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s.front()))) return false;
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// Header names are RFC 9110 tokens.
bool is_token(std::string_view s) {
    static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || extra.find(static_cast<char>(c)) != std::string_view::npos;
    });
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string format_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// A node and where to point at it. A null value ("key:" with nothing after
// it) has no useful mark of its own, so the mapping gives it its key's.
struct val {
    yaml_node node;
    YAML::Mark mark;
    val(yaml_node n) : node(n), mark(n.Mark()) {}   // NOLINT: implicit on purpose
    val(yaml_node n, YAML::Mark m) : node(n), mark(m) {}
};

struct entry {
    std::string key;
    yaml_node key_node;
    val value;
};

// One YAML document's worth of validation state.
class parser {
public:
    parser(std::string const& file, env_lookup const& env) : file_(file), env_(env) {}

    [[noreturn]] void fail_at(val const& v, std::string const& path, std::string const& message) const {
        fail_at(v.mark, path, message);
    }
    [[noreturn]] void fail_at(YAML::Mark const& mark, std::string const& path,
                              std::string const& message) const {
        std::string out = location(file_, mark) + ": ";
        if (!path.empty()) out += path + ": ";
        throw config_error{out + message};
    }

    /// The file's one document; its nodes live as long as it does.
    yaml_document load(std::string_view text) const {
        yaml_document doc;
        try {
            doc = load_yaml_document(std::string(text));
        } catch (YAML::Exception const& e) {
            fail_at(e.mark, "", "invalid YAML: " + e.msg);
        }
        if (doc.second) fail_at(*doc.second, "", "invalid YAML: more than one document");
        return doc;
    }

    [[noreturn]] void unknown_key(yaml_node const& key, std::string const& key_path,
                                  std::vector<std::string_view> const& allowed) const {
        if (auto hint = closest_match(key.Scalar(), allowed))
            fail_at(key, key_path, "unknown key (did you mean \"" + *hint + "\"?)");
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail_at(key, key_path, "unknown key (expected one of: " + list + ")");
    }

    /// The entries of a mapping, checked for unknown and duplicate keys. An
    /// empty `allowed` accepts any key (labels, headers).
    std::vector<entry> mapping(val const& v, std::string const& path,
                               std::vector<std::string_view> const& allowed) const {
        yaml_node const& node = v.node;
        std::vector<entry> out;
        if (node.IsNull()) return out;   // "polling:" with everything commented out
        if (!node.IsMap()) fail_at(v, path, "expected a mapping");
        std::map<std::string, YAML::Mark> seen;
        for (auto const& [key, value] : node.pairs()) {
            if (!key.IsScalar()) fail_at(key, path, "expected a string key");
            std::string name = key.Scalar();
            std::string key_path = join(path, name);
            if (!allowed.empty() &&
                std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
                unknown_key(key, key_path, allowed);
            }
            if (auto [pos, inserted] = seen.emplace(name, key.Mark()); !inserted) {
                fail_at(key, key_path,
                        "duplicate key (first defined at line " +
                            std::to_string(pos->second.line + 1) + ")");
            }
            out.push_back({name, key, val(value, value.IsNull() ? key.Mark() : value.Mark())});
        }
        return out;
    }

    std::vector<val> sequence(val const& v, std::string const& path) const {
        yaml_node const& node = v.node;
        std::vector<val> out;
        if (node.IsNull()) return out;
        if (!node.IsSequence()) fail_at(v, path, "expected a list");
        for (auto const& item : node.items()) out.push_back(item);
        return out;
    }

    /// ${VAR} from the environment; $${ is a literal ${.
    std::string substitute(val const& node, std::string const& path) const {
        std::string const& in = node.node.Scalar();
        std::string out;
        for (std::size_t i = 0; i < in.size();) {
            if (in.compare(i, 3, "$${") == 0) {
                out += "${";
                i += 3;
            } else if (in.compare(i, 2, "${") == 0) {
                auto close = in.find('}', i + 2);
                if (close == std::string::npos)
                    fail_at(node, path, "unterminated ${ (write $${ for a literal ${)");
                std::string name = in.substr(i + 2, close - i - 2);
                if (!is_env_name(name))
                    fail_at(node, path, "invalid environment variable name in ${" + name + "}");
                auto value = env_ ? env_(name) : std::nullopt;
                if (!value) fail_at(node, path, "environment variable " + name + " is not set");
                out += *value;
                i = close + 1;
            } else {
                out += in[i++];
            }
        }
        return out;
    }

    std::string string(val const& node, std::string const& path) const {
        if (!node.node.IsScalar()) fail_at(node, path, "expected a string");
        return substitute(node, path);
    }

    std::string nonempty_string(val const& node, std::string const& path) const {
        std::string s = string(node, path);
        if (s.empty()) fail_at(node, path, "must not be empty");
        if (has_control(s)) fail_at(node, path, "must not contain control characters");
        return s;
    }

    milliseconds duration(val const& node, std::string const& path) const {
        if (!node.node.IsScalar()) fail_at(node, path, "expected a duration like 30s");
        auto d = parse_duration(substitute(node, path));
        if (!d) fail_at(node, path, "expected a duration like 30s");
        return *d;
    }

    double number(val const& node, std::string const& path) const {
        if (!node.node.IsScalar()) fail_at(node, path, "expected a number");
        std::string s = substitute(node, path);
        double v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v))
            fail_at(node, path, "expected a number");
        return v;
    }

    long long integer(val const& node, std::string const& path) const {
        if (!node.node.IsScalar()) fail_at(node, path, "expected a whole number");
        std::string s = substitute(node, path);
        long long v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size())
            fail_at(node, path, "expected a whole number");
        return v;
    }

    bool boolean(val const& node, std::string const& path) const {
        if (node.node.IsScalar()) {
            std::string s = substitute(node, path);
            if (s == "true" || s == "True" || s == "TRUE") return true;
            if (s == "false" || s == "False" || s == "FALSE") return false;
        }
        fail_at(node, path, "expected true or false");
    }

    std::string env_name(val const& node, std::string const& path) const {
        std::string s = string(node, path);
        if (!is_env_name(s))
            fail_at(node, path, "expected an environment variable name like LD_API_TOKEN");
        return s;
    }

    /// An absolute URL that must be https:// unless it points at loopback.
    url secure_url(val const& node, std::string const& path, std::string const& text) const {
        auto u = parse_secure_url(text);
        if (!u) fail_at(node, path, u.error());
        return *u;
    }

    /// A watch's `labels`: they also become labels of importwatch_watch_info,
    /// so each key must be a label name that metric does not set already.
    std::vector<std::pair<std::string, std::string>> labels(val const& node, std::string const& path) const {
        std::vector<std::pair<std::string, std::string>> out;
        for (auto const& e : mapping(node, path, {})) {
            auto const key_path = join(path, e.key);
            if (!is_metric_label_name(e.key))
                fail_at(e.key_node, key_path,
                        "not a metric label name: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with \"__\"");
            auto const& own = watch_info_labels;
            if (std::find(std::begin(own), std::end(own), e.key) != std::end(own))
                fail_at(e.key_node, key_path,
                        "importwatch sets this label itself (watch, project, environment, segment, import_id)");
            out.emplace_back(e.key, string(e.value, key_path));
        }
        return out;
    }

    std::string const& file() const { return file_; }

private:
    std::string const& file_;
    env_lookup const& env_;
};

std::vector<std::string_view> const watch_keys = {
    "name", "project", "environment", "segment", "import_id", "labels", "stall_after"};

std::vector<std::string_view> const non_terminal_statuses(polled_status_names.begin(), polled_status_names.end());

/// `stall_after`: one duration (a default alone) or a mapping of
/// non-terminal statuses and `default` to durations.
stall_thresholds parse_stall_after(parser const& p, val const& node, std::string const& path) {
    stall_thresholds out;
    if (!node.node.IsMap()) {
        if (!node.node.IsScalar())
            p.fail_at(node, path, "expected a duration like 6h, or a mapping of statuses to durations");
        out.fallback = p.duration(node, path);
        return out;
    }
    std::vector<std::string_view> allowed = non_terminal_statuses;
    allowed.push_back("default");
    for (auto const& e : p.mapping(node, path, {})) {
        std::string kp = join(path, e.key);
        if (is_terminal(e.key)) {
            p.fail_at(e.key_node, kp, "a " + e.key + " import never stalls (expected one of: preparing, "
                                      "pending_approval, ready, in_progress, default)");
        }
        if (std::find(allowed.begin(), allowed.end(), e.key) == allowed.end()) p.unknown_key(e.key_node, kp, allowed);
        auto d = p.duration(e.value, kp);
        if (e.key == "default") out.fallback = d;
        else out.by_status.emplace(e.key, d);
    }
    return out;
}

watch_config parse_watch(parser const& p, val const& node, std::string const& path) {
    watch_config w;
    w.origin = location(p.file(), node.mark);
    if (!node.node.IsMap()) p.fail_at(node, path, "expected a mapping");
    auto entries = p.mapping(node, path, watch_keys);

    std::optional<std::string> name;
    for (auto const& e : entries) {
        if (e.key == "name") name = p.nonempty_string(e.value, join(path, e.key));
    }
    // Names the watch in messages about its fields, so an operator can find it
    // without counting list entries.
    std::string which = name ? " (watch \"" + *name + "\")" : "";

    auto key_field = [&](std::string_view field, std::string& out, bool dots_allowed) {
        auto it = std::find_if(entries.begin(), entries.end(), [&](entry const& e) { return e.key == field; });
        std::string field_path = join(path, field);
        if (it == entries.end()) p.fail_at(node, field_path, "missing required key" + which);
        out = p.string(it->value, field_path);
        if (!valid_key_part(out, dots_allowed)) {
            p.fail_at(it->value, field_path,
                      "must match " + std::string(key_part_syntax) +
                          (dots_allowed ? "" : " and not be \".\" or \"..\"") + which);
        }
    };
    key_field("project", w.key.project, false);
    key_field("environment", w.key.environment, false);
    key_field("segment", w.key.segment, false);
    key_field("import_id", w.key.import_id, true);

    for (auto const& e : entries) {
        if (e.key == "labels") {
            w.labels = p.labels(e.value, join(path, e.key));
            std::sort(w.labels.begin(), w.labels.end());
        } else if (e.key == "stall_after") {
            w.stall_after = parse_stall_after(p, e.value, join(path, e.key));
        }
    }
    w.name = name ? *name : w.key.path();
    return w;
}

std::vector<watch_config> parse_watch_list(parser const& p, val const& node) {
    std::vector<watch_config> out;
    auto items = p.sequence(node, "watches");
    for (std::size_t i = 0; i < items.size(); ++i) {
        out.push_back(parse_watch(p, items[i], index("watches", i)));
    }
    return out;
}

void parse_launchdarkly(parser const& p, val const& node, launchdarkly_config& ld) {
    std::string const path = "launchdarkly";
    std::optional<yaml_node> token_file_node;
    std::optional<yaml_node> token_env_node;
    for (auto const& e : p.mapping(node, path,
                                   {"base_url", "token_file", "token_env", "api_version", "ca_file",
                                    "request_timeout", "max_connections", "max_requests_per_second",
                                    "proxy"})) {
        std::string kp = join(path, e.key);
        if (e.key == "base_url") {
            std::string text = p.string(e.value, kp);
            auto u = p.secure_url(e.value, kp, text);
            if (u.target.find('?') != std::string::npos)
                p.fail_at(e.value, kp, "must not have a query string");
            // Request paths are appended to it.
            while (!text.empty() && text.back() == '/') text.pop_back();
            ld.base_url = text;
        } else if (e.key == "token_file") {
            ld.token_file = p.nonempty_string(e.value, kp);
            token_file_node = e.key_node;
        } else if (e.key == "token_env") {
            ld.token_env = p.env_name(e.value, kp);
            token_env_node = e.key_node;
        } else if (e.key == "api_version") {
            ld.api_version = p.nonempty_string(e.value, kp);
            if (ld.api_version.find(' ') != std::string::npos)
                p.fail_at(e.value, kp, "must not contain spaces");
        } else if (e.key == "ca_file") {
            ld.ca_file = p.nonempty_string(e.value, kp);
        } else if (e.key == "request_timeout") {
            ld.request_timeout = p.duration(e.value, kp);
            if (ld.request_timeout.count() == 0) p.fail_at(e.value, kp, "must be greater than 0s");
        } else if (e.key == "max_connections") {
            auto n = p.integer(e.value, kp);
            if (n < 1 || n > 64) p.fail_at(e.value, kp, "must be between 1 and 64");
            ld.max_connections = static_cast<int>(n);
        } else if (e.key == "max_requests_per_second") {
            ld.max_requests_per_second = p.number(e.value, kp);
            if (ld.max_requests_per_second < 0) p.fail_at(e.value, kp, "must be at least 0");
        } else if (e.key == "proxy") {
            std::string text = p.string(e.value, kp);
            if (auto u = parse_config_url(text); !u) p.fail_at(e.value, kp, u.error());
            ld.proxy = text;
        }
    }
    if (token_file_node && token_env_node)
        p.fail_at(*token_env_node, join(path, "token_env"), "set either token_file or token_env, not both");
    if (token_file_node || token_env_node)
        ld.token_origin = location(p.file(), (token_file_node ? *token_file_node : *token_env_node).Mark());
}

void parse_polling(parser const& p, val const& node, polling_config& polling) {
    std::string const path = "polling";
    for (auto const& e : p.mapping(node, path, {"interval", "status_intervals", "jitter", "stall_after", "backoff"})) {
        std::string kp = join(path, e.key);
        if (e.key == "interval") {
            polling.interval = p.duration(e.value, kp);
        } else if (e.key == "status_intervals") {
            for (auto const& s : p.mapping(e.value, kp, non_terminal_statuses)) {
                polling.status_intervals[s.key] = p.duration(s.value, join(kp, s.key));
            }
        } else if (e.key == "jitter") {
            polling.jitter = p.number(e.value, kp);
            if (polling.jitter < 0 || polling.jitter > 1) p.fail_at(e.value, kp, "must be between 0 and 1");
        } else if (e.key == "stall_after") {
            polling.stall_after = parse_stall_after(p, e.value, kp);
        } else if (e.key == "backoff") {
            std::optional<val> initial_node;
            for (auto const& b : p.mapping(e.value, kp, {"initial", "max", "multiplier"})) {
                std::string bp = join(kp, b.key);
                if (b.key == "initial") {
                    polling.backoff.initial = p.duration(b.value, bp);
                    initial_node = b.value;
                } else if (b.key == "max") {
                    polling.backoff.max = p.duration(b.value, bp);
                } else if (b.key == "multiplier") {
                    polling.backoff.multiplier = p.number(b.value, bp);
                    if (polling.backoff.multiplier < 1) p.fail_at(b.value, bp, "must be at least 1");
                }
            }
            if (polling.backoff.initial > polling.backoff.max) {
                p.fail_at(initial_node ? *initial_node : e.value, join(kp, "initial"),
                          "must not exceed backoff.max (" + format_duration(polling.backoff.max) + ")");
            }
        }
    }
}

struct webhook_marks {
    std::vector<val> watch_nodes;   // one per entry of webhook_config::watches
    YAML::Mark name;
};

webhook_config parse_webhook(parser const& p, val const& node, std::string const& path,
                             webhook_marks& marks) {
    webhook_config w;
    if (!node.node.IsMap()) p.fail_at(node, path, "expected a mapping");
    auto entries = p.mapping(node, path,
                             {"name", "url", "format", "template", "secret_file", "secret_env", "types",
                              "watches", "headers", "timeout", "ca_file", "max_age", "proxy"});
    bool has_name = false, has_url = false;
    std::optional<yaml_node> secret_file_node, secret_env_node, format_node, template_node;
    for (auto const& e : entries) {
        std::string kp = join(path, e.key);
        if (e.key == "name") {
            w.name = p.nonempty_string(e.value, kp);
            marks.name = e.value.mark;
            has_name = true;
        } else if (e.key == "url") {
            w.url = p.string(e.value, kp);
            p.secure_url(e.value, kp, w.url);
            has_url = true;
        } else if (e.key == "format") {
            std::string format = p.string(e.value, kp);
            if (format == "cloudevents") w.format = webhook_format::cloudevents;
            else if (format == "slack") w.format = webhook_format::slack;
            else if (format == "template") w.format = webhook_format::body_template;
            else p.fail_at(e.value, kp, "expected cloudevents, slack or template");
            format_node = e.key_node;
        } else if (e.key == "template") {
            w.body_template = p.string(e.value, kp);
            if (auto checked = check_body_template(w.body_template); !checked) p.fail_at(e.value, kp, checked.error());
            template_node = e.key_node;
        } else if (e.key == "secret_file") {
            w.secret_file = p.nonempty_string(e.value, kp);
            secret_file_node = e.key_node;
        } else if (e.key == "secret_env") {
            w.secret_env = p.env_name(e.value, kp);
            secret_env_node = e.key_node;
        } else if (e.key == "types") {
            auto items = p.sequence(e.value, kp);
            for (std::size_t i = 0; i < items.size(); ++i) {
                std::string ip = index(kp, i);
                std::string type = p.string(items[i], ip);
                if (std::find(std::begin(event_types), std::end(event_types), type) == std::end(event_types)) {
                    std::string message = "unknown event type \"" + type + "\"";
                    if (auto hint = closest_match(type, std::vector<std::string_view>(std::begin(event_types), std::end(event_types))))
                        message += " (did you mean \"" + *hint + "\"?)";
                    p.fail_at(items[i], ip, message);
                }
                if (std::find(w.types.begin(), w.types.end(), type) == w.types.end()) w.types.push_back(type);
            }
        } else if (e.key == "watches") {
            auto items = p.sequence(e.value, kp);
            for (std::size_t i = 0; i < items.size(); ++i) {
                std::string name = p.nonempty_string(items[i], index(kp, i));
                if (std::find(w.watches.begin(), w.watches.end(), name) == w.watches.end()) {
                    w.watches.push_back(name);
                    marks.watch_nodes.push_back(items[i]);
                }
            }
        } else if (e.key == "headers") {
            std::set<std::string> seen;
            for (auto const& h : p.mapping(e.value, kp, {})) {
                std::string hp = join(kp, h.key);
                if (!is_token(h.key)) p.fail_at(h.key_node, hp, "not a valid header name");
                std::string folded = lower(h.key);
                if (core::is_reserved_webhook_header(h.key))
                    p.fail_at(h.key_node, hp, "is set by importwatch and cannot be configured");
                if (!seen.insert(folded).second)
                    p.fail_at(h.key_node, hp, "duplicate header (names are case-insensitive)");
                std::string value = p.string(h.value, hp);
                // Never quote the value: header values may be credentials.
                if (has_control(value)) p.fail_at(h.value, hp, "value must not contain control characters");
                w.headers.emplace_back(h.key, value);
            }
        } else if (e.key == "timeout") {
            w.timeout = p.duration(e.value, kp);
            if (w.timeout.count() == 0) p.fail_at(e.value, kp, "must be greater than 0s");
        } else if (e.key == "ca_file") {
            w.ca_file = p.nonempty_string(e.value, kp);
        } else if (e.key == "max_age") {
            w.max_age = p.duration(e.value, kp);
        } else if (e.key == "proxy") {
            std::string text = p.string(e.value, kp);
            if (auto u = parse_config_url(text); !u) p.fail_at(e.value, kp, u.error());
            w.proxy = text;
        }
    }
    if (!has_name) p.fail_at(node, join(path, "name"), "missing required key");
    if (w.format == webhook_format::body_template && !template_node)
        p.fail_at(*format_node, join(path, "template"), "missing: format template needs a template");
    if (template_node && w.format != webhook_format::body_template)
        p.fail_at(*template_node, join(path, "template"), "only with format: template");
    if (!has_url) p.fail_at(node, join(path, "url"), "missing required key (webhook \"" + w.name + "\")");
    if (secret_file_node && secret_env_node)
        p.fail_at(*secret_env_node, join(path, "secret_env"), "set either secret_file or secret_env, not both");
    w.path = path;
    if (secret_file_node || secret_env_node)
        w.secret_origin = location(p.file(), (secret_file_node ? *secret_file_node : *secret_env_node).Mark());
    return w;
}

void parse_log(parser const& p, val const& node, log_config& log) {
    std::string const path = "events.log";
    for (auto const& e : p.mapping(node, path, {"format", "level"})) {
        std::string kp = join(path, e.key);
        std::string v = p.string(e.value, kp);
        if (e.key == "format") {
            if (v == "text") log.format = log_format::text;
            else if (v == "json") log.format = log_format::json;
            else p.fail_at(e.value, kp, "expected text or json");
        } else {
            static constexpr std::pair<std::string_view, log_level> levels[] = {
                {"trace", log_level::trace}, {"debug", log_level::debug}, {"info", log_level::info},
                {"warn", log_level::warn},   {"error", log_level::error}};
            auto it = std::find_if(std::begin(levels), std::end(levels), [&](auto const& l) { return l.first == v; });
            if (it == std::end(levels)) p.fail_at(e.value, kp, "expected trace, debug, info, warn or error");
            log.level = it->second;
        }
    }
}

bool valid_listen(std::string_view s) {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view host = s.substr(0, colon), port = s.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        std::stoi(std::string(port)) > 65535)
        return false;
    if (host.front() == '[') return host.size() > 2 && host.back() == ']';
    return host.find(':') == std::string_view::npos && !has_control(host) &&
           host.find(' ') == std::string_view::npos;
}

void parse_admin_tls(parser const& p, val const& node, std::string const& path, admin_tls_config& tls) {
    bool has_cert = false, has_key = false;
    for (auto const& t : p.mapping(node, path, {"cert_file", "key_file", "client_ca_file"})) {
        std::string kp = join(path, t.key);
        if (t.key == "cert_file") {
            tls.cert_file = p.nonempty_string(t.value, kp);
            has_cert = true;
        } else if (t.key == "key_file") {
            tls.key_file = p.nonempty_string(t.value, kp);
            has_key = true;
        } else {
            tls.client_ca_file = p.nonempty_string(t.value, kp);
        }
    }
    if (!has_cert) p.fail_at(node, join(path, "cert_file"), "missing required key");
    if (!has_key) p.fail_at(node, join(path, "key_file"), "missing required key");
}

void parse_admin_users(parser const& p, val const& node, std::string const& path,
                       std::map<std::string, std::string>& users) {
    bool has_users = false;
    for (auto const& b : p.mapping(node, path, {"users"})) {
        std::string kp = join(path, b.key);
        has_users = true;
        for (auto const& u : p.mapping(b.value, kp, {})) {
            std::string up = join(kp, u.key);
            // RFC 7617: the user-id ends at the first colon.
            if (u.key.empty() || has_control(u.key) || u.key.find(':') != std::string::npos)
                p.fail_at(u.key_node, up, "a user name must be non-empty, without colons or control characters");
            std::string hash = p.string(u.value, up);
            // Never quote the value: it may be a password written by mistake.
            if (!is_bcrypt_hash(hash))
                p.fail_at(u.value, up,
                          "must be a bcrypt password hash ($2y$, $2b$ or $2a$, e.g. from "
                          "`htpasswd -nbBC 10 USER PASSWORD`), not a password; the value is not shown");
            users[u.key] = hash;
        }
        if (users.empty()) p.fail_at(b.value, kp, "must name at least one user");
    }
    if (!has_users) p.fail_at(node, join(path, "users"), "missing required key");
}

void parse_admin(parser const& p, val const& node, admin_config& admin) {
    std::string const path = "admin";
    std::optional<val> reload_node;
    for (auto const& a : p.mapping(node, path, {"listen", "enable_reload", "tls", "basic_auth", "open_paths"})) {
        std::string kp = join(path, a.key);
        if (a.key == "listen") {
            admin.listen = p.string(a.value, kp);
            // Other servers read "*" as "every address"; the resolver reads it as
            // a host name and binds wherever that lands, so say what to write.
            if (admin.listen.starts_with("*:")) {
                std::string port = admin.listen.substr(2);
                p.fail_at(a.value, kp, "\"*\" is not a host: write 0.0.0.0:" + port +
                                           " (every IPv4 address) or [::]:" + port + " (every IPv6 address)");
            }
            if (!admin.listen.empty() && !valid_listen(admin.listen))
                p.fail_at(a.value, kp, "expected HOST:PORT like 127.0.0.1:9464, or \"\" to disable");
        } else if (a.key == "enable_reload") {
            admin.enable_reload = p.boolean(a.value, kp);
            reload_node = a.value;
        } else if (a.key == "tls") {
            if (!a.value.node.IsMap()) p.fail_at(a.value, kp, "expected a mapping with cert_file and key_file");
            parse_admin_tls(p, a.value, kp, admin.tls.emplace());
        } else if (a.key == "basic_auth") {
            if (!a.value.node.IsMap()) p.fail_at(a.value, kp, "expected a mapping with users");
            parse_admin_users(p, a.value, kp, admin.users);
        } else {
            admin.open_paths.clear();
            std::vector<std::string_view> openable;
            for (std::string_view known : admin_paths)
                if (known != "/-/reload") openable.push_back(known);
            auto items = p.sequence(a.value, kp);
            for (std::size_t i = 0; i < items.size(); ++i) {
                std::string ip = index(kp, i);
                std::string open = p.string(items[i], ip);
                if (open == "/-/reload")
                    p.fail_at(items[i], ip, "POST /-/reload changes the daemon and cannot be opened");
                if (std::find(openable.begin(), openable.end(), open) == openable.end()) {
                    std::string message = "not an admin path \"" + open + "\"";
                    if (auto hint = closest_match(open, openable)) message += " (did you mean \"" + *hint + "\"?)";
                    else {
                        std::string list;
                        for (auto o : openable) list += (list.empty() ? "" : ", ") + std::string(o);
                        message += " (expected one of: " + list + ")";
                    }
                    p.fail_at(items[i], ip, message);
                }
                if (std::find(admin.open_paths.begin(), admin.open_paths.end(), open) == admin.open_paths.end())
                    admin.open_paths.push_back(open);
            }
        }
    }
    // Anyone who reaches the port could reconfigure the daemon.
    if (admin.enable_reload && admin.beyond_loopback() && admin.users.empty())
        p.fail_at(*reload_node, join(path, "enable_reload"),
                  "POST /-/reload on " + admin.listen +
                      " (beyond loopback) needs admin.basic_auth; or listen on 127.0.0.1");
}

// "file:line:col" -> "file", and the index of each watch within its file
// (watches of one file are contiguous in config::watches).
std::string origin_file(std::string const& origin) {
    auto last = origin.rfind(':');
    if (last == std::string::npos || last == 0) return origin;
    auto before = origin.rfind(':', last - 1);
    return before == std::string::npos ? origin : origin.substr(0, before);
}

/// "watches[3]": where watch `i` sits in its own file's list.
std::string list_path(config const& cfg, std::size_t i) {
    auto const file = origin_file(cfg.watches[i].origin);
    std::size_t n = 0;   // watches before it in its file
    for (std::size_t j = 0; j < i; ++j) n += origin_file(cfg.watches[j].origin) == file;
    return index("watches", n);
}

/// Watch `i` for a message about watch `about`: "watches[3] at 7:5" in the
/// same file, "watches[3] at w.yaml:7:5" in another.
std::string place_of(config const& cfg, std::size_t i, std::size_t about) {
    auto const& origin = cfg.watches[i].origin;
    auto const file = origin_file(origin);
    bool const same_file = file == origin_file(cfg.watches[about].origin);
    return list_path(cfg, i) + " at " + (same_file ? origin.substr(file.size() + 1) : origin);
}

expected<void> check_duplicates(config const& cfg) {
    // Hashed, and by reference: 100,000 watches are checked on every reload.
    std::unordered_map<watch_key_ref, std::size_t, watch_key_ref::hasher> by_key;
    std::unordered_map<std::string_view, std::size_t> by_name;
    by_key.reserve(cfg.watches.size());
    by_name.reserve(cfg.watches.size());
    for (std::size_t i = 0; i < cfg.watches.size(); ++i) {
        auto const& w = cfg.watches[i];
        if (auto [it, inserted] = by_key.emplace(watch_key_ref(w.key), i); !inserted) {
            return fail(w.origin + ": " + list_path(cfg, i) + ": duplicate watch " + w.key.path() +
                        " (first defined as " + place_of(cfg, it->second, i) + ", named \"" +
                        cfg.watches[it->second].name + "\")");
        }
        if (auto [it, inserted] = by_name.emplace(w.name, i); !inserted) {
            return fail(w.origin + ": " + list_path(cfg, i) + ": duplicate watch name \"" + w.name +
                        "\" (first defined as " + place_of(cfg, it->second, i) + ")");
        }
    }
    return {};
}

expected<void> check_webhook_watches(config const& cfg) {
    if (std::none_of(cfg.webhooks.begin(), cfg.webhooks.end(), [](auto const& h) { return !h.watches.empty(); }))
        return {};
    std::unordered_set<std::string_view> names;
    for (auto const& w : cfg.watches) names.insert(w.name);
    for (std::size_t h = 0; h < cfg.webhooks.size(); ++h) {
        auto const& hook = cfg.webhooks[h];
        for (std::size_t i = 0; i < hook.watches.size(); ++i) {
            if (!names.count(hook.watches[i])) {
                // The model keeps no marks for these, so name the entry instead.
                return fail(cfg.file + ": " + index("events.webhooks", h) + ".watches: no watch named \"" +
                            hook.watches[i] + "\" (webhook \"" + hook.name + "\")");
            }
        }
    }
    return {};
}

std::string first_state_directory(env_lookup const& env) {
    auto dir = env ? env("STATE_DIRECTORY") : std::nullopt;
    if (!dir || dir->empty()) return "./state";
    // systemd joins several StateDirectory= entries with ':'.
    return dir->substr(0, dir->find(':'));
}

config parse_config_or_throw(std::string_view yaml_text, std::string const& file_name, env_lookup const& env) {
    parser p(file_name, env);
    auto const doc = p.load(yaml_text);
    yaml_node const root = doc.root();
    if (root.IsNull()) p.fail_at(YAML::Mark(), "", "the file is empty (expected a mapping of settings)");
    if (!root.IsMap()) p.fail_at(root, "", "expected a mapping of settings at the top level");

    config cfg;
    cfg.file = file_name;
    cfg.state.dir = first_state_directory(env);
    std::vector<webhook_marks> marks;
    std::map<std::string, YAML::Mark> webhook_names;

    for (auto const& e : p.mapping(root, "",
                                   {"launchdarkly", "polling", "watches", "events", "watch_files",
                                    "state", "admin", "reload", "shutdown_grace"})) {
        if (e.key == "launchdarkly") {
            parse_launchdarkly(p, e.value, cfg.launchdarkly);
        } else if (e.key == "polling") {
            parse_polling(p, e.value, cfg.polling);
        } else if (e.key == "watches") {
            cfg.watches = parse_watch_list(p, e.value);
        } else if (e.key == "events") {
            for (auto const& ev : p.mapping(e.value, "events", {"log", "webhooks"})) {
                if (ev.key == "log") {
                    parse_log(p, ev.value, cfg.log);
                    continue;
                }
                auto items = p.sequence(ev.value, "events.webhooks");
                for (std::size_t i = 0; i < items.size(); ++i) {
                    std::string path = index("events.webhooks", i);
                    marks.emplace_back();
                    auto hook = parse_webhook(p, items[i], path, marks.back());
                    if (auto [it, inserted] = webhook_names.emplace(hook.name, marks.back().name); !inserted) {
                        p.fail_at(marks.back().name, join(path, "name"),
                                  "duplicate webhook name \"" + hook.name + "\" (first defined at line " +
                                      std::to_string(it->second.line + 1) + ")");
                    }
                    cfg.webhooks.push_back(std::move(hook));
                }
            }
        } else if (e.key == "watch_files") {
            auto items = p.sequence(e.value, "watch_files");
            for (std::size_t i = 0; i < items.size(); ++i)
                cfg.watch_files.push_back(p.nonempty_string(items[i], index("watch_files", i)));
        } else if (e.key == "state") {
            for (auto const& s : p.mapping(e.value, "state", {"dir", "dead_letter_retention"})) {
                std::string kp = join("state", s.key);
                if (s.key == "dir") cfg.state.dir = p.nonempty_string(s.value, kp);
                else cfg.state.dead_letter_retention = p.duration(s.value, kp);
            }
        } else if (e.key == "admin") {
            parse_admin(p, e.value, cfg.admin);
        } else if (e.key == "reload") {
            for (auto const& r : p.mapping(e.value, "reload", {"auto"}))
                cfg.reload.automatic = p.boolean(r.value, join("reload", r.key));
        } else if (e.key == "shutdown_grace") {
            cfg.shutdown_grace = p.duration(e.value, "shutdown_grace");
        }
    }

    if (auto r = check_duplicates(cfg); !r) throw config_error{r.error()};
    // Watches named by webhooks may live in watch_files, which the loader
    // appends later and checks with check_watch_set; until then only a config
    // without watch_files can be checked (and with exact positions).
    if (cfg.watch_files.empty()) {
        std::set<std::string> names;
        for (auto const& w : cfg.watches) names.insert(w.name);
        for (std::size_t h = 0; h < cfg.webhooks.size(); ++h) {
            auto const& hook = cfg.webhooks[h];
            for (std::size_t i = 0; i < hook.watches.size(); ++i) {
                if (names.count(hook.watches[i])) continue;
                std::string message = "no watch named \"" + hook.watches[i] + "\"";
                if (auto hint = closest_match(hook.watches[i], names)) message += " (did you mean \"" + *hint + "\"?)";
                p.fail_at(marks[h].watch_nodes[i], index(index("events.webhooks", h) + ".watches", i), message);
            }
        }
    }
    if (cfg.launchdarkly.token_origin.empty()) cfg.launchdarkly.token_origin = file_name;
    return cfg;
}

} // namespace

expected<config> parse_config(std::string_view yaml_text, std::string const& file_name, env_lookup const& env) {
    try {
        return parse_config_or_throw(yaml_text, file_name, env);
    } catch (config_error& e) {
        return fail(std::move(e.message));
    }
}

expected<std::vector<watch_config>> parse_watch_file(std::string_view yaml_text, std::string const& file_name,
                                                     env_lookup const& env) {
    try {
        parser p(file_name, env);
        auto const doc = p.load(yaml_text);
        yaml_node const root = doc.root();
        // An empty drop-in file simply adds no watches.
        if (root.IsNull()) return std::vector<watch_config>{};
        if (!root.IsMap()) p.fail_at(root, "", "expected a mapping with a watches list at the top level");
        std::vector<watch_config> out;
        for (auto const& e : p.mapping(root, "", {"watches"})) out = parse_watch_list(p, e.value);
        return out;
    } catch (config_error& e) {
        return fail(std::move(e.message));
    }
}

expected<void> check_watch_set(config const& cfg) {
    if (auto r = check_duplicates(cfg); !r) return r;
    return check_webhook_watches(cfg);
}

std::vector<std::string> config_warnings(config const& cfg, std::optional<std::size_t> polled) {
    std::size_t const watches = polled.value_or(cfg.watches.size());
    std::vector<std::string> out;
    auto const& ld = cfg.launchdarkly;
    bool launchdarkly_host = false;
    if (auto u = parse_url(ld.base_url)) {
        auto ends_with = [&](std::string_view suffix) {
            return u->host.size() >= suffix.size() &&
                   u->host.compare(u->host.size() - suffix.size(), suffix.size(), suffix) == 0;
        };
        launchdarkly_host = u->host == "launchdarkly.com" || u->host == "launchdarkly.us" ||
                            ends_with(".launchdarkly.com") || ends_with(".launchdarkly.us");
    }
    if (launchdarkly_host && ld.max_requests_per_second == 0) {
        out.push_back("launchdarkly.max_requests_per_second is 0 (no client-side cap) against " + ld.base_url +
                      ": LaunchDarkly's rate limit is per account, so other API clients may be throttled");
    }
    if (launchdarkly_host && cfg.polling.interval.count() == 0) {
        out.push_back("polling.interval is 0s against " + ld.base_url +
                      ": every watch is polled as fast as max_requests_per_second allows");
    }
    if (ld.max_requests_per_second > 0 && cfg.polling.interval.count() > 0 && watches > 0) {
        double n = static_cast<double>(watches);
        double needed = n * 1000.0 / static_cast<double>(cfg.polling.interval.count());
        if (needed > ld.max_requests_per_second) {
            char rate[32];
            std::snprintf(rate, sizeof rate, "%.1f", needed);
            auto effective = milliseconds(static_cast<long long>(std::ceil(n / ld.max_requests_per_second)) * 1000);
            out.push_back(std::to_string(watches) + " watches at " +
                          format_duration(cfg.polling.interval) + " need " + rate +
                          " requests/s but max_requests_per_second is " +
                          format_number(ld.max_requests_per_second) + ": each watch will be polled about every " +
                          format_duration(effective));
        }
    }
    auto const& admin = cfg.admin;
    if (admin.beyond_loopback() && !admin.tls && admin.users.empty()) {
        out.push_back("admin.listen is " + admin.listen +
                      " (beyond loopback) without admin.tls or admin.basic_auth: anyone who reaches the port "
                      "can read /metrics and /v1/watches");
    }
    return out;
}

} // namespace importwatch::core
