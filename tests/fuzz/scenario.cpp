// Simulator scenario files: errors name the file; a scenario that parses has
// steps for every import, only the last one lasting forever.
#include "fuzz_check.hpp"
#include "sim/scenario.hpp"

using namespace importwatch;

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string const file = "fuzz-scenario.yaml";
    auto const parsed = sim::parse_scenario(fuzz::as_text(data, size), file);
    if (!parsed) {
        FUZZ_CHECK(parsed.error().starts_with(file));
        return 0;
    }
    auto check_faults = [](std::vector<sim::fault> const& faults) {
        for (auto const& f : faults) {
            FUZZ_CHECK(sim::to_string(f.type) != "unknown");
            FUZZ_CHECK(f.probability >= 0.0 && f.probability <= 1.0);
            FUZZ_CHECK(f.from.count() >= 0 && f.delay.count() >= 0);
        }
    };
    check_faults(parsed->faults);
    for (auto const& imp : parsed->imports) {
        FUZZ_CHECK(!imp.path().empty());
        FUZZ_CHECK(!imp.steps.empty());
        for (std::size_t i = 0; i + 1 < imp.steps.size(); ++i) FUZZ_CHECK(imp.steps[i].duration.count() > 0);
        check_faults(imp.faults);
    }
    return 0;
}
