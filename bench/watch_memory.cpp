// Memory per watch: a daemon::poller configured with 100,000 watches (UUID
// import ids, one label), first fresh, then each starting from a stored state
// as the store loads it after a first poll: a status, one file, and that an
// Import is stored (its ~380-byte text stays in the store).
// Two readings each: RSS (/proc/self/statm, what the operator sees) and
// malloc's bytes in use (mallinfo2: in-use chunks + mmap()ed blocks, so
// exact and page-independent).
//
//   bench_watch_memory [watches]       (default 100000)
#include <malloc.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "daemon/metrics.hpp"
#include "daemon/poller.hpp"
#include "measure.hpp"

namespace importwatch::bench {
namespace {

struct reading {
    std::int64_t rss = rss_bytes();
    // Chunks in use plus mmap()ed ones (big vectors): all that malloc handed out.
    std::int64_t heap = [] {
        auto const m = mallinfo2();
        return static_cast<std::int64_t>(m.uordblks + m.hblkhd);
    }();
    allocation_totals allocs = allocations();
};

void print_delta(char const* what, reading const& a, reading const& b, std::size_t n) {
    auto const per = [n](std::int64_t d) { return static_cast<double>(d) / static_cast<double>(n); };
    std::printf("%-52s RSS %+8.1f MiB = %6.0f B/watch   heap in use %6.0f B/watch   %5.1f allocs/watch\n", what,
                static_cast<double>(b.rss - a.rss) / (1024.0 * 1024.0), per(b.rss - a.rss), per(b.heap - a.heap),
                per(static_cast<std::int64_t>(b.allocs.count - a.allocs.count)));
}

// Deterministic but UUID-shaped (36 characters, version-4 layout).
std::string uuid(std::uint64_t i) {
    std::uint64_t x = i * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<unsigned>(x >> 32),
                  static_cast<unsigned>(x >> 16) & 0xffff, static_cast<unsigned>(x) & 0xfff,
                  static_cast<unsigned>(x >> 20) & 0xfff, static_cast<unsigned long long>(x * 31) & 0xffffffffffffULL);
    return buf;
}

// A fleet spread over a few projects and environments, one segment per
// watch, a name, one label and the origin the config parser records.
std::vector<core::watch_config> make_watches(std::size_t n) {
    static char const* const projects[] = {"mobile-app", "web-storefront", "payments", "growth-experiments"};
    static char const* const environments[] = {"production", "staging", "development"};
    std::vector<core::watch_config> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        core::watch_config w;
        char segment[40];
        std::snprintf(segment, sizeof segment, "beta-testers-%06zu", i);
        w.key = {projects[i % 4], environments[i % 3], segment, uuid(i)};
        w.name = std::string(segment) + " nightly";
        w.labels = {{"team", "growth"}};
        w.origin = "watches.d/fleet.yaml:" + std::to_string(i * 7 + 3) + ":5";
        out.push_back(std::move(w));
    }
    return out;
}

// What the store hands back for a watch polled before: status, its file, and
// that an Import is stored (its text stays in the store: state_store::load_import).
core::watch_state stored_state(core::watch_config const& w) {
    core::watch_state s;
    s.status = "in_progress";
    auto const file = w.key.segment + "-2026-11-28.csv";
    s.files = {{file, "in_progress"}};
    s.has_import = true;
    s.status_since = core::sys_ms(std::chrono::milliseconds(1'764'358'640'123));
    s.sequence = 3;
    return s;
}

daemon::poller_settings settings() {
    daemon::poller_settings s;   // https://app.launchdarkly.com: nothing connects until run()
    s.token = "api-00000000-0000-0000-0000-000000000000";
    return s;
}

} // namespace
} // namespace importwatch::bench

int main(int argc, char** argv) {
    using namespace importwatch;
    using namespace importwatch::bench;
    std::size_t const n = argc > 1 ? static_cast<std::size_t>(std::atol(argv[1])) : 100'000;

    std::printf("%zu watches; sizeof: watch_slot %zu, watch_config %zu, watch_key %zu, watch_state %zu, "
                "import_file %zu, std::string %zu\n\n",
                n, sizeof(daemon::watch_slot), sizeof(core::watch_config), sizeof(core::watch_key),
                sizeof(core::watch_state), sizeof(core::import_file), sizeof(std::string));

    asio::io_context ioc;
    daemon::metrics counters;

    reading const r0;
    auto const configs = make_watches(n);
    reading const r1;
    print_delta("input: std::vector<watch_config> (engine keeps one)", r0, r1, n);

    // Fixed costs first (TLS context with the system CA store, client pool),
    // so the per-watch delta is only the watches.
    daemon::poller fresh(ioc.get_executor(), counters, nullptr, nullptr);
    (void)fresh.configure(settings(), {}, daemon::poller::nothing_stored);
    reading const r2;
    std::printf("%-52s RSS %+8.1f MiB\n", "fixed: poller + TLS context, no watches", double(r2.rss - r1.rss) / 1048576.0);
    if (auto r = fresh.configure(settings(), configs, daemon::poller::nothing_stored); !r) {
        std::fprintf(stderr, "configure: %s\n", r.error().c_str());
        return 1;
    }
    reading const r3;
    print_delta("poller.configure, fresh watches (no import yet)", r2, r3, n);

    std::map<std::string, core::watch_state> stored;
    for (auto const& w : configs) stored.emplace(w.key.path(), stored_state(w));
    reading const r4;
    print_delta("input: stored map (path -> watch_state, 1 file)", r3, r4, n);

    daemon::poller restored(ioc.get_executor(), counters, nullptr, nullptr);
    (void)restored.configure(settings(), {}, daemon::poller::nothing_stored);
    reading const r5;
    if (auto r = restored.configure(settings(), configs, [&](std::vector<std::string> const&) { return stored; }); !r) {
        std::fprintf(stderr, "configure: %s\n", r.error().c_str());
        return 1;
    }
    reading const r6;
    print_delta("poller.configure, each from a stored state", r5, r6, n);

    std::printf("\nper watch in a running daemon (config copy kept by the engine + poller slot):\n");
    std::printf("  fresh: %.0f B heap (%.0f B RSS);  after first poll: %.0f B heap (%.0f B RSS);  target < 1024 B\n",
                double((r1.heap - r0.heap) + (r3.heap - r2.heap)) / double(n),
                double((r1.rss - r0.rss) + (r3.rss - r2.rss)) / double(n),
                double((r1.heap - r0.heap) + (r6.heap - r5.heap)) / double(n),
                double((r1.rss - r0.rss) + (r6.rss - r5.rss)) / double(n));
    std::printf("  peak RSS of this run (VmHWM): %.1f MiB\n", double(proc_status_bytes("VmHWM")) / 1048576.0);
    return 0;
}
