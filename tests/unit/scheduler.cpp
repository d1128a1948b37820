#define BOOST_TEST_MODULE scheduler
#include <boost/test/unit_test.hpp>

#include <vector>

#include "core/scheduler.hpp"
#include "common/scripted_random.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;

namespace {

sys_ms const t0 = sys_ms{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}} + 19h;

/// Takes every watch due at `now`, in order.
std::vector<scheduler::watch_index> take_due(scheduler& s, sys_ms now) {
    std::vector<scheduler::watch_index> out;
    while (auto e = s.earliest()) {
        if (e->due > now) break;
        out.push_back(e->watch);
        s.take_earliest();
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(scheduler_tests)

// Waiting for company is 1 % of the shortest interval the config asks for,
// at most 100 ms, and nothing when an interval is 0.
BOOST_AUTO_TEST_CASE(coalesce_window_is_a_hundredth_of_the_shortest_interval) {
    polling_config p;   // 30 s
    BOOST_TEST(coalesce_window(p).count() == 100);
    p.status_intervals["pending_approval"] = 2s;
    BOOST_TEST(coalesce_window(p).count() == 20);
    p.interval = 20ms;
    BOOST_TEST(coalesce_window(p).count() == 0);
    p.interval = 0ms;
    p.status_intervals.clear();
    BOOST_TEST(coalesce_window(p).count() == 0);
}

BOOST_AUTO_TEST_CASE(hands_out_watches_in_due_order_and_only_when_due) {
    scheduler s;
    auto a = s.add(), b = s.add(), c = s.add();
    BOOST_TEST(s.size() == 3u);
    s.schedule(a, t0 + 300ms);
    s.schedule(b, t0 + 100ms);
    s.schedule(c, t0 + 200ms);
    BOOST_TEST(s.earliest()->watch == b);
    BOOST_TEST(s.earliest()->due == t0 + 100ms);
    BOOST_TEST(take_due(s, t0 + 50ms).empty());
    BOOST_TEST((take_due(s, t0 + 250ms) == std::vector<scheduler::watch_index>{b, c}));
    // Taken watches are off the schedule until scheduled again.
    BOOST_TEST(!s.due(b).has_value());
    BOOST_TEST(*s.due(a) == t0 + 300ms);
    BOOST_TEST((take_due(s, t0 + 1h) == std::vector<scheduler::watch_index>{a}));
    BOOST_TEST(!s.earliest().has_value());
}

BOOST_AUTO_TEST_CASE(rescheduling_out_of_turn_replaces_the_old_time) {
    scheduler s;
    auto a = s.add(), b = s.add();
    s.schedule(a, t0 + 100ms);
    s.schedule(b, t0 + 200ms);
    s.schedule(a, t0 + 1s);   // later: its entry at 100 ms is stale
    BOOST_TEST((take_due(s, t0 + 500ms) == std::vector<scheduler::watch_index>{b}));
    s.schedule(b, t0 + 2s);
    s.schedule(b, t0 + 50ms);   // earlier
    BOOST_TEST((take_due(s, t0 + 500ms) == std::vector<scheduler::watch_index>{b}));
    // Off the schedule: neither of its entries comes out.
    s.schedule(a, std::nullopt);
    BOOST_TEST(take_due(s, t0 + 1h).empty());
    BOOST_TEST(!s.earliest().has_value());
}

BOOST_AUTO_TEST_CASE(a_watch_taken_and_rescheduled_is_due_once) {
    scheduler s;
    auto a = s.add();
    s.schedule(a, t0);
    s.take_earliest();
    s.schedule(a, t0);   // the poll finished at once
    BOOST_TEST((take_due(s, t0) == std::vector<scheduler::watch_index>{a}));
    BOOST_TEST(take_due(s, t0 + 1h).empty());
}

BOOST_AUTO_TEST_CASE(lag_is_how_late_the_most_overdue_scheduled_watch_is) {
    scheduler s;
    auto a = s.add(), b = s.add(), c = s.add();
    BOOST_TEST(s.lag(t0).count() == 0);
    s.schedule(a, t0 - 300ms);
    s.schedule(b, t0 - 2s);
    s.schedule(c, t0 + 1s);
    BOOST_TEST(s.lag(t0).count() == 2000);
    s.schedule(b, std::nullopt);   // being polled: not late
    BOOST_TEST(s.lag(t0).count() == 300);
    s.take_earliest();
    BOOST_TEST(s.lag(t0).count() == 0);
}

BOOST_AUTO_TEST_CASE(stale_entries_stay_bounded) {
    scheduler s;
    std::vector<scheduler::watch_index> w;
    for (int i = 0; i < 10; ++i) w.push_back(s.add());
    // A watch rescheduled far out and back, again and again, never surfaces
    // its stale entries; they must not pile up.
    for (int round = 0; round < 10'000; ++round)
        for (auto i : w) s.schedule(i, t0 + std::chrono::milliseconds(round % 2 ? 1 : 3'600'000));
    BOOST_TEST(s.entries() <= 2 * w.size() + 64);
    // The last round (odd) made every watch due at t0 + 1 ms, once each.
    BOOST_TEST(take_due(s, t0 + 10ms).size() == w.size());
    BOOST_TEST(take_due(s, t0 + 2h).empty());
}

BOOST_AUTO_TEST_SUITE_END()
