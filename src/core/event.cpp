#include "core/event.hpp"

#include <utility>

#include <boost/json/serialize.hpp>

#include "core/import.hpp"
#include "core/untrusted_text.hpp"

namespace importwatch::core {

namespace {

namespace json = boost::json;

// {base_url}/api/v2/segments/{p}/{e}/{s}/imports/{id}: the resource polled.
std::string source_of(std::string_view base_url, watch_key const& key) {
    while (!base_url.empty() && base_url.back() == '/') base_url.remove_suffix(1);
    return std::string(base_url) + import_path(key);
}

// The Import is the last member of `data`, spliced in: "…,"import":{…}}}".
constexpr std::string_view import_member = ",\"import\":";

// Room for `"files":[]` and the `_importwatch` note when shortening.
constexpr std::size_t note_room = 128;

json::object importwatch_note(std::size_t original_bytes) {
    return json::object{{"original_bytes", original_bytes}};
}

} // namespace

json::value bounded_import(json::value const& import, std::size_t serialized_size) {
    if (serialized_size <= max_event_import_bytes) return import;
    auto const* obj = import.if_object();
    if (obj == nullptr) return nullptr;   // decode_import only ever stores objects

    // Everything but the file list, then as many leading files as still fit.
    json::object shortened;
    shortened.reserve(obj->size() + 1);
    json::array const* files = nullptr;
    for (auto const& m : *obj) {
        if (m.key() == "files" && m.value().is_array())
            files = &m.value().get_array();
        else if (m.key() != "_importwatch")
            shortened.emplace(m.key(), m.value());
    }
    auto const base = json::serialize(shortened).size() + note_room;
    if (base <= max_event_import_bytes) {
        std::size_t budget = max_event_import_bytes - base;
        json::array kept;
        std::size_t total = 0;
        if (files) {
            total = files->size();
            for (auto const& f : *files) {
                auto const size = json::serialize(f).size() + 1;   // and a comma
                if (size > budget) break;
                budget -= size;
                kept.push_back(f);
            }
        }
        auto note = importwatch_note(serialized_size);
        note.emplace("files_omitted", total - kept.size());
        if (files) shortened.emplace("files", std::move(kept));
        shortened.emplace("_importwatch", std::move(note));
        return shortened;
    }

    // Huge fields besides the files: keep only what identifies the import.
    json::object minimal;
    for (char const* key : {"id", "segmentKey", "creationTime", "mode", "status"}) {
        auto const* v = obj->if_contains(key);
        if (v == nullptr) continue;
        if (auto const* s = v->if_string())
            minimal.emplace(key, truncated(std::string_view(s->data(), s->size())));
        else
            minimal.emplace(key, *v);
    }
    auto note = importwatch_note(serialized_size);
    note.emplace("truncated", true);
    minimal.emplace("_importwatch", std::move(note));
    return minimal;
}

event make_event(event_subject const& subject, std::string_view type, std::uint64_t sequence,
                 json::object extra, std::string summary, log_level level, sys_ms now,
                 random_source& rng) {
    auto const& watch = subject.watch;
    auto const& key = watch.key;

    json::object labels;
    for (auto const& [k, v] : watch.labels) labels.emplace(k, v);

    // Member order as docs/events.md documents it: the common keys, then the
    // type-specific ones (previous_status, filename, reason, …) before
    // status/terminal, and the (possibly large) Import object last.
    json::object data;
    data.reserve(10 + extra.size());
    data.emplace("watch", watch.name);
    data.emplace("labels", std::move(labels));
    data.emplace("project", key.project);
    data.emplace("environment", key.environment);
    data.emplace("segment", key.segment);
    data.emplace("import_id", key.import_id);
    data.emplace("sequence", sequence);
    for (auto& member : extra) data.emplace(member.key(), std::move(member.value()));
    if (subject.status)
        data.emplace("status", *subject.status);
    else
        data.emplace("status", nullptr);
    data.emplace("terminal", subject.status.has_value() && is_terminal(*subject.status));
    // "import" comes last: spliced in below.

    event e;
    e.id = rng.uuid_v4();
    e.type = std::string(type);
    e.sequence = sequence;
    e.time = now;
    e.level = level;
    e.summary = std::move(summary);

    json::object cloud_event;
    cloud_event.reserve(8);
    cloud_event.emplace("specversion", "1.0");
    cloud_event.emplace("id", e.id);
    cloud_event.emplace("source", source_of(subject.base_url, key));
    cloud_event.emplace("type", e.type);
    cloud_event.emplace("subject", key.path());
    cloud_event.emplace("time", format_rfc3339(now));
    cloud_event.emplace("datacontenttype", "application/json");
    cloud_event.emplace("data", std::move(data));

    // The envelope ends with the "}}" closing data and the event; the Import
    // goes in front of them. `data` always has members, hence the comma.
    auto const envelope = json::serialize(cloud_event);
    std::string_view const import = subject.import_json.empty() ? std::string_view("null") : subject.import_json;
    std::string out;
    out.reserve(envelope.size() + import_member.size() + import.size());
    out.append(envelope, 0, envelope.size() - 2).append(import_member).append(import).append("}}");
    // Receivers print bodies too: no raw control or bidi characters in them.
    e.body = json_printable(std::move(out));
    return e;
}

void put_import(event& e, std::string_view import_json) {
    std::string_view constexpr without = ",\"import\":null}}";   // as make_event ends a body without one
    if (import_json.empty() || !e.body.ends_with(without)) return;
    e.body.resize(e.body.size() - without.size());
    // json_printable works one character at a time: escaping the Import on
    // its own gives the bytes make_event's escaping of the whole body would.
    e.body.append(import_member).append(json_printable(std::string(import_json))).append("}}");
}

} // namespace importwatch::core
