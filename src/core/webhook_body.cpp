#include "core/webhook_body.hpp"

#include <algorithm>
#include <cctype>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/args.h>
#include <fmt/format.h>

#include "core/spelling.hpp"
#include "core/untrusted_text.hpp"

namespace importwatch::core {

namespace {

namespace json = boost::json;

// Bodies list at most this many files of an import, each name cut to this
// many bytes (a Slack section's text is limited to 3000 characters).
constexpr std::size_t files_listed = 10;
constexpr std::size_t listed_filename_bytes = 100;

/// A member of an event's JSON as template text: strings as they are,
/// numbers and booleans as JSON writes them, null or absent as "".
std::string text_of(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return {};
    if (auto const* s = v->if_string()) return std::string(s->data(), s->size());
    return json::serialize(*v);
}

json::object const& object_of(json::object const& o, std::string_view key) {
    static json::object const empty;
    auto const* v = o.if_contains(key);
    return v != nullptr && v->is_object() ? v->get_object() : empty;
}

/// The event's CloudEvent, parsed: make_event wrote it, so it is an object.
json::object parse_cloud_event(event const& e) { return json::parse(e.body).as_object(); }

struct file_entry {
    std::string filename;   // cut at listed_filename_bytes
    std::string status;
};

/// The first files_listed files of the event's Import, and how many more
/// there are (a shortened Import counts its own in `_importwatch`).
struct file_list {
    std::vector<file_entry> listed;
    std::size_t more = 0;
};

file_list files_of(json::object const& data) {
    file_list out;
    auto const& import = object_of(data, "import");
    if (auto const* n = object_of(import, "_importwatch").if_contains("files_omitted"); n && n->is_number())
        out.more = n->to_number<std::size_t>();
    auto const* files = import.if_contains("files");
    if (files == nullptr || !files->is_array()) return out;
    for (auto const& f : files->get_array()) {
        if (!f.is_object()) continue;
        if (out.listed.size() == files_listed) {
            ++out.more;
            continue;
        }
        out.listed.push_back({truncated(text_of(f.get_object(), "filename"), listed_filename_bytes),
                              text_of(f.get_object(), "status")});
    }
    return out;
}

std::string and_more(std::size_t n) { return "… and " + std::to_string(n) + " more"; }

std::string labels_text(json::object const& data) {
    std::string out;
    for (auto const& [k, v] : object_of(data, "labels")) {
        if (!out.empty()) out += ", ";
        out.append(k.data(), k.size()).append("=").append(v.is_string() ? std::string_view(v.get_string()) : "");
    }
    return out;
}

std::string files_text(json::object const& data) {
    auto const files = files_of(data);
    std::string out;
    for (auto const& f : files.listed) {
        if (!out.empty()) out += ", ";
        out += f.filename + ": " + f.status;
    }
    if (files.more > 0) out += (out.empty() ? "" : ", ") + and_more(files.more);
    return out;
}

watch_key key_of(json::object const& data) {
    return {text_of(data, "project"), text_of(data, "environment"), text_of(data, "segment"),
            text_of(data, "import_id")};
}

// ---- template ------------------------------------------------------------

/// `s` as the inside of a JSON string: quotes, backslashes and controls
/// escaped, and nothing a terminal could misread (json_printable).
std::string json_escaped(std::string_view s) {
    std::string quoted = json_printable(json::serialize(json::string(s)));
    return quoted.substr(1, quoted.size() - 2);
}

/// Every template field of `e`, in body_template_fields order.
std::vector<std::string> template_values(event const& e, std::string_view base_url) {
    auto const ce = parse_cloud_event(e);
    auto const& data = object_of(ce, "data");
    std::vector<std::string> v;
    v.reserve(std::size(body_template_fields));
    for (std::string_view field : body_template_fields) {
        if (field == "id" || field == "type" || field == "time" || field == "source" || field == "subject")
            v.push_back(text_of(ce, field));
        else if (field == "labels")
            v.push_back(labels_text(data));
        else if (field == "files")
            v.push_back(files_text(data));
        else if (field == "summary")
            v.push_back(e.summary);
        else if (field == "segment_url")
            v.push_back(segment_url(base_url, key_of(data)));
        else
            v.push_back(text_of(data, field));
    }
    return v;
}

std::string render_template(std::string_view body_template, std::vector<std::string> const& values) {
    fmt::dynamic_format_arg_store<fmt::format_context> args;
    for (std::size_t i = 0; i < values.size(); ++i)
        args.push_back(fmt::arg(body_template_fields[i].data(), json_escaped(values[i])));
    return fmt::vformat(body_template, args);
}

bool is_field_name(std::string_view s) {
    return !s.empty() && !std::isdigit(static_cast<unsigned char>(s.front())) &&
           std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

/// The names between `{` and `}` or `:`, checked so that the error can name
/// the field (fmt only says "argument not found").
expected<void> check_field_names(std::string_view t) {
    std::size_t named = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (t[i] != '{') continue;
        if (i + 1 < t.size() && t[i + 1] == '{') {
            ++i;
            continue;
        }
        auto const end = t.find_first_of("}:", i + 1);
        std::string_view const name = t.substr(i + 1, end == std::string_view::npos ? std::string_view::npos : end - i - 1);
        if (name.empty() || std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c); }))
            return fail("fields are named, e.g. {status}: \"{" + std::string(name) + "}\" is not");
        if (!is_field_name(name))
            return fail("\"{\" starts a field (write {{ and }} for literal braces)");
        if (std::find(std::begin(body_template_fields), std::end(body_template_fields), name) ==
            std::end(body_template_fields)) {
            std::string message = "unknown field {" + std::string(name) + "}";
            if (auto hint = closest_match(name, body_template_fields)) return fail(message + " (did you mean {" + *hint + "}?)");
            std::string list;
            for (auto f : body_template_fields) list += (list.empty() ? "" : ", ") + std::string(f);
            return fail(message + " (fields: " + list + ")");
        }
        if (end != std::string_view::npos && t[end] == ':')
            return fail("{" + std::string(name) + ":…}: fields take no format specification (their values are "
                        "escaped text, which padding or cutting could break)");
        if (++named > max_body_template_fields)
            return fail("names more than " + std::to_string(max_body_template_fields) + " fields");
        if (end == std::string_view::npos) break;
        i = end;
    }
    return {};
}

