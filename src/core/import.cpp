#include "core/import.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include <boost/json/parse.hpp>

namespace importwatch::core {

namespace {

namespace json = boost::json;

// Reads a required string member: absent (or null) is "missing field X", any
// other type is "field X: expected string".
expected<std::string> required_string(json::object const& obj, std::string_view key) {
    auto const* v = obj.if_contains(key);
    if (v == nullptr || v->is_null()) return fail("missing field " + std::string(key));
    if (auto const* s = v->if_string()) return std::string(s->data(), s->size());
    return fail("field " + std::string(key) + ": expected string");
}

// creationTime is LD's UnixMillis (int64). Boost.JSON yields uint64 only above
// INT64_MAX, which does not fit; a double (1.5, 1e3) is ill-typed.
expected<std::int64_t> required_int64(json::object const& obj, std::string_view key) {
    auto const* v = obj.if_contains(key);
    if (v == nullptr || v->is_null()) return fail("missing field " + std::string(key));
    if (auto const* i = v->if_int64()) return *i;
    if (auto const* u = v->if_uint64();
        u != nullptr && *u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return static_cast<std::int64_t>(*u);
    return fail("field " + std::string(key) + ": expected integer");
}

std::string too_long(std::size_t size) {
    return std::to_string(size) + " bytes, " + std::string(over_status_limit) + " (" +
           std::to_string(max_status_bytes) + " bytes)";
}

expected<std::vector<import_file>> decode_files(json::object const& obj) {
    std::vector<import_file> files;
    auto const* v = obj.if_contains("files");
    if (v == nullptr || v->is_null()) return files;   // optional; absent or null = none
    auto const* arr = v->if_array();
    if (arr == nullptr) return fail("field files: expected array");
    files.reserve(arr->size());
    for (std::size_t i = 0; i < arr->size(); ++i) {
        auto const where = "files[" + std::to_string(i) + "]";
        auto const* entry = (*arr)[i].if_object();
        if (entry == nullptr) return fail(where + ": expected object");
        import_file f;
        for (auto [key, out] : {std::pair{std::string_view("filename"), &f.filename},
                                std::pair{std::string_view("status"), &f.status}}) {
            auto const* s = entry->if_contains(key);
            auto const* str = s != nullptr ? s->if_string() : nullptr;
            if (str == nullptr) return fail(where + "." + std::string(key) + ": expected string");
            out->assign(str->data(), str->size());
        }
        if (f.status.size() > max_status_bytes) return fail(where + ".status: " + too_long(f.status.size()));
        files.push_back(std::move(f));
    }
    std::sort(files.begin(), files.end());
    return files;
}

} // namespace

import_status classify_status(std::string_view status) {
    for (auto const s : known_statuses)
        if (status == to_string(s)) return s;
    return import_status::unknown;
}

bool is_terminal(std::string_view status) { return is_terminal(classify_status(status)); }

std::string_view status_label(std::optional<std::string> const& status) {
    return status ? to_string(classify_status(*status)) : status_labels.front();
}

expected<import_snapshot> decode_import(std::string_view body) {
    if (body.size() > max_import_body)
        return fail("body too large: " + std::to_string(body.size()) + " bytes (limit " +
                    std::to_string(max_import_body) + ")");

    boost::system::error_code ec;
    json::value root = json::parse(body, ec);
    if (ec) return fail("malformed JSON: " + ec.message());
    auto const* obj = root.if_object();
    if (obj == nullptr) return fail("expected a JSON object");

    import_snapshot snap;
    // In the order LD's schema lists them, so the first problem is reported.
    auto id = required_string(*obj, "id");
    if (!id) return fail(id.error());
    auto segment_key = required_string(*obj, "segmentKey");
    if (!segment_key) return fail(segment_key.error());
    auto creation_time = required_int64(*obj, "creationTime");
    if (!creation_time) return fail(creation_time.error());
    auto mode = required_string(*obj, "mode");
    if (!mode) return fail(mode.error());
    auto status = required_string(*obj, "status");
    if (!status) return fail(status.error());
    // Checked before anything else reads it: the text is never echoed.
    if (status->size() > max_status_bytes) return fail("field status: " + too_long(status->size()));
    auto files = decode_files(*obj);
    if (!files) return fail(files.error());
    // `_links` is required by LD's schema, but importwatch never reads it, so
    // its absence is tolerated rather than turning a usable answer into an
    // invalid response (and eventually a failed watch).

    snap.id = std::move(*id);
    snap.segment_key = std::move(*segment_key);
    snap.creation_time = *creation_time;
    snap.mode = std::move(*mode);
    snap.status = std::move(*status);   // unknown values are kept verbatim
    snap.files = std::move(*files);
    snap.json = std::move(root);
    return snap;
}

std::vector<import_file> files_of(boost::json::value const& import_json) {
    auto const* obj = import_json.if_object();
    if (obj == nullptr) return {};
    auto files = decode_files(*obj);
    if (!files) return {};
    return std::move(*files);
}

} // namespace importwatch::core
