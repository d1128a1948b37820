// The admin server's request handling without a socket: bytes as a client
// sends them, read as a connection reads them (limits, pipelining, refusals),
// each request answered by the admin router of an engine that has a config
// but is never run (no polls, no deliveries: nothing but the answers).
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "core/config_parser.hpp"
#include "daemon/admin_server.hpp"
#include "daemon/engine.hpp"
#include "fuzz_check.hpp"
#include "net/http_server.hpp"
#include "store/state_store.hpp"

using namespace importwatch;

namespace {

constexpr char const* config_yaml = R"(launchdarkly:
  base_url: http://127.0.0.1:9
  token_env: FUZZ_TOKEN
watches:
  - { name: vip, project: default, environment: production, segment: vip-users, import_id: imp-1 }
  - { name: "odd \"name\" \\ \u00e9", project: default, environment: staging, segment: vip-users, import_id: imp-2 }
events:
  webhooks:
    - { name: ops, url: "http://127.0.0.1:9/hook" }
admin:
  listen: 127.0.0.1:0
  enable_reload: true
)";

// The state directory, removed at exit.
std::string& state_dir() {
    static std::string dir;
    return dir;
}

struct fixture {
    asio::io_context io;
    std::unique_ptr<daemon::engine> engine;
    std::unique_ptr<daemon::admin_server> admin;
    bool reload_ok = false;

    fixture() {
        char dir_template[] = "/tmp/importwatch-fuzz-admin-XXXXXX";
        char* dir = ::mkdtemp(dir_template);
        FUZZ_CHECK(dir != nullptr);
        state_dir() = dir;
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(state_dir(), ignored);
        });
        auto store = store::state_store::open(dir, store::open_mode::daemon);
        FUZZ_CHECK(store.has_value());
        engine = std::make_unique<daemon::engine>(io.get_executor(), std::move(*store));
        auto cfg = core::parse_config(config_yaml, "fuzz.yaml", [](std::string const&) {
            return std::optional<std::string>{};
        });
        if (!cfg) std::fprintf(stderr, "%s\n", cfg.error().c_str());
        FUZZ_CHECK(cfg.has_value());
        daemon::secrets s;
        s.api_token = "fuzz-token";
        // Starting spawns the poller and the dispatcher; the io_context never runs them.
        FUZZ_CHECK(engine->start(*cfg, s).has_value());
        admin = std::make_unique<daemon::admin_server>(
            io.get_executor(), *engine, [this]() -> asio::awaitable<core::expected<void>> {
                reload_ok = !reload_ok;
                if (reload_ok) co_return core::expected<void>{};
                co_return core::fail("fuzz.yaml:1:1: launchdarkly: invalid");
            });
        admin->set_ready(true);
        admin->set_reload_enabled(true);
    }
};

// Built once and never destroyed: the harness runs until the process ends.
fixture& shared() {
    static fixture* f = new fixture();
    return *f;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto& f = shared();
    auto const received = net::parse_requests(fuzz::as_text(data, size), daemon::admin_max_request_body);
    FUZZ_CHECK(received.refused == 0 || received.refused == 400 || received.refused == 413 ||
               received.refused == 431);
    for (auto const& req : received.requests) {
        FUZZ_CHECK(req.body.size() <= daemon::admin_max_request_body);
        // A separate io_context: the fixture's would run the poller.
        asio::io_context once;
        std::optional<net::server_reply> answered;
        asio::co_spawn(once, f.admin->handle(req), [&](std::exception_ptr e, net::server_reply r) {
            if (e) std::rethrow_exception(e);
            answered = std::move(r);
        });
        once.run();
        FUZZ_CHECK(answered.has_value());
        auto const& reply = *answered;
        switch (reply.status) {
        case 200: case 400: case 403: case 404: case 503: break;
        case 405: FUZZ_CHECK(!reply.headers.empty()); break;
        default: FUZZ_CHECK(false);
        }
        FUZZ_CHECK(!reply.body.empty() || reply.status == 200);
        FUZZ_CHECK(reply.body.find("fuzz-token") == std::string::npos);
    }
    return 0;
}
