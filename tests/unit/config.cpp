#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include "core/config.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(config)

// The watch's own setting first (its status, then its default), then
// polling's (status, then default), then the built-in 6h.
BOOST_AUTO_TEST_CASE(stall_threshold_falls_back_from_watch_to_polling_to_default) {
    stall_thresholds const none;
    stall_thresholds const global_map{{{"pending_approval", 72h}, {"in_progress", 30min}}, 6h};
    stall_thresholds const global_map_without_default{{{"in_progress", 30min}}, std::nullopt};
    stall_thresholds const global_duration{{}, 2h};
    stall_thresholds const watch_map{{{"in_progress", 10min}}, std::nullopt};
    stall_thresholds const watch_map_with_default{{{"in_progress", 10min}}, 1h};
    stall_thresholds const watch_duration{{}, 3h};
    stall_thresholds const watch_off{{}, 0ms};
    stall_thresholds const watch_off_for_one_status{{{"pending_approval", 0ms}}, std::nullopt};

    struct row {
        char const* name;
        stall_thresholds const& global;
        stall_thresholds const& own;
        char const* status;
        milliseconds expected;
    };
    row const rows[] = {
        {"nothing configured", none, none, "in_progress", 6h},
        {"global duration", global_duration, none, "pending_approval", 2h},
        {"global map: listed status", global_map, none, "pending_approval", 72h},
        {"global map: another listed status", global_map, none, "in_progress", 30min},
        {"global map: unlisted status takes its default", global_map, none, "ready", 6h},
        {"global map without default: unlisted status", global_map_without_default, none, "ready", 6h},
        {"unknown status takes the global default", global_duration, none, "archived", 2h},
        {"watch map: its status", global_map, watch_map, "in_progress", 10min},
        {"watch map: other status falls to the global map", global_map, watch_map, "pending_approval", 72h},
        {"watch map: other status falls to the global default", global_duration, watch_map, "ready", 2h},
        {"watch map with default: its default beats the global map", global_map, watch_map_with_default,
         "pending_approval", 1h},
        {"watch duration covers every status", global_map, watch_duration, "pending_approval", 3h},
        {"watch 0 turns stalls off for it", global_map, watch_off, "in_progress", 0ms},
        {"watch 0 for one status", global_map, watch_off_for_one_status, "pending_approval", 0ms},
        {"watch 0 for one status only", global_map, watch_off_for_one_status, "in_progress", 30min},
    };
    for (auto const& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            watch_config w;
            w.stall_after = r.own;
            polling_config p;
            p.stall_after = r.global;
            BOOST_TEST(stall_threshold(w, p, r.status).count() == r.expected.count());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
