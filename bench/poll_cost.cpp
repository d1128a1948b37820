// CPU per poll end to end: daemon::poller against the built-in simulator over
// plain HTTP keep-alive on 127.0.0.1, every import in a status that never ends,
// interval 0 (each watch is due again at once), no client-side rate cap,
// max_connections 2. Nothing is stored (commit succeeds without a store) and
// nothing is published, so this is the steady-state hot path.
//
// Two runs:
//  1. in-process: simulator and poller on one io_context thread. The CPU per
//     poll is client + server together.
//  2. split: the simulator runs as `importwatch simulate` in a child process;
//     this process's CPU per poll is then the poller's own, and the child's
//     CPU (from /proc/PID/stat) is the simulator's (which also writes one log
//     line per request to its stderr, sent to /dev/null here).
//
//   bench_poll_cost [--imports N] [--seconds S] [--connections C] [--mode both|inproc|child]
//                   [--importwatch PATH]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/metrics.hpp"
#include "daemon/poller.hpp"
#include "daemon/spawn.hpp"
#include "measure.hpp"
#include "sim/scenario.hpp"
#include "sim/simulator.hpp"

extern char** environ;

namespace importwatch::bench {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

struct options {
    int imports = 100;
    int seconds = 5;
    int connections = 2;
    std::string mode = "both";
    std::string importwatch = IMPORTWATCH_BINARY;
};

std::string const token = "sim-token";

// Deterministic UUID-shaped import ids: realistic lengths, reproducible runs.
std::string import_id(int i) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "6f0c2a8e-3b1d-4c57-9a0e-%012x", static_cast<unsigned>(i) * 2654435761u);
    return buf;
}

std::string segment(int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "beta-testers-%05d", i);
    return buf;
}

// Every import stays in_progress forever (a single step lasts forever), with
// one file, so each 200 body is ~380 bytes like a real one and never changes.
std::string scenario_yaml(int imports) {
    std::string y = "token: " + token + "\nimports:\n";
    for (int i = 0; i < imports; ++i) {
        y += "  - project: mobile-app\n    environment: production\n    segment: " + segment(i) +
             "\n    import_id: " + import_id(i) + "\n    mode: replace\n    steps:\n      - { status: in_progress, " +
             "files: [{filename: " + segment(i) + "-2026-11-28.csv, status: in_progress}] }\n";
    }
    return y;
}

std::vector<core::watch_config> watches(int imports) {
    std::vector<core::watch_config> out;
    for (int i = 0; i < imports; ++i) {
        core::watch_config w;
        w.key = {"mobile-app", "production", segment(i), import_id(i)};
        w.name = segment(i) + " nightly";
        w.labels = {{"team", "growth"}};
        out.push_back(std::move(w));
    }
    return out;
}

struct figures {
    std::uint64_t polls_ok = 0;
    std::uint64_t polls_other = 0;   // anything but ok: a broken benchmark, not a figure
    std::uint64_t commits = 0;
    double wall_s = 0;
    nanoseconds cpu{0};
    nanoseconds sys{0};              // the kernel's part of cpu
    nanoseconds peer_cpu{0};         // the child simulator's CPU (split run)
    allocation_totals heap;
};

