#pragma once
// The simulated LaunchDarkly API as the whole-binary tests of `importwatch
// run` and `wait` use it (daemon_end_to_end, poll_failures, rate_limits,
// admin_and_reload): one self-contained fixture that owns its io_context,
// PKI, temp dir and simulator, so a test is one object, plus the config and
// log helpers those files share. The durability harness (daemon_harness)
// shares the simulator start-up and watch_entry from here; its simulated_api
// runs in the test's own io_context, so it is a separate type.
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/testing.hpp"
#include "sim/simulator.hpp"

namespace importwatch::testing {

/// The simulator for `scenario_yaml` in `ioc`, not yet started (so a test can
/// note the time just before scenario time begins). A bad scenario fails the test.
std::unique_ptr<sim::simulator> make_simulator(boost::asio::io_context& ioc, std::string const& scenario_yaml,
                                               sim::simulator_options options);
/// Starts `s` listening; a failure to listen fails the test.
void require_started(sim::simulator& s);

/// The simulator over TLS (or plain HTTP), its own io_context pumped by the
/// test while the importwatch binary runs as a child process.
struct simulated_launchdarkly {
    enum class transport { tls, plain };

    boost::asio::io_context ioc;
    test_pki pki;
    temp_dir dir;
    std::string ca_file;                              // the CA that signed the server's certificate
    std::unique_ptr<sim::simulator> server;
    std::chrono::system_clock::time_point started;   // just before the simulator's scenario time began
    /// Called for every request the simulator answered (set it any time).
    std::function<void(sim::request_record const&)> on_request;

    explicit simulated_launchdarkly(std::string const& scenario_yaml, transport t = transport::tls);

    /// What goes into a `run` config. Each string holds whole YAML lines;
    /// the defaults are what most tests want. Every member has an initializer
    /// so designated initializers may leave any out (-Wmissing-field-initializers).
    struct config_options {
        std::string watches = "";                              // the `watches` list items
        std::string credentials = "  token_env: SIM_TOKEN\n";  // or a token_file line
        std::string launchdarkly_extra = "";                   // more `launchdarkly` lines, e.g. max_connections
        std::string max_requests_per_second = "0";             // no cap: the interval alone paces polling
        std::string polling =
            "  interval: 200ms\n  jitter: 0\n  backoff: { initial: 100ms, max: 1s, multiplier: 2 }\n";
        std::string admin = "  listen: \"\"\n";                // no admin server unless a test wants one
        std::string extra = "";                                // top-level YAML placed before `watches`
    };
    /// A config pointing at this simulator (and, over TLS, its CA), state in dir/state.
    std::string config(config_options const& o) const;

    /// Pumps the simulator for `d`.
    void pump(std::chrono::milliseconds d);
    /// Pumps the simulator until the child exits; its exit code (nullopt on timeout).
    std::optional<int> serve_until_exit(child_process& p, std::chrono::milliseconds timeout = 60s);
    /// SIGTERM, pump until exit; the exit code (-1 on timeout).
    int stop(child_process& p, std::chrono::milliseconds timeout = 20s);

    /// The requests the simulator saw for `import_id`, in arrival order.
    std::vector<sim::request_record> requests_for(std::string const& import_id) const;
    /// Requests for `import_id` that arrived in [from, until) after `started`.
    std::size_t requests_between(std::string const& import_id, std::chrono::milliseconds from,
                                 std::chrono::milliseconds until) const;

private:
    transport transport_;
};

/// SIM_TOKEN (the simulator's scenarios' token) for the child process.
std::map<std::string, std::string> token_env();

/// The lines of `text` containing `needle`.
std::size_t count_lines(std::string const& text, std::string const& needle);

/// A `watches` list item for p/e/s/`import_id` named `name`.
std::string watch_entry(std::string const& name, std::string const& import_id);
/// ... named after its import.
std::string watch_entry(std::string const& import_id);

} // namespace importwatch::testing
