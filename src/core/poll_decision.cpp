#include "core/poll_decision.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/backoff.hpp"
#include "core/duration.hpp"
#include "core/import.hpp"
#include "core/siphash.hpp"
#include "core/untrusted_text.hpp"

namespace importwatch::core {

namespace {

namespace json = boost::json;

char const* status_text(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    default: return "client error";
    }
}

// LD error bodies are {"code": "...", "message": "...", "id": "..."}; fall
// back to the status text when the body is anything else.
std::string error_message(http_reply const& reply, limits_hit& limits) {
    if (reply.body.size() <= max_import_body) {
        boost::system::error_code ec;
        auto v = json::parse(reply.body, ec);
        if (!ec) {
            if (auto const* obj = v.if_object()) {
                if (auto const* m = obj->if_contains("message")) {
                    if (auto const* s = m->if_string(); s != nullptr && !s->empty()) {
                        if (s->size() > max_peer_text) limits.text_cut = true;
                        return printable(truncated(std::string_view(s->data(), s->size())));
                    }
                }
            }
        }
    }
    return status_text(reply.status);
}

std::string failure_reason(int status) {
    switch (status) {
    case 400: return "invalid_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    default: return "client_error";
    }
}

/// The Import object a decision's events carry, serialized once: the
/// Import's own serialization when it fits in max_event_import_bytes (the
/// same bytes the store keeps), else its shortened form (bounded_import),
/// made on the first event. An unchanged poll emits no event and pays nothing.
class carried_import {
public:
    /// The Import just decoded; serialized when first needed.
    explicit carried_import(json::value const& decoded) : decoded_(&decoded) {}
    /// The stored Import ("" = none), as the store returns it: valid JSON,
    /// made by this class or checked by the store (state_store::load_import).
    explicit carried_import(std::string const& stored) : serialized_(&stored) {}

    std::string_view get(poll_decision& d) {
        auto const& whole = serialized();
        if (whole.size() <= max_event_import_bytes) return whole;
        if (!bounded_) {
            d.limits.import_bytes = whole.size();
            // Only a stored Import over the bound (a failing watch) is parsed
            // again: shortening needs its structure.
            json::value const* import = decoded_;
            json::value parsed;
            if (!import) {
                boost::system::error_code ec;
                parsed = json::parse(whole, ec);   // stays null on error: the event says null
                import = &parsed;
            }
            bounded_ = json::serialize(bounded_import(*import, whole.size()));
        }
        return *bounded_;
    }
    /// Its serialized form (made at most once).
    std::string const& serialized() {
        if (!serialized_) {
            own_ = json::serialize(*decoded_);
            serialized_ = &own_;
        }
        return *serialized_;
    }
    /// The serialized form it made, moved out (the events have theirs).
    std::string release_serialized() {
        serialized();
        serialized_ = nullptr;
        return std::move(own_);
    }

private:
    json::value const* decoded_ = nullptr;
    std::string const* serialized_ = nullptr;
    std::string own_;
    std::optional<std::string> bounded_;
};

/// Builds the events of one decision, numbering them in emission order.
class event_writer {
public:
    event_writer(watch_view const& view, poll_decision& d, carried_import& import, sys_ms now, random_source& rng)
        : view_(view), d_(d), import_(import), now_(now), rng_(rng) {}

