#include "core/scheduler.hpp"

#include <algorithm>

namespace importwatch::core {

milliseconds coalesce_window(polling_config const& polling) {
    auto shortest = polling.interval;
    for (auto const& [status, interval] : polling.status_intervals) shortest = std::min(shortest, interval);
    return std::min(milliseconds(100), shortest / 100);
}

namespace {

// std::*_heap build a max-heap: "later" as less puts the earliest first.
constexpr auto later = [](auto const& a, auto const& b) { return a.due > b.due; };

} // namespace

scheduler::watch_index scheduler::add() {
    due_.emplace_back();
    generation_.push_back(0);
    return static_cast<watch_index>(due_.size() - 1);
}

void scheduler::schedule(watch_index watch, std::optional<sys_ms> due) {
    scheduled_ += static_cast<std::size_t>(due.has_value()) - static_cast<std::size_t>(due_[watch].has_value());
    due_[watch] = due;
    ++generation_[watch];   // whatever entry the watch had is stale now
    if (!due) return;
    heap_.push_back({*due, watch, generation_[watch]});
    std::push_heap(heap_.begin(), heap_.end(), later);
    // Out-of-turn reschedules leave stale entries that surface only at their
    // old due time; keep them from outgrowing the live ones.
    if (heap_.size() > 2 * scheduled_ + 64) drop_stale_entries();
}

std::optional<scheduler::due_watch> scheduler::earliest() {
    while (!heap_.empty() && !live(heap_.front())) {
        std::pop_heap(heap_.begin(), heap_.end(), later);
        heap_.pop_back();
    }
    if (heap_.empty()) return std::nullopt;
    return due_watch{heap_.front().due, heap_.front().watch};
}

void scheduler::take_earliest() {
    if (!earliest()) return;
    auto const watch = heap_.front().watch;
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
    schedule(watch, std::nullopt);
}

milliseconds scheduler::lag(sys_ms now) const {
    milliseconds worst{0};
    for (auto const& d : due_)
        if (d && *d < now) worst = std::max(worst, now - *d);
    return worst;
}

void scheduler::drop_stale_entries() {
    std::erase_if(heap_, [this](entry const& e) { return !live(e); });
    std::make_heap(heap_.begin(), heap_.end(), later);
}

} // namespace importwatch::core
