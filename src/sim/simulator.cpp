#include "sim/simulator.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string_view>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/time.hpp"
#include "core/watch_key.hpp"
#include "net/http_server.hpp"
#include "sim/misbehaviour.hpp"

namespace importwatch::sim {

namespace {

namespace json = boost::json;
using std::chrono::steady_clock;
using std::chrono::system_clock;

// Big enough never to look like a limit to the daemon; they count down within
// a ten-second window like LaunchDarkly's, but never reach 0 on their own
// (remaining_zero and rate_limit faults do that on purpose).
constexpr std::int64_t global_limit = 5000;
constexpr std::int64_t route_limit = 500;
constexpr std::chrono::milliseconds limit_window{10'000};
constexpr std::size_t oversized_body = 2 * 1024 * 1024;

struct live_fault {
    fault spec;
    std::optional<std::uint64_t> remaining;   // count left; nullopt = unlimited
    std::uint64_t served = 0;                 // requests it applied to so far
};

// Faults that rewrite the Import body need an import to rewrite.
bool needs_import(fault_type t) {
    return t == fault_type::remaining_zero || t == fault_type::malformed || t == fault_type::oversized ||
           t == fault_type::unknown_status || t == fault_type::invalid_field || t == fault_type::flapping_files ||
           t == fault_type::invented_status;
}

std::int64_t epoch_ms(system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

core::sys_ms to_sys_ms(system_clock::time_point t) {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(t);
}

} // namespace

struct simulator::impl {
    scenario scenario_;
    simulator_options options_;
    std::unique_ptr<net::http_server> server_;
    std::optional<std::string> token_;
    std::vector<live_fault> global_faults_;
    std::map<std::string, std::pair<simulated_import const*, std::vector<live_fault>>> imports_;
    std::vector<request_record> requests_;
    std::uint64_t answered_ = 0;
    std::mt19937_64 fault_rng_;
    std::mt19937_64 id_rng_;
    steady_clock::time_point start_steady_ = steady_clock::now();
    system_clock::time_point start_wall_ = system_clock::now();
    std::int64_t window_index_ = -1;
    std::int64_t window_count_ = 0;
    bool started_ = false;

    impl(scenario sc, simulator_options options)
        : scenario_(std::move(sc)), options_(std::move(options)), token_(scenario_.token),
          fault_rng_(options_.seed), id_rng_(options_.seed ^ 0x9e3779b97f4a7c15ULL) {
        for (auto const& f : scenario_.faults) global_faults_.push_back({f, f.count});
        for (auto const& imp : scenario_.imports) {
            std::vector<live_fault> faults;
            for (auto const& f : imp.faults) faults.push_back({f, f.count});
            imports_.emplace(imp.path(), std::make_pair(&imp, std::move(faults)));
        }
    }

    // Scenario time: real time since start, scaled by speed.
    std::chrono::milliseconds scenario_time(steady_clock::time_point now) const {
        double const real_ms = std::chrono::duration<double, std::milli>(now - start_steady_).count();
        return std::chrono::milliseconds(static_cast<std::int64_t>(real_ms * options_.speed));
    }

    static import_step const& current_step(simulated_import const& imp, std::chrono::milliseconds t) {
        std::chrono::milliseconds end{0};
        for (std::size_t i = 0; i + 1 < imp.steps.size(); ++i) {
            end += imp.steps[i].duration;
            if (t < end) return imp.steps[i];
        }
        return imp.steps.back();
    }

    std::string request_id() {
        char buf[25];
        std::snprintf(buf, sizeof buf, "%016llx%08llx", static_cast<unsigned long long>(id_rng_()),
                      static_cast<unsigned long long>(id_rng_() & 0xffffffffULL));
        return buf;
    }

    net::server_reply json_reply(int status, std::string body) const {
        net::server_reply r;
        r.status = status;
        r.body = std::move(body);
        r.content_type = "application/json";
        return r;
    }

    net::server_reply error_reply(int status, std::string_view code, std::string_view message) {
        json::object o;
        o["code"] = code;
        o["message"] = message;
        o["id"] = request_id();
        return json_reply(status, json::serialize(o));
    }

    json::object import_json(simulated_import const& imp, import_step const& step) const {
        json::object o;
        o["id"] = imp.import_id;
        o["segmentKey"] = imp.segment;
        o["creationTime"] = epoch_ms(start_wall_);
        o["mode"] = imp.mode;
        o["status"] = step.status;
        if (!step.files.empty()) {
            json::array files;
            for (auto const& f : step.files) files.push_back(json::object{{"filename", f.filename}, {"status", f.status}});
            o["files"] = std::move(files);
        }
        auto const href = core::import_path({imp.project, imp.environment, imp.segment, imp.import_id});
        o["_links"] = json::object{{"self", json::object{{"href", href}, {"type", "application/json"}}}};
        return o;
    }

    // First fault that holds now: in its window, with count left, and lucky.
    live_fault* pick_fault(std::vector<live_fault>* import_faults, bool have_import, std::chrono::milliseconds t) {
        auto try_list = [&](std::vector<live_fault>& list) -> live_fault* {
            for (auto& lf : list) {
                auto const& f = lf.spec;
                if (t < f.from || (f.until && t >= *f.until)) continue;
                if (lf.remaining && *lf.remaining == 0) continue;
                if (!have_import && needs_import(f.type)) continue;
                if (f.probability < 1.0) {
                    double const draw = std::uniform_real_distribution<double>(0.0, 1.0)(fault_rng_);
                    if (draw >= f.probability) continue;
                }
                if (lf.remaining) --*lf.remaining;
                ++lf.served;
                return &lf;
            }
            return nullptr;
        };
        if (import_faults)
            if (auto f = try_list(*import_faults)) return f;
        return try_list(global_faults_);
    }

    void add_common_headers(net::server_reply& r, system_clock::time_point now) const {
        r.headers.emplace_back("Date", core::format_http_date(to_sys_ms(now)));
    }

    // The everyday rate-limit headers of a rate-limited LD route.
    void add_rate_limit_headers(net::server_reply& r, system_clock::time_point now, steady_clock::time_point steady_now,
                                bool route_zero, std::optional<std::chrono::milliseconds> reset_in) {
        auto const real = std::chrono::duration_cast<std::chrono::milliseconds>(steady_now - start_steady_);
        std::int64_t const index = real / limit_window;
        if (index != window_index_) window_index_ = index, window_count_ = 0;
        ++window_count_;
        auto const window_end = limit_window * (index + 1) - real;
        auto const reset = now + (reset_in ? *reset_in : window_end);
        r.headers.emplace_back("X-Ratelimit-Global-Remaining",
                               std::to_string(std::max<std::int64_t>(1, global_limit - window_count_)));
        r.headers.emplace_back("X-Ratelimit-Route-Remaining",
                               route_zero ? "0" : std::to_string(std::max<std::int64_t>(1, route_limit - window_count_)));
        r.headers.emplace_back("X-Ratelimit-Reset", std::to_string(epoch_ms(reset)));
    }

    planned_reply answer(net::server_request const& req, request_record& rec) {
        auto const now = system_clock::now();
        auto const steady_now = steady_clock::now();
        planned_reply r = respond(req, rec, now, steady_now);
        add_common_headers(r.reply, now);
        rec.status = r.cut == planned_reply::cut_t::reset ? 0 : r.reply.status;
        return r;
    }

    planned_reply respond(net::server_request const& req, request_record& rec, system_clock::time_point now,
                              steady_clock::time_point steady_now) {
        if (req.method != "GET") {
            auto r = error_reply(405, "method_not_allowed", "Method not allowed");
            r.headers.emplace_back("Allow", "GET");
            return r;
        }
        auto const key = core::key_of_import_path(req.target);
        if (!key) return error_reply(404, "not_found", "Invalid resource identifier");
        if (token_) {
            auto const* auth = req.header("authorization");
            if (!auth || *auth != *token_) return error_reply(401, "unauthorized", "Invalid access token");
        }

        auto const t = scenario_time(steady_now);
        auto it = imports_.find(key->path());
        bool const known = it != imports_.end();
        live_fault* live = pick_fault(known ? &it->second.second : nullptr, known, t);
        fault const* f = live ? &live->spec : nullptr;
        if (f) rec.fault = std::string(to_string(f->type));

        auto normal = [&](bool route_zero, std::optional<std::chrono::milliseconds> reset_in) {
            if (!known) return error_reply(404, "not_found", "Invalid resource identifier");
            auto const& imp = *it->second.first;
            auto r = json_reply(200, json::serialize(import_json(imp, current_step(imp, t))));
            add_rate_limit_headers(r, now, steady_now, route_zero, reset_in);
            return r;
        };
        if (!f) return normal(false, std::nullopt);

        switch (f->type) {
        case fault_type::rate_limit: {
            auto r = error_reply(429, "rate_limited", "You've exceeded the API rate limit. Try again later.");
            if (f->retry_after) {
                if (f->retry_after_date) {
                    // HTTP-dates have 1 s resolution: round up so it never undercuts.
                    auto const at = std::chrono::ceil<std::chrono::seconds>(now + *f->retry_after);
                    r.headers.emplace_back("Retry-After", core::format_http_date(to_sys_ms(at)));
                } else {
                    auto const secs = std::chrono::ceil<std::chrono::seconds>(*f->retry_after).count();
                    r.headers.emplace_back("Retry-After", std::to_string(secs));
                }
            }
            r.headers.emplace_back("X-Ratelimit-Global-Remaining", "0");
            if (f->reset_in) r.headers.emplace_back("X-Ratelimit-Reset", std::to_string(epoch_ms(now + *f->reset_in)));
            return r;
        }
        case fault_type::remaining_zero: return normal(true, f->reset_in);
        case fault_type::server_error: return error_reply(f->status, "internal_server_error", "Simulated server error");
        case fault_type::delay: {
            planned_reply r = normal(false, std::nullopt);
            r.delay = f->delay;
            return r;
        }
        case fault_type::reset: {
            planned_reply r;
            r.cut = planned_reply::cut_t::reset;
            return r;
        }
        case fault_type::truncate: {
            planned_reply r = normal(false, std::nullopt);
            r.cut = planned_reply::cut_t::truncate;
            return r;
        }
        case fault_type::malformed: {
            auto r = normal(false, std::nullopt);
            r.body.resize(r.body.size() / 2);   // cut mid-object: not JSON any more
            return r;
        }
        case fault_type::oversized: {
            auto const& imp = *it->second.first;
            auto o = import_json(imp, current_step(imp, t));
            o["padding"] = std::string(oversized_body, 'x');
            auto r = json_reply(200, json::serialize(o));
            add_rate_limit_headers(r, now, steady_now, false, std::nullopt);
            return r;
        }
        case fault_type::unknown_status:
        case fault_type::invalid_field: {
            auto const& imp = *it->second.first;
            auto o = import_json(imp, current_step(imp, t));
            if (f->type == fault_type::unknown_status)
                o["status"] = "mystery_status";
            else
                o["creationTime"] = std::to_string(epoch_ms(start_wall_));
            auto r = json_reply(200, json::serialize(o));
            add_rate_limit_headers(r, now, steady_now, false, std::nullopt);
            return r;
        }
        case fault_type::flapping_files:
        case fault_type::invented_status: {
            // A hostile or broken server: every file flips between two
            // statuses on every request, or the status is new and huge each time.
            auto const& imp = *it->second.first;
            auto o = import_json(imp, current_step(imp, t));
            if (f->type == fault_type::flapping_files) {
                json::array files;
                files.reserve(f->files);
                char const* status = live->served % 2 == 0 ? "pending" : "complete";
                char name[32];
                for (std::size_t i = 0; i < f->files; ++i) {
                    std::snprintf(name, sizeof name, "part-%05zu.csv", i);
                    files.push_back(json::object{{"filename", name}, {"status", status}});
                }
                o["files"] = std::move(files);
            } else {
                auto status = "status-" + std::to_string(live->served) + "-";
                status.resize(std::max(status.size(), f->length), 'x');
                o["status"] = std::move(status);
            }
            auto r = json_reply(200, json::serialize(o));
            add_rate_limit_headers(r, now, steady_now, false, std::nullopt);
            return r;
        }
        case fault_type::unauthorized: return error_reply(401, "unauthorized", "Invalid access token");
        case fault_type::forbidden:
            return error_reply(403, "forbidden", "Access to the requested resource was denied");
        case fault_type::not_found: return error_reply(404, "not_found", "Invalid resource identifier");
        case fault_type::bad_request: return error_reply(400, "invalid_request", "Invalid request");
        }
        return normal(false, std::nullopt);
    }

    static asio::awaitable<net::server_reply> serve(std::weak_ptr<impl> weak, net::server_request req) {
        planned_reply planned;
        {
            auto self = weak.lock();
            if (!self) {
                net::server_reply r;
                r.status = 503;
                r.close = true;
                co_return r;
            }
            request_record rec;
            rec.at = system_clock::now();
            rec.method = req.method;
            rec.target = req.target;
            planned = self->answer(req, rec);
            ++self->answered_;
            if (self->options_.record_requests) self->requests_.push_back(rec);
            if (self->options_.on_request) self->options_.on_request(rec);
        }
        // Late, cut or whole; the simulator may go away meanwhile.
        co_return co_await deliver(std::move(planned));
    }
};

simulator::simulator(asio::any_io_executor ex, scenario sc, simulator_options options)
    : impl_(std::make_shared<impl>(std::move(sc), std::move(options))) {
    net::server_options so;
    so.host = impl_->options_.host;
    so.port = impl_->options_.port;
    so.tls = impl_->options_.tls;
    std::weak_ptr<impl> weak = impl_;
    impl_->server_ = std::make_unique<net::http_server>(
        std::move(ex), std::move(so), [weak](net::server_request req) { return impl::serve(weak, std::move(req)); });
}

simulator::~simulator() { stop(); }

core::expected<void> simulator::start() {
    impl_->start_steady_ = steady_clock::now();
    impl_->start_wall_ = system_clock::now();
    auto started = impl_->server_->start();
    if (started) impl_->started_ = true;
    return started;
}

void simulator::stop() {
    if (impl_->started_) impl_->server_->stop();
    impl_->started_ = false;
}

std::uint16_t simulator::port() const { return impl_->server_->port(); }

std::string simulator::base_url() const {
    auto const& host = impl_->options_.host;
    auto const shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return std::string(impl_->options_.tls ? "https" : "http") + "://" + shown + ":" + std::to_string(port());
}

std::vector<request_record> const& simulator::requests() const { return impl_->requests_; }
std::uint64_t simulator::requests_answered() const { return impl_->answered_; }

void simulator::set_token(std::optional<std::string> token) { impl_->token_ = std::move(token); }

} // namespace importwatch::sim
