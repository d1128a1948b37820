// The importwatch binary against the simulator over TLS, as a user runs it:
// `run`, `wait`, `check`, `demo`. The simulator runs in this process's
// io_context, pumped while the child process works.
#define BOOST_TEST_MODULE daemon_end_to_end
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <regex>

#include <boost/asio/io_context.hpp>

#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"
#include "sim/simulator.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

/// The event summaries in a text log, in order ("NAME status A -> B (PATH)").
std::vector<std::string> event_lines(std::string const& log) {
    static std::regex const line(R"(^\S+Z (info|warn|error) (\S+ (status|file|failed|recovered|stalled).*)$)");
    std::vector<std::string> out;
    std::istringstream in(log);
    for (std::string l; std::getline(in, l);) {
        std::smatch m;
        if (std::regex_match(l, m, line) && l.find(" (") != std::string::npos && l.find('/') != std::string::npos)
            out.push_back(m[2]);
    }
    return out;
}

bool contains(std::vector<std::string> const& lines, std::string const& needle) {
    return std::find(lines.begin(), lines.end(), needle) != lines.end();
}

constexpr char const* two_imports = R"(
token: sim-token
imports:
  - project: p1
    environment: production
    segment: vip
    import_id: imp-complete
    steps:
      - { status: preparing, for: 2s, files: [{ filename: a.csv, status: pending }] }
      - { status: in_progress, for: 600ms, files: [{ filename: a.csv, status: processing }] }
      - { status: complete, files: [{ filename: a.csv, status: complete }] }
  - project: p1
    environment: production
    segment: beta
    import_id: imp-stopped
    steps:
      - { status: preparing, for: 2s }
      - { status: stopped }
)";

constexpr char const* two_watches = R"(  - name: vip
    project: p1
    environment: production
    segment: vip
    import_id: imp-complete
  - project: p1
    environment: production
    segment: beta
    import_id: imp-stopped
)";

} // namespace

BOOST_AUTO_TEST_CASE(run_logs_every_transition_in_order_and_stops_on_sigterm) {
    simulated_launchdarkly api(two_imports);
    auto cfg = api.dir.write("config.yaml", api.config({.watches = two_watches}));
    child_process daemon({"run", "--config", cfg}, token_env());
    // Both imports end within ~2.6 s; give generous time, then stop the daemon.
    run_until(api.ioc, [&] {
        auto ev = event_lines(daemon.err());
        return contains(ev, "vip status in_progress -> complete (p1/production/vip/imp-complete)") &&
               contains(ev, "p1/production/beta/imp-stopped status preparing -> stopped (p1/production/beta/imp-stopped)");
    }, 20s);
    daemon.signal(SIGTERM);
    auto rc = api.serve_until_exit(daemon, 10s);
    BOOST_TEST_INFO(daemon.err());
    BOOST_REQUIRE(rc.has_value());
    BOOST_TEST(*rc == 0);

    auto ev = event_lines(daemon.err());
    std::vector<std::string> vip;
    for (auto const& e : ev)
        if (e.starts_with("vip ")) vip.push_back(e);
    std::vector<std::string> const expected{
        "vip status none -> preparing (p1/production/vip/imp-complete)",
        "vip status preparing -> in_progress (p1/production/vip/imp-complete)",
        "vip file a.csv pending -> processing (p1/production/vip/imp-complete)",
        "vip status in_progress -> complete (p1/production/vip/imp-complete)",
        "vip file a.csv processing -> complete (p1/production/vip/imp-complete)",
    };
    BOOST_TEST(vip == expected, boost::test_tools::per_element());
    // Terminal watches are not polled again: no request after the daemon saw `complete`.
    auto const polls = api.requests_for("imp-complete").size();
    run_until(api.ioc, [] { return false; }, 600ms);
    BOOST_TEST(api.requests_for("imp-complete").size() == polls);
}