    void emit(std::optional<std::string> const& status, std::string_view type, json::object extra,
              std::string_view what, log_level level) {
        std::string summary;
        summary.append(view_.watch.name).append(" ").append(what);
        summary.append(" (").append(view_.watch.key.path()).append(")");
        summary = printable(std::move(summary));
        event_subject subject{view_.watch, view_.base_url, status, import_.get(d_)};
        d_.events.push_back(make_event(subject, type, ++d_.state.sequence, std::move(extra),
                                       std::move(summary), level, now_, rng_));
    }

private:
    watch_view const& view_;
    poll_decision& d_;
    carried_import& import_;
    sys_ms now_;
    random_source& rng_;
};

json::value nullable(std::optional<std::string> const& s) {
    if (s) return json::value(*s);
    return json::value(nullptr);
}

/// Whether the decision changes what is stored: a new Import, or a persisted field.
bool persists(watch_state const& a, poll_decision const& d) {
    auto const& b = d.state;
    return d.import.has_value() || a.status != b.status || a.has_import != b.has_import ||
           a.files != b.files || a.status_since != b.status_since || a.sequence != b.sequence ||
           a.failure != b.failure || a.stall_reported != b.stall_reported;
}

// A failed watch is polled at backoff.max until it recovers.
sys_ms failed_poll_time(watch_view const& view, sys_ms now) { return now + view.polling.backoff.max; }

/// Marks the watch failed: one watch.failed event unless it already is (then
/// the reason changes silently).
void apply_failure(watch_view const& view, poll_decision& d, watch_failure failure, sys_ms now,
                   random_source& rng) {
    if (!d.state.failure) {
        json::object extra;
        extra.emplace("reason", failure.reason);
        if (failure.http_status)
            extra.emplace("http_status", *failure.http_status);
        else
            extra.emplace("http_status", nullptr);
        extra.emplace("message", failure.message);
        std::string what = "failed: " + failure.reason + " (";
        if (failure.http_status) what += "HTTP " + std::to_string(*failure.http_status) + ": ";
        what += failure.message + ")";
        // No Import was received in this poll: the event carries the last one
        // stored, which the I/O side reads and puts in (carry_stored_import).
        std::string const none;
        carried_import carried(none);
        event_writer(view, d, carried, now, rng)
            .emit(d.state.status, watch_failed_type, std::move(extra), what, log_level::warn);
        if (d.state.has_import) d.carries_stored_import = d.events.size() - 1;
    }
    d.state.failure = std::move(failure);
    d.next_poll = failed_poll_time(view, now);
}

/// 5xx, network errors and invalid responses: per-watch full-jitter backoff.
void back_off(watch_view const& view, poll_decision& d, sys_ms now, random_source& rng) {
    ++d.state.error_streak;
    if (d.state.failure)
        d.next_poll = failed_poll_time(view, now);
    else
        d.next_poll = now + full_jitter(view.polling.backoff, d.state.error_streak - 1, rng);
}

/// An invalid response: counted; the 5th in a row (since the last success)
/// fails the watch. `detail` says what was wrong, for the event's message.
void invalid_response(watch_view const& view, poll_decision& d, std::optional<int> http_status,
                      std::string const& detail, sys_ms now, random_source& rng) {
    d.result = poll_result::invalid_response;
    d.error = "invalid response: " + truncated(detail);
    if (detail.find(over_status_limit) != std::string::npos) d.limits.status_too_long = true;
    ++d.state.invalid_streak;
    back_off(view, d, now, rng);
    if (d.state.invalid_streak >= invalid_responses_to_fail)
        apply_failure(view, d, watch_failure{"invalid_response", http_status, truncated(detail)}, now,
                      rng);
}

bool stalled(watch_view const& view, std::string const& status, milliseconds lasted) {
    auto const threshold = stall_threshold(view.watch, view.polling, status);
    return threshold > milliseconds::zero() && lasted >= threshold;
}

bool stall_due(watch_view const& view, watch_state const& st, std::string const& status, sys_ms now) {
    return !is_terminal(status) && !st.stall_reported && stalled(view, status, now - st.status_since);
}

// A fixed key: the hash only has to tell a body from the one before it of
// the same watch and size, which SipHash-2-4's 64 bits get wrong with
// probability 2^-64 (about once in 58 million years at 10,000 polls/s).
// Only a server knowing the key could craft a collision, and the server
// could as well not report the change at all.
constexpr siphash_key body_key{0x696d706f72747761ULL, 0x7463682d626f6479ULL};

struct body_seen {
    std::size_t size;
    std::uint64_t hash;
};

/// True when `body` is byte for byte the last 200 body decoded into `st`,
/// and decoding it again would change nothing but the streaks and the next
/// poll time: no failure to recover from and no stall to report (a stall
/// event carries this body's Import, which the store may not hold as is).
bool same_import(watch_view const& view, watch_state const& st, body_seen seen, sys_ms now) {
    return st.body_size != 0 && st.body_size == seen.size && st.body_hash == seen.hash && st.status &&
           !st.failure && st.has_import && !stall_due(view, st, *st.status, now);
}

/// What succeed() decides for the Import it decided on last time.
void succeed_unchanged(watch_view const& view, poll_decision& d, sys_ms now, random_source& rng) {
    auto& st = d.state;
    d.result = poll_result::ok;
    st.error_streak = 0;
    st.invalid_streak = 0;
    if (is_terminal(*st.status))
        d.next_poll.reset();
    else
        d.next_poll = next_poll_time(view.polling, st.status, now, rng);
}

void succeed(watch_view const& view, poll_decision& d, watch_state const& old, import_snapshot snap,
             sys_ms now, random_source& rng) {
    auto& st = d.state;
    d.result = poll_result::ok;
    st.error_streak = 0;
    st.invalid_streak = 0;

    std::optional<std::string> const status = snap.status;
    carried_import import(snap.json);
    event_writer events(view, d, import, now, rng);

    if (old.failure) {
        events.emit(status, watch_recovered_type, {}, "recovered", log_level::info);
        st.failure.reset();
    }

    bool const first = !old.status.has_value();
    bool const status_changed = first || *old.status != snap.status;
    bool const files_changed = snap.files != old.files;

    if (status_changed) {
        json::object extra;
        extra.emplace("previous_status", nullable(old.status));
        events.emit(status, status_changed_type, std::move(extra),
                    "status " + old.status.value_or("none") + " -> " + snap.status,
                    log_level::info);
        st.status = snap.status;
        st.status_since = now;
        st.stall_reported = false;
    }

    // The first observation's files are in `import`; later, every new or
    // changed file is an event (in filename order); a vanished one is not.
    // Past max_file_events_per_poll, the remaining changes of this poll are
    // folded into one summary event (filename null, files_omitted: N).
    if (!first && files_changed) {
        std::size_t emitted = 0;
        std::size_t omitted = 0;
        auto old_it = old.files.begin();
        for (auto const& f : snap.files) {
            while (old_it != old.files.end() && old_it->filename < f.filename) ++old_it;
            std::optional<std::string> previous;
            if (old_it != old.files.end() && old_it->filename == f.filename) previous = old_it->status;
            if (previous == f.status) continue;
            if (emitted == max_file_events_per_poll) {
                ++omitted;
                continue;
            }
            ++emitted;
            if (f.filename.size() > max_peer_text) d.limits.text_cut = true;
            auto const filename = truncated(f.filename);
            json::object extra;
            extra.emplace("filename", filename);
            extra.emplace("previous_file_status", nullable(previous));
            extra.emplace("file_status", f.status);
            events.emit(status, file_status_changed_type, std::move(extra),
                        "file " + filename + " " + previous.value_or("none") + " -> " + f.status,
                        log_level::info);
        }
        if (omitted > 0) {
            json::object extra;
            extra.emplace("filename", nullptr);
            extra.emplace("previous_file_status", nullptr);
            extra.emplace("file_status", nullptr);
            extra.emplace("files_omitted", omitted);
            events.emit(status, file_status_changed_type, std::move(extra),
                        "files: " + std::to_string(omitted) + " more changed in this poll (events for the first " +
                            std::to_string(max_file_events_per_poll) + " only)",
                        log_level::info);
            d.limits.file_events_omitted = omitted;
        }
    }

    if (!status_changed && stall_due(view, st, snap.status, now)) {
        // stalled has no keys of its own (docs/events.md): how long is in the summary,
        // and status_since in the state (/v1/watches).
        auto const stalled_for = std::chrono::floor<std::chrono::seconds>(now - st.status_since);
        events.emit(status, stalled_type, {},
                    "stalled in " + snap.status + " for " +
                        format_duration(std::chrono::duration_cast<milliseconds>(stalled_for)),
                    log_level::warn);
        st.stall_reported = true;
    }

    if (classify_status(snap.status) == import_status::unknown && !st.unknown_status_warned) {
        d.warning = printable("unknown import status \"" + snap.status + "\" (treated as non-terminal)");
        st.unknown_status_warned = true;
    }

    st.files = std::move(snap.files);
    // Store the Import when it changed, or when the state is written anyway
    // (recovery, stall): an unchanged poll must not cost a write.
    if (status_changed || files_changed || !d.events.empty() || !st.has_import) {
        d.import = import.release_serialized();
        st.has_import = true;
    }

    if (is_terminal(snap.status))
        d.next_poll.reset();
    else
        d.next_poll = next_poll_time(view.polling, st.status, now, rng);
}

} // namespace

