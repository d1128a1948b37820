// CPU per core::decide (and its parts) for the steady-state poll: a 200 whose
// Import has not changed. The hot path is "one JSON parse, compare with the
// stored state"; this prints what that costs, without any I/O.
//
//   bench_decide_cost [iterations]      (default 200000)
#include <boost/json/parse.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "core/import.hpp"
#include "core/poll_decision.hpp"
#include "measure.hpp"

namespace importwatch::bench {
namespace {

using namespace std::chrono_literals;

// What the simulator (and LaunchDarkly) send for one import with one file:
// 384 bytes, the size the memory target assumes too.
std::string import_body(std::string const& status) {
    return R"({"id":"6f0c2a8e-3b1d-4c57-9a0e-2d6b8f41c9e3","segmentKey":"beta-testers-eu",)"
           R"("creationTime":1764358640123,"mode":"replace","status":")" +
           status +
           R"(","files":[{"filename":"beta-testers-eu-2026-11-28.csv","status":")" + status +
           R"("}],"_links":{"self":{"href":"/api/v2/segments/mobile-app/production/beta-testers-eu/)"
           R"(imports/6f0c2a8e-3b1d-4c57-9a0e-2d6b8f41c9e3","type":"application/json"}}})";
}

core::http_outcome ok_reply(std::string body) {
    core::http_reply r;
    r.status = 200;
    r.headers = {{"Date", "Sat, 28 Nov 2026 19:37:20 GMT"},
                 {"X-Ratelimit-Reset", "1764358650000"},
                 {"X-Ratelimit-Global-Remaining", "4990"},
                 {"X-Ratelimit-Route-Remaining", "490"}};
    r.body = std::move(body);
    return r;
}

void run(char const* name, long iterations, std::function<void()> const& body) {
    for (long i = 0; i < iterations / 10; ++i) body();   // warm caches and malloc's free lists
    sample const a;
    for (long i = 0; i < iterations; ++i) body();
    sample const b;
    auto const n = static_cast<double>(iterations);
    std::printf("%-44s %9.0f ns wall  %9.0f ns cpu  %6.1f allocs  %7.0f bytes alloc'd  (per call)\n", name,
                std::chrono::duration<double, std::nano>(b.wall - a.wall).count() / n,
                std::chrono::duration<double, std::nano>(b.cpu - a.cpu).count() / n,
                static_cast<double>(b.heap.count - a.heap.count) / n,
                static_cast<double>(b.heap.bytes - a.heap.bytes) / n);
}

} // namespace
} // namespace importwatch::bench

int main(int argc, char** argv) {
    using namespace importwatch;
    using namespace importwatch::bench;
    long const iterations = argc > 1 ? std::atol(argv[1]) : 200'000;

    core::watch_config watch;
    watch.key = {"mobile-app", "production", "beta-testers-eu", "6f0c2a8e-3b1d-4c57-9a0e-2d6b8f41c9e3"};
    watch.name = "beta-testers-eu nightly";
    watch.labels = {{"team", "growth"}};
    core::polling_config polling;   // defaults: 30 s, jitter 0.1, stall after 6 h
    std::string const base_url = "https://app.launchdarkly.com";
    core::watch_view const view{watch, polling, base_url};
    core::prng rng(42);
    auto const now = core::sys_ms(std::chrono::milliseconds(1'764'358'640'123));

    auto const unchanged = ok_reply(import_body("in_progress"));
    // The state after a first poll saw this Import: status, files and JSON stored.
    auto const steady = core::decide(view, core::watch_state{}, unchanged, now, rng).state;
    auto const before_change = core::decide(view, core::watch_state{}, ok_reply(import_body("preparing")), now, rng).state;

    std::printf("import body: %zu bytes; iterations: %ld\n", unchanged->body.size(), iterations);
    {
        auto check = core::decide(view, steady, unchanged, now + 1s, rng);
        auto change = core::decide(view, before_change, unchanged, now + 1s, rng);
        std::printf("sanity: unchanged -> %zu events, persist=%d; change -> %zu events, persist=%d\n\n",
                    check.events.size(), int(check.persist), change.events.size(), int(change.persist));
    }

    std::int64_t t = 0;
    run("decide, 200 unchanged (steady state)", iterations, [&] {
        auto d = core::decide(view, steady, unchanged, now + std::chrono::milliseconds(++t), rng);
        keep(d.next_poll);
    });
    run("decide, 200 status+file change (2 events)", iterations / 4, [&] {
        auto d = core::decide(view, before_change, unchanged, now + std::chrono::milliseconds(++t), rng);
        keep(d.events.size());
    });
    std::printf("\nparts of the unchanged case:\n");
    run("  decode_import (parse + field checks)", iterations, [&] {
        auto s = core::decode_import(unchanged->body);
        keep(s->status.size());
    });
    run("  boost::json::parse alone", iterations, [&] {
        boost::system::error_code ec;
        auto v = boost::json::parse(unchanged->body, ec);
        keep(v.is_object());
    });
    run("  watch_state copy (decide's d.state = state)", iterations, [&] {
        core::watch_state copy = steady;
        keep(copy.files.size());
    });
    std::printf("\nper-poll extras outside decide (poller.cpp):\n");
    run("  watch_key::path() (apply's throttle_key)", iterations, [&] {
        auto p = watch.key.path();
        keep(p.size());
    });
    run("  http_reply copy (6 headers + body)", iterations, [&] {
        core::http_outcome copy = unchanged;
        keep(copy->body.size());
    });
    return 0;
}