/// Runs a poller against `base_url` for a warm-up and then the measured window.
/// `peer_cpu` reads the simulator's CPU when it is another process.
figures measure_poller(asio::io_context& ioc, std::string const& base_url, options const& o,
                       std::function<nanoseconds()> const& peer_cpu) {
    daemon::metrics counters;
    std::uint64_t commits = 0;
    daemon::poller poller(
        ioc.get_executor(), counters,
        [&commits](daemon::watch_slot const&, core::poll_decision const&) -> asio::awaitable<core::expected<void>> {
            ++commits;   // no store: a steady-state poll should not get here at all
            co_return core::expected<void>{};
        },
        [](daemon::watch_slot const&, std::vector<core::event> const&) {});
    daemon::poller_settings settings;
    settings.launchdarkly.base_url = base_url;
    settings.launchdarkly.max_requests_per_second = 0;
    settings.launchdarkly.max_connections = o.connections;
    settings.polling.interval = 0ms;
    settings.token = token;
    if (auto r = poller.configure(settings, watches(o.imports), daemon::poller::nothing_stored); !r) {
        std::fprintf(stderr, "configure: %s\n", r.error().c_str());
        std::exit(1);
    }
    asio::co_spawn(ioc, poller.run(), daemon::log_on_failure("poller"));

    // Warm-up: first polls see a new status (events, commits), connections open.
    ioc.run_for(1s);
    auto const total = [&counters] {
        std::uint64_t n = 0;
        for (auto c : counters.polls) n += c;
        return n;
    };
    std::uint64_t const ok0 = counters.polls[0], all0 = total(), commits0 = commits;
    nanoseconds const peer0 = peer_cpu();
    sample const a;
    ioc.run_for(std::chrono::seconds(o.seconds));
    sample const b;
    nanoseconds const peer1 = peer_cpu();

    figures f;
    f.polls_ok = counters.polls[0] - ok0;
    f.polls_other = total() - all0 - f.polls_ok;
    f.commits = commits - commits0;
    f.wall_s = std::chrono::duration<double>(b.wall - a.wall).count();
    f.cpu = b.cpu - a.cpu;
    f.sys = b.sys - a.sys;
    f.peer_cpu = peer1 - peer0;
    f.heap = {b.heap.count - a.heap.count, b.heap.bytes - a.heap.bytes};

    poller.stop();
    ioc.run_for(200ms);   // let the abandoned polls unwind
    return f;
}

void print(char const* title, figures const& f, bool with_peer) {
    double const polls = static_cast<double>(f.polls_ok);
    auto const per_poll_us = [&](nanoseconds t) { return polls > 0 ? std::chrono::duration<double, std::micro>(t).count() / polls : 0.0; };
    std::printf("%s\n", title);
    std::printf("  polls ok               %llu in %.2f s wall (%.0f polls/s); other results %llu; commits %llu\n",
                static_cast<unsigned long long>(f.polls_ok), f.wall_s, polls / f.wall_s,
                static_cast<unsigned long long>(f.polls_other), static_cast<unsigned long long>(f.commits));
    std::printf("  CPU of this process    %.3f s = %.1f us per poll (user %.1f + kernel %.1f)\n",
                std::chrono::duration<double>(f.cpu).count(), per_poll_us(f.cpu), per_poll_us(f.cpu - f.sys),
                per_poll_us(f.sys));
    std::printf("  allocations            %.1f per poll, %.0f bytes per poll (this process)\n",
                polls > 0 ? static_cast<double>(f.heap.count) / polls : 0.0,
                polls > 0 ? static_cast<double>(f.heap.bytes) / polls : 0.0);
    if (with_peer)
        std::printf("  CPU of the simulator   %.3f s = %.1f us per poll (child process, incl. its log line)\n",
                    std::chrono::duration<double>(f.peer_cpu).count(), per_poll_us(f.peer_cpu));
}

figures run_in_process(options const& o) {
    auto sc = sim::parse_scenario(scenario_yaml(o.imports), "bench.yaml");
    if (!sc) {
        std::fprintf(stderr, "scenario: %s\n", sc.error().c_str());
        std::exit(1);
    }
    asio::io_context ioc;
    sim::simulator_options so;   // 127.0.0.1, port 0, plain HTTP
    sim::simulator simulator(ioc.get_executor(), std::move(*sc), so);
    if (auto r = simulator.start(); !r) {
        std::fprintf(stderr, "simulator: %s\n", r.error().c_str());
        std::exit(1);
    }
    auto f = measure_poller(ioc, simulator.base_url(), o, [] { return nanoseconds(0); });
    simulator.stop();
    ioc.run_for(100ms);
    return f;
}

