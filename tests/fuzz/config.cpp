// Config loading from YAML bytes: the main config and a watch_files drop-in.
// Errors must name the file (and, from the parser, where in it); a config that
// parses (without watch_files) must pass the cross-file checks.
#include <optional>
#include <string>

#include "core/config_parser.hpp"
#include "fuzz_check.hpp"

using namespace importwatch;

namespace {

std::optional<std::string> environment(std::string const& name) {
    if (name == "STATE_DIRECTORY") return "/var/lib/importwatch";
    if (name == "HOME") return "/home/importwatch";
    if (name == "LD_API_TOKEN") return "api-00000000-0000-0000-0000-000000000000";
    if (name == "EMPTY") return "";
    return std::nullopt;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const text = fuzz::as_text(data, size);
    std::string const file = "fuzz.yaml";

    auto const cfg = core::parse_config(text, file, environment);
    if (cfg) {
        FUZZ_CHECK(cfg->file == file);
        // With watch_files, webhooks may name watches the loader adds later.
        if (cfg->watch_files.empty()) FUZZ_CHECK(core::check_watch_set(*cfg).has_value());
        for (auto const& warning : core::config_warnings(*cfg)) FUZZ_CHECK(!warning.empty());
    } else {
        FUZZ_CHECK(cfg.error().starts_with(file));
    }

    auto const watches = core::parse_watch_file(text, file, environment);
    if (!watches) FUZZ_CHECK(watches.error().starts_with(file));
    return 0;
}
