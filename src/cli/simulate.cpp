// `importwatch simulate`: the simulated LaunchDarkly API as a standalone server.
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "core/time.hpp"
#include "daemon/bounded_file.hpp"
#include "cli/commands.hpp"
#include "net/tls.hpp"
#include "sim/scenario.hpp"
#include "sim/simulator.hpp"

namespace importwatch::cli {

namespace {

struct listen_address {
    std::string host;
    std::uint16_t port = 0;
};

// HOST:PORT, with IPv6 hosts in brackets ([::1]:8080).
std::optional<listen_address> parse_listen(std::string_view text) {
    auto const colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    auto host = text.substr(0, colon);
    auto const port_text = text.substr(colon + 1);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') return std::nullopt;
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        return std::nullopt;   // a bare IPv6 address is ambiguous
    }
    unsigned value = 0;
    auto const [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || value > 65535)
        return std::nullopt;
    return listen_address{std::string(host), static_cast<std::uint16_t>(value)};
}

} // namespace

int simulate_command(simulate_options const& options) {
    // A scenario is a config-sized YAML file, read the same bounded way.
    auto const text = daemon::read_bounded_file(options.scenario_file, daemon::max_config_file_bytes);
    if (!text) {
        std::cerr << "importwatch: " << options.scenario_file << ": cannot read the scenario file: "
                  << text.error().message << "\n";
        return exit_usage;
    }
    auto sc = sim::parse_scenario(*text, options.scenario_file);
    if (!sc) {
        std::cerr << "importwatch: " << sc.error() << "\n";
        return exit_usage;
    }
    auto const address = parse_listen(options.listen);
    if (!address) {
        std::cerr << "importwatch: --listen: expected HOST:PORT, got \"" << options.listen << "\"\n";
        return exit_usage;
    }
    if (options.tls_cert.has_value() != options.tls_key.has_value()) {
        std::cerr << "importwatch: --tls-cert and --tls-key go together\n";
        return exit_usage;
    }

    sim::simulator_options so;
    so.host = address->host;
    so.port = address->port;
    if (options.tls_cert) {
        auto ctx = net::make_server_context(*options.tls_cert, *options.tls_key);
        if (!ctx) {
            std::cerr << "importwatch: " << ctx.error() << "\n";
            return exit_usage;
        }
        so.tls = *ctx;
    }
    // It may run for days: log each request, keep none.
    so.record_requests = false;
    so.on_request = [](sim::request_record const& r) {
        auto const at = core::format_rfc3339(std::chrono::time_point_cast<std::chrono::milliseconds>(r.at));
        // One write per line: std::cerr is unbuffered.
        std::string line = at + " " + r.method + " " + r.target + " -> " +
                           (r.status == 0 ? std::string("reset") : std::to_string(r.status)) +
                           (r.fault.empty() ? "" : " (fault " + r.fault + ")") + "\n";
        std::cerr << line << std::flush;
    };

    asio::io_context ioc;
    auto const import_count = sc->imports.size();
    sim::simulator simulator(ioc.get_executor(), std::move(*sc), std::move(so));
    if (auto started = simulator.start(); !started) {
        std::cerr << "importwatch: " << started.error() << "\n";
        return exit_failure;
    }
    std::cout << "simulating LaunchDarkly on " << simulator.base_url() << " (" << import_count
              << " imports)" << std::endl;

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code const& ec, int) {
        if (ec) return;
        simulator.stop();
        ioc.stop();
    });
    ioc.run();
    return exit_ok;
}

} // namespace importwatch::cli
