// The files importwatch is pointed at, read by the whole binary: the config,
// watch_files and token/secret files are read only when they are regular files
// and within their size limits, so a FIFO cannot block the event loop and
// /dev/zero cannot grow memory; tokens and secrets are checked at load; URLs
// with credentials are refused without being echoed.
#define BOOST_TEST_MODULE config_files
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <regex>

#include <sys/resource.h>
#include <sys/stat.h>

#include "common/admin_client.hpp"
#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

constexpr char const* token = "api-config-files-TOKEN-7d1e";

constexpr char const* scenario_yaml = R"(
token: api-config-files-TOKEN-7d1e
imports:
  - { project: p, environment: e, segment: s, import_id: done, steps: [{ status: complete }] }
  - { project: p, environment: e, segment: s, import_id: busy, steps: [{ status: in_progress }] }
)";

std::string const one_watch = "watches:\n  - { project: a, environment: b, segment: c, import_id: d }\n";

// Sanitizers reserve shadow memory: the RSS bound is about growth, not their overhead.
#if defined(__SANITIZE_ADDRESS__)
constexpr long max_rss_kib = 256 * 1024;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr long max_rss_kib = 256 * 1024;
#else
constexpr long max_rss_kib = 64 * 1024;
#endif
#else
constexpr long max_rss_kib = 64 * 1024;
#endif

/// The largest resident set of any child waited for so far, in KiB.
long children_max_rss_kib() {
    rusage u{};
    ::getrusage(RUSAGE_CHILDREN, &u);
    return u.ru_maxrss;
}

std::string make_fifo(temp_dir const& d, std::string const& name) {
    auto path = (d.path() / name).string();
    BOOST_TEST_REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    return path;
}

/// A file of exactly `size` bytes: `head`, then comment lines.
std::string write_padded(temp_dir const& d, std::string const& name, std::string const& head, std::size_t size) {
    std::string text = head;
    while (text.size() < size) {
        std::string line = "# padding padding padding padding padding padding padding padding padding\n";
        text += line.substr(0, std::min(line.size(), size - text.size()));
    }
    if (!text.empty() && text.back() != '\n') text.back() = '\n';
    return d.write(name, text);
}

struct check_result {
    int rc;
    std::string out, err;
    std::chrono::milliseconds took;
};

check_result run_cli(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                     std::chrono::milliseconds timeout = 10s) {
    auto const t0 = std::chrono::steady_clock::now();
    child_process p(std::move(args), std::move(env));
    auto rc = p.wait(timeout);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    return {rc.value_or(-1), p.out(), p.err(), took};
}

} // namespace

BOOST_AUTO_TEST_SUITE(file_bounds)

// First in the file: RUSAGE_CHILDREN then measures this child alone.
BOOST_AUTO_TEST_CASE(check_of_dev_zero_exits_two_at_once_with_small_memory) {
    auto r = run_cli({"check", "--config", "/dev/zero"});
    BOOST_TEST_INFO(r.err);
    BOOST_TEST(r.rc == 2);
    BOOST_TEST(r.err.find("/dev/zero: not a regular file (a character device)") != std::string::npos);
    BOOST_TEST(r.took.count() < 5000);
    BOOST_TEST(children_max_rss_kib() < max_rss_kib);
    BOOST_TEST_MESSAGE("check --config /dev/zero: exit " << r.rc << " after " << r.took.count() << " ms, max RSS "
                                                        << children_max_rss_kib() << " KiB");
}

