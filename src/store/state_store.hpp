#pragma once
// The state store (README, "State"): one SQLite database (WAL) in state.dir holding
// watch states, the webhook outbox and dead letters. A watch's state change
// and its events' outbox rows commit in one transaction.
//
// The state dir is locked (flock on state.dir/lock) by the daemon; outbox
// commands open the database without the lock, beside a running daemon.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.hpp"
#include "core/expected.hpp"
#include "core/watch_state.hpp"

namespace importwatch::store {

using core::sys_ms;

/// One event bound for one webhook.
struct delivery {
    std::int64_t id = 0;              // row id
    std::string webhook;              // webhook name
    std::string watch_path;           // the watch's key path (p/e/s/i)
    std::string watch_name;
    std::uint64_t sequence = 0;
    std::string event_id;
    std::string event_type;
    std::string body;                 // as the webhook's format made it when committed
    std::string content_type;         // of the body
    int attempts = 0;
    sys_ms committed{};               // when the event was committed (max_age counts from here)
    sys_ms next_attempt{};
    std::string last_error;
    bool dead = false;
    sys_ms dead_since{};
};

/// What one webhook gets of an event: the body its format made of it. The
/// body is viewed, not copied (for the cloudevents format it is the event's
/// own bytes); it must outlive commit().
struct webhook_payload {
    std::string webhook;
    std::string_view content_type;
    std::string_view body;
};

/// An event and what each webhook it goes to gets.
struct routed_event {
    core::event const* event;
    std::vector<webhook_payload> payloads;
};

/// Bounds on the outbox of each webhook and on the whole database, so that an
/// event flood (a broken or hostile server) or a receiver that never answers
/// 2xx cannot fill the disk. Pending deliveries past their bound become dead
/// letters, oldest first ("outbox full"); dead letters past theirs are
/// deleted, oldest first. Polling is never held for a webhook: the daemon
/// keeps observing, logging and feeding the other webhooks.
struct outbox_limits {
    std::size_t pending_rows = 10'000;
    std::size_t pending_bytes = 16 << 20;     // event bodies
    std::size_t dead_rows = 10'000;
    std::size_t dead_bytes = 16 << 20;
    std::size_t database_bytes = 256 << 20;   // SQLite max_page_count: commits fail beyond it
};

/// What a commit did to stay within outbox_limits, per webhook.
struct outbox_overflow {
    std::string webhook;
    std::size_t dead_lettered = 0;    // oldest pending deliveries made dead letters
    std::size_t dropped = 0;          // oldest dead letters deleted
};

struct commit_report {
    std::vector<outbox_overflow> overflows;
};

/// One watch's decision as commit() takes it: its persisted state and, when
/// given, its new Import (nullptr or nullopt keeps the stored one), plus one
/// outbox row per (event, webhook). Views what it names: they must outlive
/// the commit.
struct commit_request {
    std::string_view watch_key;
    std::string_view watch_name;
    core::watch_state const* state = nullptr;
    std::vector<routed_event> const* events = nullptr;
    std::optional<std::string> const* import = nullptr;
};

enum class open_mode {
    daemon,   // take the state dir lock (fails if another daemon holds it)
    tool,     // no lock: outbox commands beside a running daemon
};

/// Every method runs its transaction to the end before it returns: no
/// transaction is ever left open between calls, so nothing another part of
/// the daemon does (delivery outcomes, replay, a reload's reads) can nest in
/// or see a half-written group. A transaction begun while one is open is
/// refused ("a transaction is already open").
class state_store {
public:
    /// Opens (creating dir 0700 and schema if missing) state.dir/importwatch.db.
    /// Errors name the file: "state.db: file is not a database", or
    /// "state dir /x is locked by another importwatch (pid 123)".
    static core::expected<std::unique_ptr<state_store>> open(std::string const& dir, open_mode mode);
    ~state_store();

    std::string const& path() const;

