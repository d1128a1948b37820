#pragma once
// The poller: every watch's polls, in named parts.
//  - the schedule (core::scheduler): when each watch is due, one min-heap
//    for all of them, no timer or coroutine per watch;
//  - the run loop: hands due watches to at most max_connections polls in
//    flight, each after a permit from the process-wide rate gate
//    (core::rate_limit_gate), and sleeps until the next due time or permit;
//  - the poll pipeline, one run per due watch: request → decide (core::decide)
//    → the stored Import when an event carries it (stored_import_fn) →
//    commit (commit_fn) → publish (publish_fn) → schedule again;
//  - the token source: the API token, read again after a 401;
//  - what it reports: throttled log lines and metrics.
// What it talks to is injected (poller_dependencies): the transport to
// LaunchDarkly, the clock (its `now` and its wake-ups) and the random source,
// so tests drive it in-process on virtual time.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/expected.hpp"
#include "core/poll_decision.hpp"
#include "core/watch_state.hpp"
#include "daemon/clock.hpp"
#include "daemon/metrics.hpp"
#include "net/asio.hpp"
#include "net/http_client.hpp"

namespace importwatch::daemon {

/// One watch as the poller keeps it.
struct watch_slot {
    core::watch_config config;
    core::watch_state state;
    std::optional<core::sys_ms> last_poll;
    std::optional<std::string> last_error;
    std::uint32_t index = 0;                   // in the poller's schedule
    bool in_flight = false;
    bool committing = false;                   // its decision is being committed (off the schedule)
    bool removed = false;                      // dropped by a reload
};

struct poller_settings {
    core::launchdarkly_config launchdarkly;
    core::polling_config polling;
    std::string token;
    /// `wait`: a failed watch is settled and not polled again.
    bool stop_failed_watches = false;
};

/// The stored Import object of a watch ("" = none; store::state_store::
/// load_import), read only when an event carries it (a watch.failed). An
/// error is handled as a failed commit.
using stored_import_fn = std::function<core::expected<std::string>(watch_slot const& slot)>;

/// What the poller talks to. Whatever is left empty of `connect`, `time` and
/// `random` is the real thing: an HTTPS pool (net::make_client), the wall
/// clock, a seeded PRNG. Without `stored_import` nothing is stored (`wait`,
/// which prints only summaries): a watch.failed carries "import": null.
struct poller_dependencies {
    /// Builds the connection pool to LaunchDarkly; called again when a reload
    /// changes the client settings (compared whole, with ==).
    std::function<core::expected<std::shared_ptr<net::transport>>(net::client_settings const&)> connect;
    std::shared_ptr<clock> time;
    std::shared_ptr<core::random_source> random;
    stored_import_fn stored_import;
};

class poller {
public:
    /// Commits a decision before its events are published: the watch's new
    /// state, its new Import if any (decision.import) and its events (the
    /// state store in `run`, where decisions that complete together share a
    /// transaction: daemon::group_commit; nothing in `wait`). It completes
    /// once the decision is durable; `slot` and `decision` stay as they are
    /// until then. An error keeps the old state and the poll is repeated
    /// later. Meanwhile the watch is not on the schedule (committing).
    using commit_fn = std::function<asio::awaitable<core::expected<void>>(watch_slot const& slot,
                                                                          core::poll_decision const& decision)>;
    /// Called after a commit, in order, for the events of one decision.
    using publish_fn = std::function<void(watch_slot const& slot, std::vector<core::event> const& events)>;

    poller(asio::any_io_executor ex, metrics& counters, commit_fn commit, publish_fn publish,
           poller_dependencies dependencies = {});
    ~poller();
    poller(poller const&) = delete;
    poller& operator=(poller const&) = delete;

    /// The stored states of `keys` (at least those; keys the store lacks are
    /// left out): what the watches a configuration adds start from.
    using state_loader =
        std::function<core::expected<std::map<std::string, core::watch_state>>(std::vector<std::string> const& keys)>;

    /// For a poller without a store (`wait`, benchmarks): every watch starts fresh.
    static core::expected<std::map<std::string, core::watch_state>> nothing_stored(std::vector<std::string> const&) {
        return std::map<std::string, core::watch_state>{};
    }

    /// Applies settings and the watch list (start-up and reload), taking the
    /// watches over. Watches are matched by identity: kept ones keep state and
    /// schedule, new ones start from what `load` gives for their keys (or
    /// fresh) and are due at once, missing ones stop. On error nothing changed.
    core::expected<void> configure(poller_settings settings, std::vector<core::watch_config> watches,
                                   state_loader const& load);

    /// Runs until stop().
    asio::awaitable<void> run();
    /// Stops scheduling and abandons polls in flight (nothing of them is committed).
    void stop();

    /// Every watch, in configuration order (removed ones flagged).
    std::deque<watch_slot> const& watches() const;
    /// When the watch is polled next; nullopt while it is polled, and when
    /// it is terminal or removed.
    std::optional<core::sys_ms> next_poll(watch_slot const& watch) const;
    /// True when every watch is terminal (or failed, with stop_failed_watches).
    bool settled() const;
    /// Called whenever a watch settles (wait uses it to exit).
    void on_settled(std::function<void()> f);
    /// How late the most overdue poll is (0 when none is overdue).
    std::chrono::milliseconds scheduler_lag(core::sys_ms now) const;
    /// When the state store cannot commit, the daemon is not ready.
    bool commit_failing() const;
    /// LaunchDarkly answered 401 and no poll has succeeded since.
    bool token_rejected() const;
    /// The end of the process-wide rate-limit pause (429 or remaining=0
    /// hold); nullopt when no pause holds requests at `now`.
    std::optional<core::sys_ms> paused_until(core::sys_ms now) const;
    /// Called when a pause starts or reaches further, with its end.
    void on_pause(std::function<void(core::sys_ms until)> f);

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace importwatch::daemon
