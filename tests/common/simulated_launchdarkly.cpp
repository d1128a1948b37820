#include "common/simulated_launchdarkly.hpp"

#include <csignal>
#include <sstream>
#include <utility>

#include <boost/test/unit_test.hpp>

namespace importwatch::testing {

std::unique_ptr<sim::simulator> make_simulator(boost::asio::io_context& ioc, std::string const& scenario_yaml,
                                               sim::simulator_options options) {
    auto sc = sim::parse_scenario(scenario_yaml, "test-scenario.yaml");
    BOOST_REQUIRE_MESSAGE(sc, (sc ? "" : sc.error()));
    return std::make_unique<sim::simulator>(ioc.get_executor(), *sc, std::move(options));
}

void require_started(sim::simulator& s) {
    auto started = s.start();
    BOOST_REQUIRE_MESSAGE(started, (started ? "" : started.error()));
}

simulated_launchdarkly::simulated_launchdarkly(std::string const& scenario_yaml, transport t) : transport_(t) {
    ca_file = pki.write_files(dir);
    sim::simulator_options o;
    if (t == transport::tls) o.tls = pki.server_context();
    // Forwards to the member so a test can set on_request after construction.
    o.on_request = [this](sim::request_record const& r) {
        if (on_request) on_request(r);
    };
    server = make_simulator(ioc, scenario_yaml, std::move(o));
    started = std::chrono::system_clock::now();
    require_started(*server);
}

std::string simulated_launchdarkly::config(config_options const& o) const {
    std::string c = "launchdarkly:\n  base_url: " + server->base_url() + "\n";
    // Over plain HTTP there is no CA to name.
    if (transport_ == transport::tls) c += "  ca_file: " + ca_file + "\n";
    c += o.credentials + o.launchdarkly_extra + "  max_requests_per_second: " + o.max_requests_per_second + "\n";
    c += "polling:\n" + o.polling;
    c += "state:\n  dir: " + (dir.path() / "state").string() + "\n";
    c += "admin:\n" + o.admin;
    c += o.extra;
    c += "watches:\n" + o.watches;
    return c;
}

void simulated_launchdarkly::pump(std::chrono::milliseconds d) {
    run_until(ioc, [] { return false; }, d);
}

std::optional<int> simulated_launchdarkly::serve_until_exit(child_process& p, std::chrono::milliseconds timeout) {
    run_until(ioc, [&] { return !p.running(); }, timeout);
    return p.wait(0ms);
}

int simulated_launchdarkly::stop(child_process& p, std::chrono::milliseconds timeout) {
    p.signal(SIGTERM);
    return serve_until_exit(p, timeout).value_or(-1);
}

std::vector<sim::request_record> simulated_launchdarkly::requests_for(std::string const& import_id) const {
    std::vector<sim::request_record> out;
    for (auto const& r : server->requests())
        if (r.target.ends_with("/imports/" + import_id)) out.push_back(r);
    return out;
}

std::size_t simulated_launchdarkly::requests_between(std::string const& import_id, std::chrono::milliseconds from,
                                                     std::chrono::milliseconds until) const {
    std::size_t n = 0;
    for (auto const& r : requests_for(import_id))
        if (r.at >= started + from && r.at < started + until) ++n;
    return n;
}

std::map<std::string, std::string> token_env() { return {{"SIM_TOKEN", "sim-token"}}; }

std::size_t count_lines(std::string const& text, std::string const& needle) {
    std::size_t n = 0;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l.find(needle) != std::string::npos) ++n;
    return n;
}

std::string watch_entry(std::string const& name, std::string const& import_id) {
    return "  - { name: " + name + ", project: p, environment: e, segment: s, import_id: " + import_id + " }\n";
}

std::string watch_entry(std::string const& import_id) { return watch_entry(import_id, import_id); }

} // namespace importwatch::testing
