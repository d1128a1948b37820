#pragma once
// The simulated LaunchDarkly API: serves GET /api/v2/segments/{p}/{e}/{s}/imports/{id}
// from a scenario, with LaunchDarkly's error bodies, and injects faults.
// Records every request so tests can assert what the server saw.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "net/asio.hpp"
#include "net/tls.hpp"
#include "sim/scenario.hpp"

namespace importwatch::sim {

struct request_record {
    std::chrono::system_clock::time_point at;
    std::string method;
    std::string target;
    int status = 0;               // what was answered (0 for reset)
    std::string fault;            // the injected fault's type, "" when none
};

struct simulator_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::shared_ptr<net::ssl::context> tls;     // null = plain HTTP
    double speed = 1.0;                         // scenario time runs this many times faster
    std::uint64_t seed = 1;                     // for fault probabilities
    /// Called once per request, after it was answered (simulate logs them).
    std::function<void(request_record const&)> on_request;
    /// Keep every request for requests() (tests). Off for long-running use:
    /// the list would grow without bound.
    bool record_requests = true;
};

class simulator {
public:
    simulator(asio::any_io_executor ex, scenario sc, simulator_options options);
    ~simulator();
    simulator(simulator const&) = delete;
    simulator& operator=(simulator const&) = delete;

    core::expected<void> start();
    void stop();
    std::uint16_t port() const;
    /// "http(s)://127.0.0.1:PORT"
    std::string base_url() const;

    /// Every request so far, in arrival order (empty unless record_requests).
    std::vector<request_record> const& requests() const;
    /// How many requests were answered so far (always counted).
    std::uint64_t requests_answered() const;
    /// Replaces the accepted token (tests: 401 then a valid token).
    void set_token(std::optional<std::string> token);

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace importwatch::sim