    /// Every stored watch state, keyed by watch key path (with the stored
    /// Import's files, not its text: load_import).
    core::expected<std::map<std::string, core::watch_state>> load_watches();
    /// The stored states of `keys` (those the store has): what a reload needs
    /// for the watches it adds, without reading every other row.
    core::expected<std::map<std::string, core::watch_state>> load_watches(std::vector<std::string> const& keys);

    /// Sets the bounds (the defaults otherwise), the database's size included.
    core::expected<void> set_limits(outbox_limits const& limits);
    outbox_limits const& limits() const;
    /// Whether the last failed write failed because the database reached
    /// outbox_limits::database_bytes.
    bool at_size_limit() const;

    /// The stored Import object of a watch, serialized as stored: what a
    /// watch.failed event carries (core::carry_stored_import). "" when none
    /// is stored, or when it is damaged (not JSON): forgotten, not passed on.
    core::expected<std::string> load_import(std::string const& watch_key);

    /// One transaction: the watch's persisted state and, when given, its new
    /// Import (core::poll_decision::import; nullopt keeps the stored one),
    /// plus one outbox row per (event, webhook), then whatever outbox_limits
    /// requires (reported). Nothing is written on error.
    core::expected<commit_report> commit(std::string const& watch_key, std::string const& watch_name,
                                core::watch_state const& state,
                                std::vector<routed_event> const& events, sys_ms now,
                                std::optional<std::string> const& import = std::nullopt);
    /// Several decisions in ONE transaction (one fsync for all: group
    /// commit), each written as commit() writes one; a report per request,
    /// in order. All or nothing: on error none of them is written.
    core::expected<std::vector<commit_report>> commit(std::vector<commit_request const*> const& batch, sys_ms now);
    /// Transactions that committed decisions (either commit()), and the
    /// decisions they held: their ratio is the size of the groups.
    std::uint64_t decision_transactions() const;
    std::uint64_t decisions_committed() const;

    /// The heads of `webhook`'s queues — per watch, its oldest pending
    /// delivery, the only one that may be attempted (order per webhook and
    /// watch) — earliest next attempt first, at most `limit` of them.
    core::expected<std::vector<delivery>> delivery_heads(std::string const& webhook, std::size_t limit);

    /// What became of one delivery attempt.
    struct outcome {
        enum class kind { delivered, retry, dead };
        std::int64_t id = 0;
        kind what = kind::delivered;
        int attempts = 0;
        sys_ms next_attempt{};     // retry
        std::string error;         // retry, dead
        sys_ms at{};               // dead: dead_since

        static outcome delivered(std::int64_t id);
        static outcome retry(std::int64_t id, int attempts, sys_ms next_attempt, std::string error);
        static outcome dead(std::int64_t id, int attempts, std::string error, sys_ms dead_since);
    };
    /// Records outcomes in one transaction (all or none). It does not wait
    /// for the disk (synchronous=NORMAL): a process crash loses none, and
    /// the next commit() makes them durable against power loss too. Losing
    /// one to a power cut only means that delivery is attempted again, which
    /// at-least-once delivery allows.
    core::expected<void> record(std::vector<outcome> const& outcomes);

    /// Pending and dead deliveries, for `importwatch outbox list`, ordered by
    /// webhook, watch, sequence.
    core::expected<std::vector<delivery>> list_outbox();
    /// Dead letters (of one webhook, or all) become pending, due `now`, with
    /// attempts and max_age restarted. Returns how many.
    core::expected<std::size_t> replay(std::optional<std::string> const& webhook, sys_ms now);
    /// Deletes dead letters dead since before `cutoff`. Returns how many.
    core::expected<std::size_t> purge_dead(sys_ms cutoff);

    /// Per webhook: pending count and oldest pending committed time (metrics).
    struct webhook_backlog {
        std::size_t pending = 0;
        std::optional<sys_ms> oldest;
        std::size_t dead = 0;
    };
    core::expected<std::map<std::string, webhook_backlog>> backlog();

private:
    struct impl;
    explicit state_store(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

} // namespace importwatch::store