BOOST_AUTO_TEST_CASE(a_fifo_or_a_directory_as_config_is_refused_without_blocking) {
    temp_dir d;
    auto fifo = make_fifo(d, "config.yaml");
    auto r = run_cli({"check", "--config", fifo});
    BOOST_TEST_INFO(r.err);
    BOOST_TEST(r.rc == 2);
    BOOST_TEST(r.err.find(fifo + ": not a regular file (a FIFO)") != std::string::npos);
    BOOST_TEST(r.took.count() < 5000);

    auto run = run_cli({"run", "--config", fifo});
    BOOST_TEST_INFO(run.err);
    BOOST_TEST(run.rc == 2);
    BOOST_TEST(run.err.find("not a regular file (a FIFO)") != std::string::npos);

    auto dir = run_cli({"check", "--config", d.path().string()});
    BOOST_TEST_INFO(dir.err);
    BOOST_TEST(dir.rc == 2);
    BOOST_TEST(dir.err.find(d.path().string() + ": not a regular file (a directory)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(config_and_watch_files_over_4_mib_are_refused) {
    temp_dir d;
    std::size_t const limit = std::size_t{4} << 20;
    std::map<std::string, std::string> const env{{"LD_API_TOKEN", token}};

    auto at_limit = write_padded(d, "at-limit.yaml", one_watch, limit);
    auto ok = run_cli({"check", "--config", at_limit}, env);
    BOOST_TEST_INFO(ok.err);
    BOOST_TEST(ok.rc == 0);

    auto over = write_padded(d, "over.yaml", one_watch, limit + 1);
    auto big = run_cli({"check", "--config", over}, env);
    BOOST_TEST_INFO(big.err);
    BOOST_TEST(big.rc == 2);
    BOOST_TEST(big.err.find(over + ": larger than the limit of 4 MiB") != std::string::npos);

    fs::create_directories(d.path() / "watches.d");
    write_padded(d, "watches.d/a.yaml", "watches:\n  - { project: a, environment: b, segment: c, import_id: e }\n",
                 1000);
    auto big_watch = write_padded(d, "watches.d/b.yaml",
                                  "watches:\n  - { project: a, environment: b, segment: c, import_id: f }\n",
                                  limit + 1);
    auto cfg = d.write("with-watch-files.yaml", "watch_files: [\"watches.d/*.yaml\"]\n" + one_watch);
    auto watch = run_cli({"check", "--config", cfg}, env);
    BOOST_TEST_INFO(watch.err);
    BOOST_TEST(watch.rc == 2);
    BOOST_TEST(watch.err.find(big_watch + ": larger than the limit of 4 MiB") != std::string::npos);
}

// A secret that is there but cannot be a secret (a FIFO, a directory, over
// 64 KiB) is an error for check too; an absent one stays a warning.
BOOST_AUTO_TEST_CASE(secret_files_that_are_not_small_regular_files_are_errors) {
    temp_dir d;
    auto fifo = make_fifo(d, "token.fifo");
    auto huge = d.write("huge-token", std::string(100'000, 'T'));
    std::string const cases[][2] = {
        {fifo, "not a regular file (a FIFO)"},
        {d.path().string(), "not a regular file (a directory)"},
        {huge, "larger than the limit of 64 KiB"},
    };
    for (auto const& [path, message] : cases) {
        BOOST_TEST_CONTEXT(path) {
            auto cfg = d.write("c.yaml", "launchdarkly:\n  token_file: " + path + "\n" + one_watch);
            auto r = run_cli({"check", "--config", cfg});
            BOOST_TEST_INFO(r.err);
            BOOST_TEST(r.rc == 2);
            BOOST_TEST(r.err.find("c.yaml:2:3: launchdarkly.token_file: " + path + ": " + message) !=
                       std::string::npos);
            BOOST_TEST(r.err.find("TTTT") == std::string::npos);
            BOOST_TEST(r.took.count() < 5000);
        }
    }
    auto hook_cfg = d.write("hook.yaml", one_watch + "events:\n  webhooks:\n    - name: ops\n"
                                                     "      url: https://hooks.example/in\n      secret_file: " +
                                             fifo + "\n");
    auto r = run_cli({"check", "--config", hook_cfg}, {{"LD_API_TOKEN", token}});
    BOOST_TEST_INFO(r.err);
    BOOST_TEST(r.rc == 2);
    BOOST_TEST(r.err.find("hook.yaml:7:7: events.webhooks[0].secret_file: " + fifo + ": not a regular file (a FIFO)") !=
               std::string::npos);

    auto missing = d.write("missing.yaml", "launchdarkly:\n  token_file: " + (d.path() / "nope").string() + "\n" + one_watch);
    auto w = run_cli({"check", "--config", missing});
    BOOST_TEST_INFO(w.err);
    BOOST_TEST(w.rc == 0);
    BOOST_TEST(w.err.find("warning: ") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tokens_and_secrets)

// Before: the BOM went into the Authorization header and every poll was a 401.
BOOST_AUTO_TEST_CASE(a_token_file_with_a_bom_and_crlf_authenticates) {
    simulated_launchdarkly api(scenario_yaml);
    auto token_file = api.dir.write("token", std::string("\xEF\xBB\xBF") + token + "\r\n");
    child_process wait({"wait", "p/e/s/done", "--base-url", api.server->base_url(), "--ca-file", api.ca_file,
                        "--token-file", token_file, "--interval", "100ms", "--timeout", "10s"});
    auto rc = api.serve_until_exit(wait, 20s);
    BOOST_TEST_INFO(wait.out() + wait.err());
    BOOST_TEST(rc.value_or(-1) == 0);
    auto requests = api.requests_for("done");
    BOOST_TEST_REQUIRE(!requests.empty());
    BOOST_TEST(requests.front().status == 200);
}

// A token LaunchDarkly could never accept fails at load, for run and wait as
// for check, with a message that does not quote it.
BOOST_AUTO_TEST_CASE(malformed_tokens_are_config_errors_that_never_quote_the_token) {
    temp_dir d;
    std::string const long_token = "api-" + std::string(5000, 'L');
    std::string const spaced_token = "api-spaced TOKEN-value";
    auto cfg = d.write("c.yaml", "launchdarkly:\n  base_url: http://127.0.0.1:9\n  token_env: IW_TOKEN\n"
                                 "state: { dir: " + (d.path() / "state").string() + " }\nadmin: { listen: \"\" }\n" +
                                     one_watch);
    struct case_ {
        std::string token;
        std::string message;
    };
    case_ const cases[] = {
        {long_token, "c.yaml:3:3: launchdarkly.token_env: IW_TOKEN: the token is 5004 bytes; at most 4096 are allowed"},
        {spaced_token, "c.yaml:3:3: launchdarkly.token_env: IW_TOKEN: the token holds a space"},
    };
    for (auto const& c : cases) {
        for (std::string command : {"check", "run", "wait"}) {
            BOOST_TEST_CONTEXT(command << " with a token of " << c.token.size() << " bytes") {
                std::vector<std::string> args{command, "--config", cfg};
                if (command == "wait") args.insert(args.end(), {"--timeout", "3s"});
                auto r = run_cli(args, {{"IW_TOKEN", c.token}});
                BOOST_TEST_INFO(r.err);
                BOOST_TEST(r.rc == 2);
                BOOST_TEST(r.err.find(c.message) != std::string::npos);
                BOOST_TEST(r.err.find("LLLL") == std::string::npos);
                BOOST_TEST(r.err.find("TOKEN-value") == std::string::npos);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_one_byte_webhook_secret_is_refused) {
    temp_dir d;
    auto secret = d.write("hook-secret", "whsec_YQ==\n");
    auto cfg = d.write("c.yaml", one_watch + "events:\n  webhooks:\n    - name: ops\n"
                                             "      url: https://hooks.example/in\n      secret_file: " +
                                     secret + "\n");
    auto r = run_cli({"check", "--config", cfg}, {{"LD_API_TOKEN", token}});
    BOOST_TEST_INFO(r.err);
    BOOST_TEST(r.rc == 2);
    BOOST_TEST(r.err.find("c.yaml:7:7: events.webhooks[0].secret_file: " + secret +
                          ": secret decodes to 1 bytes; a key must be 24 to 64 bytes") != std::string::npos);
    BOOST_TEST(r.err.find("YQ==") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(url_credentials)

BOOST_AUTO_TEST_CASE(check_and_wait_refuse_credentials_in_urls_without_echoing_them) {
    temp_dir d;
    auto cfg = d.write("c.yaml", "launchdarkly:\n  base_url: https://ops:Pa55-URL-word@app.launchdarkly.com\n" +
                                     one_watch);
    auto r = run_cli({"check", "--config", cfg}, {{"LD_API_TOKEN", token}});
    BOOST_TEST_INFO(r.err);
    BOOST_TEST(r.rc == 2);
    BOOST_TEST(r.err.find("c.yaml:2:13: launchdarkly.base_url: must not contain a user name or password") !=
               std::string::npos);
    BOOST_TEST((r.out + r.err).find("Pa55-URL-word") == std::string::npos);

    auto w = run_cli({"wait", "p/e/s/i", "--base-url", "https://ops:Pa55-URL-word@127.0.0.1:9", "--token-env",
                      "IW_TOKEN", "--timeout", "3s"},
                     {{"IW_TOKEN", token}});
    BOOST_TEST_INFO(w.err);
    BOOST_TEST(w.rc == 2);
    BOOST_TEST(w.err.find("--base-url: must not contain a user name or password") != std::string::npos);
    BOOST_TEST((w.out + w.err).find("Pa55-URL-word") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(reload)

// Before: a FIFO matched by watch_files froze the daemon on SIGHUP (open()
// waits for a writer) and /healthz timed out. Now the reload fails naming
// the file, the running config stays, and the refusal is counted.
BOOST_AUTO_TEST_CASE(a_fifo_among_watch_files_fails_the_reload_not_the_daemon) {
    simulated_launchdarkly api(scenario_yaml);
    auto const port = free_port();
    fs::create_directories(api.dir.path() / "watches.d");
    api.dir.write("watches.d/a.yaml", "watches:\n" + watch_entry("busy"));
    auto cfg = api.dir.write(
        "c.yaml", api.config({.watches = watch_entry("done"),
                              .admin = "  listen: 127.0.0.1:" + std::to_string(port) + "\n",
                              // SIGHUP alone reloads, so the counts below are exact.
                              .extra = "watch_files: [\"" + (api.dir.path() / "watches.d" / "*.yaml").string() +
                                       "\"]\nshutdown_grace: 1s\nreload: { auto: false }\n"}));
    child_process daemon({"run", "--config", cfg}, {{"SIM_TOKEN", token}, {"NOTIFY_SOCKET", ""}});
    auto healthy = [&] {
        auto r = admin_request(api.ioc, port, "GET", "/healthz", 2s);
        return r && r->status == 200;
    };
    BOOST_TEST_REQUIRE(run_until(api.ioc, [&] { return !daemon.running() || healthy(); }, 30s));
    BOOST_TEST_REQUIRE(daemon.running(), daemon.err());

    auto fifo = make_fifo(api.dir, "watches.d/b.yaml");
    daemon.signal(SIGHUP);
    BOOST_TEST(run_until(api.ioc, [&] { return daemon.err().find("reload rejected") != std::string::npos; }, 10s));
    BOOST_TEST_INFO(daemon.err());
    BOOST_TEST(count_lines(daemon.err(), fifo + ": not a regular file (a FIFO)") == 1u);

    auto const t0 = std::chrono::steady_clock::now();
    BOOST_TEST(healthy());
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 2s));
    auto metrics = admin_request(api.ioc, port, "GET", "/metrics");
    BOOST_TEST_REQUIRE(metrics.has_value());
    BOOST_TEST(metrics->body.find("importwatch_config_files_refused_total{reason=\"not_regular\"} 1\n") !=
               std::string::npos);
    BOOST_TEST(metrics->body.find("importwatch_config_last_reload_successful 0\n") != std::string::npos);
    // The running config kept both watches.
    auto watches = admin_request(api.ioc, port, "GET", "/v1/watches");
    BOOST_TEST_REQUIRE(watches.has_value());
    BOOST_TEST(watches->body.find("\"import_id\":\"busy\"") != std::string::npos);

    // Once it is a file again, the next reload applies.
    fs::remove(fifo);
    api.dir.write("watches.d/b.yaml", "watches:\n" + watch_entry("extra", "done2"));
    daemon.signal(SIGHUP);
    BOOST_TEST(run_until(api.ioc, [&] { return daemon.err().find("configuration reloaded") != std::string::npos; },
                         10s));
    BOOST_TEST(api.stop(daemon) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