BOOST_AUTO_TEST_CASE(restart_emits_nothing_twice_and_terminal_watches_stay_quiet) {
    simulated_launchdarkly api(two_imports);
    auto cfg = api.dir.write("config.yaml", api.config({.watches = two_watches}));
    {
        child_process first({"run", "--config", cfg}, token_env());
        run_until(api.ioc, [&] {
            auto ev = event_lines(first.err());
            return contains(ev, "vip status in_progress -> complete (p1/production/vip/imp-complete)") &&
                   contains(ev, "p1/production/beta/imp-stopped status preparing -> stopped (p1/production/beta/imp-stopped)");
        }, 20s);
        first.signal(SIGKILL);
        api.serve_until_exit(first, 5s);
    }
    auto const before = api.server->requests().size();
    child_process second({"run", "--config", cfg}, token_env());
    run_until(api.ioc, [] { return false; }, 1500ms);
    second.signal(SIGTERM);
    BOOST_TEST(api.serve_until_exit(second, 10s).value_or(-1) == 0);
    BOOST_TEST_INFO(second.err());
    BOOST_TEST(event_lines(second.err()).empty());
    BOOST_TEST(api.server->requests().size() == before);   // both watches are terminal
}

BOOST_AUTO_TEST_CASE(wait_exit_codes) {
    simulated_launchdarkly api(R"(
token: sim-token
imports:
  - { project: p, environment: e, segment: s, import_id: done, steps: [{ status: preparing, for: 2s }, { status: complete }] }
  - { project: p, environment: e, segment: s, import_id: halted, steps: [{ status: in_progress, for: 300ms }, { status: stopped }] }
  - { project: p, environment: e, segment: s, import_id: forever, steps: [{ status: in_progress }] }
)");
    auto wait = [&](std::string const& id, std::vector<std::string> extra = {},
                    std::map<std::string, std::string> env = token_env()) {
        std::vector<std::string> args{"wait", "p/e/s/" + id, "--base-url", api.server->base_url(), "--ca-file",
                                      api.ca_file, "--token-env", "SIM_TOKEN", "--interval", "100ms"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto p = std::make_unique<child_process>(args, env);
        auto rc = api.serve_until_exit(*p, 30s);
        return std::pair{rc.value_or(-1), p->out() + p->err()};
    };
    {
        auto [rc, out] = wait("done");
        BOOST_TEST_INFO(out);
        BOOST_TEST(rc == 0);
        BOOST_TEST(out.find("status preparing -> complete (p/e/s/done)") != std::string::npos);
    }
    BOOST_TEST(wait("halted").first == 1);
    BOOST_TEST(wait("missing").first == 3);                                   // 404
    BOOST_TEST(wait("forever", {"--timeout", "500ms"}).first == 4);
    {
        // 401: wait says what it does, which is to stop, not to poll on.
        auto [rc, out] = wait("done", {}, {{"SIM_TOKEN", "wrong-token"}});
        BOOST_TEST_INFO(out);
        BOOST_TEST(rc == 3);
        BOOST_TEST(out.find("every watch is marked failed and polling stops") != std::string::npos);
        BOOST_TEST(out.find("until a token works") == std::string::npos);
    }
    BOOST_TEST(wait("done", {}, {{"SIM_TOKEN", ""}}).first == 2);             // unset token: config error
}

BOOST_AUTO_TEST_CASE(wait_with_config_selects_watches) {
    simulated_launchdarkly api(two_imports);
    auto cfg = api.dir.write("config.yaml", api.config({.watches = two_watches}));
    child_process p({"wait", "--config", cfg, "--watch", "vip"}, token_env());
    BOOST_TEST(api.serve_until_exit(p, 30s).value_or(-1) == 0);
    BOOST_TEST_INFO(p.out());
    BOOST_TEST(p.out().find("vip status in_progress -> complete") != std::string::npos);
    BOOST_TEST(p.out().find("imp-stopped") == std::string::npos);
    BOOST_TEST(api.requests_for("imp-stopped").size() == 0u);

    child_process unknown({"wait", "--config", cfg, "--watch", "nope"}, token_env());
    BOOST_TEST(api.serve_until_exit(unknown, 10s).value_or(-1) == 2);
}

BOOST_AUTO_TEST_CASE(untrusted_certificates_are_refused) {
    // A server certificate from a CA the client does not trust.
    simulated_launchdarkly api(two_imports);
    test_pki other;
    temp_dir d;
    auto other_ca = d.write("other-ca.pem", other.ca.certificate_pem());
    child_process p({"wait", "p1/production/vip/imp-complete", "--base-url", api.server->base_url(), "--ca-file",
                     other_ca, "--token-env", "SIM_TOKEN", "--interval", "100ms", "--timeout", "1500ms"},
                    token_env());
    BOOST_TEST(api.serve_until_exit(p, 20s).value_or(-1) == 4);
    BOOST_TEST_INFO(p.err());
    BOOST_TEST(p.err().find("verify") != std::string::npos);
    BOOST_TEST(api.server->requests().empty());   // no request got through
}

BOOST_AUTO_TEST_CASE(certificate_for_another_host_is_refused) {
    simulated_launchdarkly api(two_imports);
    // Same trusted CA, but the server's certificate names another host.
    auto wrong = api.pki.ca.issue_server_certificate({"other.example"});
    auto tls = net::make_server_context_from_pem(wrong.certificate, wrong.private_key);
    BOOST_REQUIRE(tls);
    auto sc = sim::parse_scenario(two_imports, "s.yaml");
    BOOST_REQUIRE(sc);
    sim::simulator_options o;
    o.tls = *tls;
    sim::simulator impostor(api.ioc.get_executor(), *sc, o);
    BOOST_REQUIRE(impostor.start());
    child_process p({"wait", "p1/production/vip/imp-complete", "--base-url", impostor.base_url(), "--ca-file",
                     api.ca_file, "--token-env", "SIM_TOKEN", "--interval", "100ms", "--timeout", "1500ms"},
                    token_env());
    BOOST_TEST(api.serve_until_exit(p, 20s).value_or(-1) == 4);
    BOOST_TEST(impostor.requests().empty());
}

BOOST_AUTO_TEST_CASE(check_accepts_good_and_rejects_bad_configs) {
    temp_dir d;
    auto good = d.write("good.yaml", "watches:\n  - { project: a, environment: b, segment: c, import_id: d }\n");
    child_process ok({"check", "--config", good}, {{"LD_API_TOKEN", "x"}});
    BOOST_TEST(ok.wait(10s).value_or(-1) == 0);
    BOOST_TEST(ok.out().find("a/b/c/d") != std::string::npos);

    auto bad = d.write("bad.yaml", "watches:\n  - { project: a, environment: b, segment: c, import_id: \"d/e\" }\n");
    child_process no({"check", "--config", bad});
    BOOST_TEST(no.wait(10s).value_or(-1) == 2);
    BOOST_TEST_INFO(no.err());
    BOOST_TEST(no.err().find("bad.yaml:2:") != std::string::npos);
    BOOST_TEST(no.err().find("import_id") != std::string::npos);

    child_process missing({"check", "--config", (d.path() / "nope.yaml").string()});
    BOOST_TEST(missing.wait(10s).value_or(-1) == 2);
    BOOST_TEST(missing.err().find("nope.yaml") != std::string::npos);
}

// An unset token variable or unreadable token/secret file is a warning for
// check and a config error (exit 2, naming file, line, column and key) for
// run; wait needs only the token, so a missing webhook secret is a warning
// there too. A secret that is there but malformed is an error for all.
BOOST_AUTO_TEST_CASE(secrets_missing_warn_in_check_and_fail_run_and_wait) {
    temp_dir d;
    auto const state = (d.path() / "state").string();
    auto cfg = d.write("secrets.yaml",
                       "launchdarkly:\n  token_env: IW_TEST_TOKEN\n"
                       "watches:\n  - { name: w1, project: p, environment: e, segment: s, import_id: i1 }\n"
                       "events:\n  webhooks:\n    - { name: h, url: \"http://127.0.0.1:9/x\", secret_file: " +
                           (d.path() / "no-such-secret").string() + " }\n"
                       "state: { dir: " + state + " }\nadmin: { listen: \"\" }\n");
    std::map<std::string, std::string> const no_token{{"IW_TEST_TOKEN", ""}};
    std::map<std::string, std::string> const token{{"IW_TEST_TOKEN", "tok"}};

    child_process check({"check", "--config", cfg}, no_token);
    BOOST_TEST(check.wait(10s).value_or(-1) == 0);
    BOOST_TEST(check.err().find("warning: ") != std::string::npos);

    child_process run({"run", "--config", cfg}, no_token);
    BOOST_TEST(run.wait(10s).value_or(-1) == 2);
    BOOST_TEST_INFO(run.err());
    BOOST_TEST(run.err().find("secrets.yaml:2:3: launchdarkly.token_env: IW_TEST_TOKEN is not set") !=
               std::string::npos);

    child_process wait_no_token({"wait", "--config", cfg, "--timeout", "5s"}, no_token);
    BOOST_TEST(wait_no_token.wait(10s).value_or(-1) == 2);
    BOOST_TEST(wait_no_token.err().find("launchdarkly.token_env: IW_TEST_TOKEN is not set") != std::string::npos);

    // The token is there now, the webhook secret file still is not: wait
    // delivers no webhooks, so it warns and polls (until its timeout here,
    // as this watch's API is out of reach).
    child_process wait({"wait", "--config", cfg, "--timeout", "1s"}, token);
    BOOST_TEST(wait.wait(10s).value_or(-1) == 4);
    BOOST_TEST_INFO(wait.err());
    BOOST_TEST(wait.err().find("warning: ") != std::string::npos);
    BOOST_TEST(wait.err().find("secrets.yaml:7:") != std::string::npos);
    BOOST_TEST(wait.err().find("events.webhooks[0].secret_file: cannot read") != std::string::npos);

    // A secret that is there but is no whsec_<base64>: an error for check too.
    d.write("no-such-secret", "not-a-webhook-secret\n");
    child_process malformed({"check", "--config", cfg}, token);
    BOOST_TEST(malformed.wait(10s).value_or(-1) == 2);
    BOOST_TEST_INFO(malformed.err());
    BOOST_TEST(malformed.err().find("events.webhooks[0].secret_file") != std::string::npos);
    BOOST_TEST(malformed.err().find("not-a-webhook-secret") == std::string::npos);   // never quoted
    child_process wait_malformed({"wait", "--config", cfg, "--timeout", "5s"}, token);
    BOOST_TEST(wait_malformed.wait(10s).value_or(-1) == 2);
    BOOST_TEST(wait_malformed.err().find("not-a-webhook-secret") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(demo_shows_all_three_paths_and_exits_zero) {
    child_process demo({"demo"});
    auto rc = demo.wait(60s);
    BOOST_TEST_INFO(demo.out() + demo.err());
    BOOST_REQUIRE(rc.has_value());
    BOOST_TEST(*rc == 0);
    auto ev = event_lines(demo.out());
    BOOST_TEST(contains(ev, "vip-nightly status in_progress -> complete (demo/production/vip-users/nightly-complete)"));
    BOOST_TEST(contains(ev, "beta-weekly status in_progress -> stopped (demo/production/beta-testers/weekly-stopped)"));
    BOOST_TEST(contains(ev, "early-access status in_progress -> complete (demo/staging/early-access/rate-limited)"));
    BOOST_TEST(demo.out().find("rate limited by LaunchDarkly") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_two) {
    child_process none({"frobnicate"});
    BOOST_TEST(none.wait(10s).value_or(-1) == 2);
    child_process both({"wait", "a/b/c/d", "--config", "x.yaml"});
    BOOST_TEST(both.wait(10s).value_or(-1) == 2);
    child_process version({"--version"});
    BOOST_TEST(version.wait(10s).value_or(-1) == 0);
    BOOST_TEST(version.out().starts_with("importwatch "));
}
