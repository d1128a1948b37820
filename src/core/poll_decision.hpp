#pragma once
// The heart of polling (docs/events.md): given a watch, its state and what one poll came
// back with, decide the new state, the events, and when to poll next. Pure.
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/event.hpp"
#include "core/http_exchange.hpp"
#include "core/watch_state.hpp"

namespace importwatch::core {

/// The metric label of a poll (importwatch_polls_total{result}).
enum class poll_result { ok, rate_limited, client_error, server_error, network_error, invalid_response };
char const* to_string(poll_result r);

/// How many invalid responses in a row fail a watch.
inline constexpr int invalid_responses_to_fail = 5;

struct watch_view {
    watch_config const& watch;
    polling_config const& polling;
    std::string const& base_url;
};

/// At most this many file_status_changed events per poll, then one summary.
inline constexpr std::size_t max_file_events_per_poll = 100;

/// Bounds against a hostile or broken server that one decision ran into
/// (the poller logs and counts them).
struct limits_hit {
    std::size_t file_events_omitted = 0;   // file changes folded into the summary event
    std::size_t import_bytes = 0;          // events carry a shortened Import of this size (bounded_import)
    bool status_too_long = false;          // the reply was invalid because of it
    bool text_cut = false;                 // a file name or error message over max_peer_text was cut
    bool any() const { return file_events_omitted > 0 || import_bytes > 0 || status_too_long || text_cut; }
};

struct poll_decision {
    watch_state state;                   // the new state
    /// The Import object this poll received, serialized, for the store to
    /// keep: set when it changed (or the state is written anyway and none
    /// is stored yet); nullopt: the stored one stays.
    std::optional<std::string> import;
    bool persist = false;                // persisted fields changed: commit state, import + events
    std::vector<event> events;           // in emission order, sequences already assigned
    /// The event (a watch.failed: no Import came with this poll) that carries
    /// the stored Import, by index in `events`. It says "import": null until
    /// carry_stored_import() puts the stored one in; nullopt: none to put.
    std::optional<std::size_t> carries_stored_import;
    std::optional<sys_ms> next_poll;     // nullopt: terminal, never poll again
    poll_result result = poll_result::ok;
    bool unauthorized = false;           // 401: fail every other watch, re-read the token
    std::optional<std::string> error;    // for the (deduplicated) error log
    std::optional<std::string> warning;  // e.g. an unknown status, once per watch
    limits_hit limits;
};

/// When to poll a healthy watch next: the status interval (or `interval`),
/// spread by ±jitter.
sys_ms next_poll_time(polling_config const& polling, std::optional<std::string> const& status,
                      sys_ms now, random_source& rng);

/// Judges one poll. Rate-limit pauses are the gate's business (it sees the
/// same reply); here a 429 counts as rate_limited and retries after a
/// full-jitter backoff over this watch's consecutive 429s.
poll_decision decide(watch_view const& view, watch_state const& state, http_outcome const& outcome,
                     sys_ms now, random_source& rng);

/// Completes a decision that carries the stored Import (carries_stored_import):
/// `stored` is the watch's Import as the store holds it (store::state_store::
/// load_import; "" = none, the event stays null), spliced in as stored, or
/// shortened past max_event_import_bytes (limits.import_bytes says so).
/// The I/O side reads it; deciding needs only whether one is stored.
void carry_stored_import(poll_decision& d, std::string const& stored);

/// Marks a watch failed without polling it (every other watch after a 401):
/// emits watch.failed unless it is already failed; next poll at backoff.max.
poll_decision fail_watch(watch_view const& view, watch_state const& state, watch_failure failure,
                         sys_ms now, random_source& rng);

} // namespace importwatch::core