// utime + stime of another process, from /proc/PID/stat (clock ticks).
nanoseconds process_cpu(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto const close = text.rfind(')');   // the command name may contain spaces
    if (close == std::string::npos) return nanoseconds(0);
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    auto const ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    return nanoseconds(static_cast<long long>(static_cast<double>(utime + stime) / ticks * 1e9));
}

figures run_split(options const& o) {
    char path[] = "/tmp/importwatch-bench-XXXXXX.yaml";
    int const fd = mkstemps(path, 5);
    if (fd < 0) {
        std::perror("mkstemps");
        std::exit(1);
    }
    auto const yaml = scenario_yaml(o.imports);
    if (write(fd, yaml.data(), yaml.size()) != static_cast<ssize_t>(yaml.size())) std::exit(1);
    close(fd);

    int out[2];
    if (pipe(out) != 0) std::exit(1);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    std::vector<std::string> args{o.importwatch, "simulate", "--listen", "127.0.0.1:0", "--scenario", path};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t child = 0;
    if (int e = posix_spawn(&child, o.importwatch.c_str(), &actions, nullptr, argv.data(), environ); e != 0) {
        std::fprintf(stderr, "cannot start %s: %s\n", o.importwatch.c_str(), std::strerror(e));
        std::exit(1);
    }
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);

    // "simulating LaunchDarkly on http://127.0.0.1:PORT (N imports)": the
    // port 0 it bound is in the announced URL.
    std::string line;
    char c = 0;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    auto const at = line.find("http://");
    if (at == std::string::npos) {
        std::fprintf(stderr, "simulator did not start: \"%s\"\n", line.c_str());
        kill(child, SIGTERM);
        std::exit(1);
    }
    auto const base_url = line.substr(at, line.find(' ', at) - at);

    asio::io_context ioc;
    auto f = measure_poller(ioc, base_url, o, [child] { return process_cpu(child); });

    kill(child, SIGTERM);
    waitpid(child, nullptr, 0);
    close(out[0]);
    unlink(path);
    return f;
}

} // namespace
} // namespace importwatch::bench

int main(int argc, char** argv) {
    using namespace importwatch::bench;
    options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string const flag = argv[i];
        if (flag == "--imports") o.imports = std::atoi(argv[i + 1]);
        else if (flag == "--seconds") o.seconds = std::atoi(argv[i + 1]);
        else if (flag == "--connections") o.connections = std::atoi(argv[i + 1]);
        else if (flag == "--mode") o.mode = argv[i + 1];
        else if (flag == "--importwatch") o.importwatch = argv[i + 1];
        else {
            std::fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    std::printf("%d imports (in_progress forever), interval 0s, no rate cap, max_connections %d, %d s measured "
                "after 1 s warm-up; plain HTTP keep-alive on 127.0.0.1\n\n",
                o.imports, o.connections, o.seconds);

    figures inproc, split;
    if (o.mode == "both" || o.mode == "inproc") {
        inproc = run_in_process(o);
        print("1. poller + simulator in one process, one thread (client AND server CPU):", inproc, false);
    }
    if (o.mode == "both" || o.mode == "child") {
        split = run_split(o);
        print("2. poller here, `importwatch simulate` in a child process (client CPU only):", split, true);
    }
    if (o.mode == "both" && inproc.polls_ok > 0 && split.polls_ok > 0) {
        auto const us = [](std::chrono::nanoseconds t, std::uint64_t n) {
            return std::chrono::duration<double, std::micro>(t).count() / static_cast<double>(n);
        };
        std::printf("\nsummary (CPU per poll): poller alone %.1f us; in-process simulator ~%.1f us "
                    "(run 1 minus poller alone); target for the poller: ~20 us\n",
                    us(split.cpu, split.polls_ok), us(inproc.cpu, inproc.polls_ok) - us(split.cpu, split.polls_ok));
    }
    return 0;
}