char const* to_string(poll_result r) {
    switch (r) {
    case poll_result::ok: return "ok";
    case poll_result::rate_limited: return "rate_limited";
    case poll_result::client_error: return "client_error";
    case poll_result::server_error: return "server_error";
    case poll_result::network_error: return "network_error";
    case poll_result::invalid_response: return "invalid_response";
    }
    return "unknown";
}

sys_ms next_poll_time(polling_config const& polling, std::optional<std::string> const& status,
                      sys_ms now, random_source& rng) {
    milliseconds interval = polling.interval;
    if (status) {
        if (auto it = polling.status_intervals.find(*status); it != polling.status_intervals.end())
            interval = it->second;
    }
    double const u = rng.next_unit();
    double const jitter = std::clamp(polling.jitter, 0.0, 1.0);
    double const spread = static_cast<double>(interval.count()) * (1.0 + jitter * (2.0 * u - 1.0));
    auto const ms = std::max<std::int64_t>(0, std::llround(spread));
    return now + milliseconds(ms);
}

poll_decision decide(watch_view const& view, watch_state const& state, http_outcome const& outcome,
                     sys_ms now, random_source& rng) {
    poll_decision d;
    d.state = state;

    if (!outcome) {
        auto const& f = outcome.error();
        switch (f.kind) {
        case failure_kind::network:
        case failure_kind::timeout:
            // Timeouts are network errors for the metric; the text keeps them apart.
            d.result = poll_result::network_error;
            d.error = to_text(f);
            back_off(view, d, now, rng);
            break;
        case failure_kind::invalid_response:
            invalid_response(view, d, std::nullopt, f.message, now, rng);
            break;
        }
    } else {
        auto const& reply = *outcome;
        int const code = reply.status;
        // Any other answer from the route ends its 429 streak.
        if (code != 429) d.state.rate_limited_streak = 0;
        if (code == 200) {
            body_seen const seen{reply.body.size(), siphash24(body_key, reply.body)};
            if (same_import(view, state, seen, now)) {
                succeed_unchanged(view, d, now, rng);
            } else if (auto snap = decode_import(reply.body)) {
                succeed(view, d, state, std::move(*snap), now, rng);
                d.state.body_size = static_cast<std::uint32_t>(seen.size);   // at most max_import_body
                d.state.body_hash = seen.hash;
            } else {
                invalid_response(view, d, code, snap.error(), now, rng);
            }
        } else if (code == 429) {
            // The process-wide gate saw the same reply and holds every request
            // until the pause ends. The gate's own streak restarts with every
            // other watch's 200, so a route that keeps answering 429 with
            // unusable headers also backs off on a streak of its own.
            d.result = poll_result::rate_limited;
            d.error = "HTTP 429 from LaunchDarkly (rate limited)";
            ++d.state.rate_limited_streak;
            d.next_poll = now + full_jitter(view.polling.backoff, d.state.rate_limited_streak - 1, rng);
        } else if (code >= 500 && code <= 599) {
            d.result = poll_result::server_error;
            d.error = "HTTP " + std::to_string(code) + " from LaunchDarkly";
            back_off(view, d, now, rng);
        } else if (code >= 400 && code <= 499) {
            auto message = error_message(reply, d.limits);
            d.result = poll_result::client_error;
            d.unauthorized = code == 401;
            d.error = "HTTP " + std::to_string(code) + " from LaunchDarkly: " + message;
            ++d.state.error_streak;
            apply_failure(view, d, watch_failure{failure_reason(code), code, std::move(message)}, now,
                          rng);
        } else {
            // 1xx, 2xx other than 200, 3xx (never followed) and nonsense codes.
            std::string detail = "HTTP " + std::to_string(code);
            if (code >= 300 && code <= 399)
                detail += " (redirects are not followed)";
            else
                detail += " (expected 200)";
            invalid_response(view, d, code, detail, now, rng);
        }
    }

    d.persist = persists(state, d);
    return d;
}

void carry_stored_import(poll_decision& d, std::string const& stored) {
    if (!d.carries_stored_import) return;
    carried_import carried(stored);
    put_import(d.events.at(*d.carries_stored_import), carried.get(d));
    d.carries_stored_import.reset();
}

poll_decision fail_watch(watch_view const& view, watch_state const& state, watch_failure failure,
                         sys_ms now, random_source& rng) {
    poll_decision d;
    d.state = state;
    d.result = poll_result::client_error;
    if (state.terminal()) {
        // A finished import is never polled again; there is nothing to fail.
        d.next_poll.reset();
        return d;
    }
    apply_failure(view, d, std::move(failure), now, rng);
    d.persist = persists(state, d);
    return d;
}

} // namespace importwatch::core