/// The event check_body_template renders: the status change of the json log
/// example in docs/events.md.
event const& sample_event() {
    static event const e = [] {
        event s;
        s.id = "0b6c2f0e-6c1e-4a55-9d2a-0a5f3c1f9e11";
        s.type = std::string(status_changed_type);
        s.sequence = 3;
        s.summary = "vip-nightly status in_progress -> complete (default/production/vip-users/1234a567-bcd8-9123-4567-abcd1234567f)";
        s.body = R"({"specversion":"1.0","id":"0b6c2f0e-6c1e-4a55-9d2a-0a5f3c1f9e11",)"
                 R"("source":"https://app.launchdarkly.com/api/v2/segments/default/production/vip-users/imports/1234a567-bcd8-9123-4567-abcd1234567f",)"
                 R"("type":"importwatch.import.status_changed","subject":"default/production/vip-users/1234a567-bcd8-9123-4567-abcd1234567f",)"
                 R"("time":"2026-11-28T19:37:20.123Z","datacontenttype":"application/json","data":{)"
                 R"("watch":"vip-nightly","labels":{"team":"growth"},"project":"default","environment":"production",)"
                 R"("segment":"vip-users","import_id":"1234a567-bcd8-9123-4567-abcd1234567f","sequence":3,"previous_status":"in_progress",)"
                 R"("status":"complete","terminal":true,"import":{"id":"1234a567-bcd8-9123-4567-abcd1234567f","segmentKey":"vip-users",)"
                 R"("creationTime":1795894000000,"mode":"replace","status":"complete",)"
                 R"("files":[{"filename":"users.csv","status":"complete"}]}}})";
        return s;
    }();
    return e;
}

// ---- slack -----------------------------------------------------------------

/// Text for Slack: &, < and > are its control characters (<!channel> would
/// notify a whole channel, so a file name must not spell it).
std::string mrkdwn_escaped(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        default: out += c;
        }
    }
    return out;
}

std::string code(std::string_view s) { return "`" + mrkdwn_escaped(s) + "`"; }

/// A value that may be absent, as the text log writes it.
std::string code_or_none(std::string const& s) { return s.empty() ? "none" : code(s); }

json::object mrkdwn(std::string text) { return {{"type", "mrkdwn"}, {"text", std::move(text)}}; }

json::object section(std::string text) { return {{"type", "section"}, {"text", mrkdwn(std::move(text))}}; }

/// The summary without the watch name in front and its identity behind
/// (they have fields of their own), e.g. "status in_progress -> complete".
std::string_view what_happened(std::string_view summary, std::string_view watch, std::string_view subject) {
    std::string const tail = " (" + std::string(subject) + ")";
    if (summary.size() > watch.size() + tail.size() && summary.starts_with(watch) && summary[watch.size()] == ' ' &&
        summary.ends_with(tail))
        return summary.substr(watch.size() + 1, summary.size() - watch.size() - 1 - tail.size());
    return summary;
}

