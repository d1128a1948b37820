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

struct poll_decision {
    watch_state state;                   // the new state
    bool persist = false;                // persisted fields changed: commit state + events
    std::vector<event> events;           // in emission order, sequences already assigned
    std::optional<sys_ms> next_poll;     // nullopt: terminal, never poll again
    poll_result result = poll_result::ok;
    bool unauthorized = false;           // 401: fail every other watch, re-read the token
    std::optional<std::string> error;    // for the (deduplicated) error log
    std::optional<std::string> warning;  // e.g. an unknown status, once per watch
};

/// When to poll a healthy watch next: the status interval (or `interval`),
/// spread by ±jitter.
sys_ms next_poll_time(polling_config const& polling, std::optional<std::string> const& status,
                      sys_ms now, random_source& rng);

/// Judges one poll. Rate-limit pauses are the gate's business (it sees the
/// same reply); here a 429 only counts as rate_limited and retries soon.
poll_decision decide(watch_view const& view, watch_state const& state, http_outcome const& outcome,
                     sys_ms now, random_source& rng);

/// Marks a watch failed without polling it (every other watch after a 401):
/// emits watch.failed unless it is already failed; next poll at backoff.max.
poll_decision fail_watch(watch_view const& view, watch_state const& state, watch_failure failure,
                         sys_ms now, random_source& rng);

} // namespace importwatch::core
