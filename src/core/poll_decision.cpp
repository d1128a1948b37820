#include "core/poll_decision.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/backoff.hpp"
#include "core/duration.hpp"
#include "core/import.hpp"

namespace importwatch::core {

namespace {

namespace json = boost::json;

// Error messages from LD's error bodies are echoed into events and logs; a
// hostile or broken server must not be able to make them arbitrarily long.
constexpr std::size_t max_message_length = 200;

std::string truncated(std::string_view s) {
    if (s.size() <= max_message_length) return std::string(s);
    std::size_t n = max_message_length;
    // Do not cut a UTF-8 sequence in half: back up to a lead byte.
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return std::string(s.substr(0, n)) + "…";
}

// Summaries and warnings become text log lines and carry strings the server
// chose (statuses, file names, error messages): a control character must not
// be able to start a forged line.
std::string printable(std::string s) {
    for (auto& c : s) {
        auto const b = static_cast<unsigned char>(c);
        if (b < 0x20 || b == 0x7f) c = ' ';
    }
    return s;
}

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
std::string error_message(http_reply const& reply) {
    if (reply.body.size() <= max_import_body) {
        boost::system::error_code ec;
        auto v = json::parse(reply.body, ec);
        if (!ec) {
            if (auto const* obj = v.if_object()) {
                if (auto const* m = obj->if_contains("message")) {
                    if (auto const* s = m->if_string(); s != nullptr && !s->empty())
                        return printable(truncated(std::string_view(s->data(), s->size())));
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

/// Builds the events of one decision, numbering them in emission order.
class event_writer {
public:
    event_writer(watch_view const& view, poll_decision& d, sys_ms now, random_source& rng)
        : view_(view), d_(d), now_(now), rng_(rng) {}

    void emit(std::optional<std::string> const& status, json::value const& import_json,
              std::string_view type, json::object extra, std::string_view what, log_level level) {
        std::string summary;
        summary.append(view_.watch.name).append(" ").append(what);
        summary.append(" (").append(view_.watch.key.path()).append(")");
        summary = printable(std::move(summary));
        event_subject subject{view_.watch, view_.base_url, status, import_json};
        d_.events.push_back(make_event(subject, type, ++d_.state.sequence, std::move(extra),
                                       std::move(summary), level, now_, rng_));
    }

private:
    watch_view const& view_;
    poll_decision& d_;
    sys_ms now_;
    random_source& rng_;
};

json::value nullable(std::optional<std::string> const& s) {
    if (s) return json::value(*s);
    return json::value(nullptr);
}

json::value stored_import(std::string const& import_json) {
    if (import_json.empty()) return nullptr;
    boost::system::error_code ec;
    auto v = json::parse(import_json, ec);
    if (ec) return nullptr;
    return v;
}

bool persisted_fields_differ(watch_state const& a, watch_state const& b) {
    return a.status != b.status || a.import_json != b.import_json || a.files != b.files ||
           a.status_since != b.status_since || a.sequence != b.sequence ||
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
        // No Import was received in this poll: events carry the last one stored.
        auto const import_json = stored_import(d.state.import_json);
        event_writer(view, d, now, rng)
            .emit(d.state.status, import_json, watch_failed_type, std::move(extra), what,
                  log_level::warn);
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
    d.error = "invalid response: " + detail;
    ++d.state.invalid_streak;
    back_off(view, d, now, rng);
    if (d.state.invalid_streak >= invalid_responses_to_fail)
        apply_failure(view, d, watch_failure{"invalid_response", http_status, truncated(detail)}, now,
                      rng);
}

void succeed(watch_view const& view, poll_decision& d, watch_state const& old, import_snapshot snap,
             sys_ms now, random_source& rng) {
    auto& st = d.state;
    d.result = poll_result::ok;
    st.error_streak = 0;
    st.invalid_streak = 0;

    std::optional<std::string> const status = snap.status;
    event_writer events(view, d, now, rng);

    if (old.failure) {
        events.emit(status, snap.json, watch_recovered_type, {}, "recovered", log_level::info);
        st.failure.reset();
    }

    bool const first = !old.status.has_value();
    bool const status_changed = first || *old.status != snap.status;
    bool const files_changed = snap.files != old.files;

    if (status_changed) {
        json::object extra;
        extra.emplace("previous_status", nullable(old.status));
        events.emit(status, snap.json, status_changed_type, std::move(extra),
                    "status " + old.status.value_or("none") + " -> " + snap.status,
                    log_level::info);
        st.status = snap.status;
        st.status_since = now;
        st.stall_reported = false;
    }

    // The first observation's files are in `import`; later, every new or
    // changed file is an event (in filename order); a vanished one is not.
    if (!first && files_changed) {
        auto old_it = old.files.begin();
        for (auto const& f : snap.files) {
            while (old_it != old.files.end() && old_it->filename < f.filename) ++old_it;
            std::optional<std::string> previous;
            if (old_it != old.files.end() && old_it->filename == f.filename) previous = old_it->status;
            if (previous == f.status) continue;
            json::object extra;
            extra.emplace("filename", f.filename);
            extra.emplace("previous_file_status", nullable(previous));
            extra.emplace("file_status", f.status);
            events.emit(status, snap.json, file_status_changed_type, std::move(extra),
                        "file " + f.filename + " " + previous.value_or("none") + " -> " + f.status,
                        log_level::info);
        }
    }

    auto const stall_after = view.polling.stall_after;
    if (!status_changed && !is_terminal(snap.status) && stall_after > milliseconds::zero() &&
        !st.stall_reported && now - st.status_since >= stall_after) {
        // stalled has no keys of its own (docs/events.md): how long is in the summary,
        // and status_since in the state (/v1/watches).
        auto const stalled_for = std::chrono::floor<std::chrono::seconds>(now - st.status_since);
        events.emit(status, snap.json, stalled_type, {},
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
    if (status_changed || files_changed || !d.events.empty() || st.import_json.empty())
        st.import_json = json::serialize(snap.json);

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
            d.error = (f.kind == failure_kind::timeout ? "timeout: " : "network: ") + f.message;
            back_off(view, d, now, rng);
            break;
        case failure_kind::invalid_response:
            invalid_response(view, d, std::nullopt, f.message, now, rng);
            break;
        }
    } else {
        auto const& reply = *outcome;
        int const code = reply.status;
        if (code == 200) {
            auto snap = decode_import(reply.body);
            if (snap)
                succeed(view, d, state, std::move(*snap), now, rng);
            else
                invalid_response(view, d, code, snap.error(), now, rng);
        } else if (code == 429) {
            // The process-wide gate saw the same reply and holds every request
            // until the pause ends; retrying "now" just queues behind it.
            d.result = poll_result::rate_limited;
            d.error = "HTTP 429 from LaunchDarkly (rate limited)";
            d.next_poll = now;
        } else if (code >= 500 && code <= 599) {
            d.result = poll_result::server_error;
            d.error = "HTTP " + std::to_string(code) + " from LaunchDarkly";
            back_off(view, d, now, rng);
        } else if (code >= 400 && code <= 499) {
            auto message = error_message(reply);
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

    d.persist = persisted_fields_differ(state, d.state);
    return d;
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
    d.persist = persisted_fields_differ(state, d.state);
    return d;
}

} // namespace importwatch::core