std::string slack_body(event const& e, std::string_view base_url) {
    auto const ce = parse_cloud_event(e);
    auto const& data = object_of(ce, "data");
    auto const watch = text_of(data, "watch");
    auto const key = key_of(data);
    auto const status = text_of(data, "status");

    json::array fields;
    fields.push_back(mrkdwn("*Watch*\n" + mrkdwn_escaped(watch)));
    fields.push_back(mrkdwn("*Import*\n" + code(key.import_id)));
    if (e.type == status_changed_type)
        fields.push_back(mrkdwn("*Status*\n" + code_or_none(text_of(data, "previous_status")) + " → " +
                                code_or_none(status)));
    else
        fields.push_back(mrkdwn("*Status*\n" + code_or_none(status)));
    fields.push_back(mrkdwn("*Segment*\n<" + segment_url(base_url, key) + "|" +
                            mrkdwn_escaped(key.project + " / " + key.environment + " / " + key.segment) + ">"));
    if (e.type == file_status_changed_type) {
        auto const filename = text_of(data, "filename");
        if (filename.empty())
            fields.push_back(mrkdwn("*Files*\n" + text_of(data, "files_omitted") + " more changed"));
        else
            fields.push_back(mrkdwn("*File*\n" + code(filename) + ": " +
                                    code_or_none(text_of(data, "previous_file_status")) + " → " +
                                    code_or_none(text_of(data, "file_status"))));
    } else if (e.type == watch_failed_type) {
        std::string reason = code(text_of(data, "reason"));
        if (auto http = text_of(data, "http_status"); !http.empty()) reason += " (HTTP " + http + ")";
        fields.push_back(mrkdwn("*Reason*\n" + reason + ": " + mrkdwn_escaped(text_of(data, "message"))));
    }

    json::array blocks;
    blocks.push_back(section("*" + mrkdwn_escaped(watch) + "* " +
                             mrkdwn_escaped(what_happened(e.summary, watch, key.path()))));
    blocks.push_back(json::object{{"type", "section"}, {"fields", std::move(fields)}});

    if (auto const files = files_of(data); !files.listed.empty()) {
        std::string text = "*Files*";
        for (auto const& f : files.listed) text += "\n• " + code(f.filename) + ": " + mrkdwn_escaped(f.status);
        if (files.more > 0) text += "\n" + and_more(files.more);
        blocks.push_back(section(std::move(text)));
    }
    blocks.push_back(json::object{
        {"type", "context"},
        {"elements", json::array{mrkdwn(code(e.type) + " · sequence " + std::to_string(e.sequence) + " · " +
                                        text_of(ce, "time"))}}});

    json::object body;
    body.emplace("text", mrkdwn_escaped(e.summary));
    body.emplace("blocks", std::move(blocks));
    return json_printable(json::serialize(body));
}

} // namespace

std::string_view content_type(webhook_format format) {
    return format == webhook_format::cloudevents ? "application/cloudevents+json" : "application/json";
}

std::string segment_url(std::string_view base_url, watch_key const& key) {
    // The key parts are validated to [A-Za-z0-9._-]+: nothing to escape.
    return std::string(base_url) + "/projects/" + key.project + "/segments/" + key.segment +
           "/targeting?env=" + key.environment + "&selected-env=" + key.environment;
}

expected<void> check_body_template(std::string_view body_template) {
    if (body_template.size() > max_body_template_bytes)
        return fail("longer than " + std::to_string(max_body_template_bytes / 1024) + " KiB");
    if (auto names = check_field_names(body_template); !names) return names;
    std::string rendered;
    try {
        rendered = render_template(body_template, template_values(sample_event(), "https://app.launchdarkly.com"));
    } catch (fmt::format_error const& e) {
        return fail(std::string("not a valid template: ") + e.what());
    }
    boost::system::error_code ec;
    json::parse(rendered, ec);
    if (ec)
        return fail("does not make JSON for a sample event (" + ec.message() +
                    "); put each field inside a JSON string, e.g. \"{status}\"");
    return {};
}

std::string webhook_body(webhook_config const& hook, event const& e, std::string_view base_url) {
    switch (hook.format) {
    case webhook_format::cloudevents: return e.body;
    case webhook_format::slack: return slack_body(e, base_url);
    case webhook_format::body_template: return render_template(hook.body_template, template_values(e, base_url));
    }
    return e.body;
}

} // namespace importwatch::core
