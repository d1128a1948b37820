// Import decoding: any bytes as a 200 body. A decoded snapshot must be
// internally consistent and decode the same from its own JSON.
#include <algorithm>

#include <boost/json/serialize.hpp>

#include "core/import.hpp"
#include "fuzz_check.hpp"

using namespace importwatch;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const body = fuzz::as_text(data, size);
    auto const snap = core::decode_import(body);
    if (!snap) {
        FUZZ_CHECK(!snap.error().empty());
        return 0;
    }
    FUZZ_CHECK(std::is_sorted(snap->files.begin(), snap->files.end()));
    FUZZ_CHECK(core::files_of(snap->json) == snap->files);
    (void)core::is_terminal(snap->status);

    // What the store keeps and restores from.
    auto const again = core::decode_import(boost::json::serialize(snap->json));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->id == snap->id && again->segment_key == snap->segment_key &&
               again->creation_time == snap->creation_time && again->mode == snap->mode &&
               again->status == snap->status && again->files == snap->files);
    return 0;
}
