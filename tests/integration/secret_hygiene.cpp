// Secrets never leave the places they are meant for. The real binary runs
// through the paths where a secret could slip into output: 401s with a wrong
// token and a rotation, reloads (one rejected for a URL with credentials),
// webhook errors (a receiver answering 500, a connection refused) and debug
// logging. Then every log line, every event (logged and delivered), /metrics,
// /v1/watches, `outbox list` and the state database's bytes (with its WAL)
// are searched for the token, the webhook secrets, the URL password and
// their base64 and hex forms.
#define BOOST_TEST_MODULE secret_hygiene
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <random>

#include "common/admin_client.hpp"
#include "common/daemon_harness.hpp"
#include "common/simulated_launchdarkly.hpp"
#include "common/testing.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

std::string random_bytes(std::size_t n) {
    std::random_device rd;
    std::string out(n, '\0');
    for (auto& c : out) c = static_cast<char>(rd() & 0xff);
    return out;
}

std::string hex(std::string const& bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

/// A token-like string that occurs nowhere by chance.
std::string random_token(std::string const& prefix) { return prefix + hex(random_bytes(16)); }

struct needle {
    std::string what;
    std::string bytes;
};

struct haystack {
    std::string what;
    std::string bytes;
};

/// Every file in the state directory (the database, its -wal and -shm).
std::vector<haystack> state_files(fs::path const& dir, std::string const& when) {
    std::vector<haystack> out;
    std::error_code ec;
    for (auto const& entry : fs::directory_iterator(dir, ec))
        if (entry.is_regular_file()) out.push_back({when + " " + entry.path().filename().string(), read_file(entry.path())});
    return out;
}

std::optional<double> sample(std::string const& text, std::string const& series) {
    auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return std::nullopt;
    return std::stod(text.substr(at + series.size() + 2));
}

} // namespace

BOOST_AUTO_TEST_CASE(no_secret_reaches_logs_events_metrics_status_outbox_or_database) {
    std::string const token = random_token("api-good-");
    std::string const wrong_token = random_token("api-wrong-");
    std::string const key_a = random_bytes(32);
    std::string const key_b = random_bytes(48);
    std::string const secret_a = "whsec_" + base64(key_a);
    std::string const secret_b = "whsec_" + base64(key_b);
    std::string const url_password = random_token("pw-");
    std::string const url_user = "hygiene-user";

    std::string const scenario = "token: " + token + R"(
imports:
  - { project: p, environment: e, segment: s, import_id: first,
      steps: [{ status: preparing, for: 2s, files: [{ filename: a.csv, status: pending }] },
              { status: in_progress, for: 2s, files: [{ filename: a.csv, status: processing }] },
              { status: complete }] }
  - { project: p, environment: e, segment: s, import_id: later, steps: [{ status: in_progress }] }
)";
    simulated_launchdarkly api(scenario);

    // One receiver answers 500 once on /hook, then 200, and always 500 on
    // /dead (whose webhook's max_age turns that into dead letters); the other
    // port refuses connections.
    webhook_receiver flaky(api.ioc, api.pki);
    int hook_answers = 0;
    flaky.script = [&](hit const& h) {
        if (h.target == "/dead") return reply_with(500);
        return reply_with(++hook_answers == 1 ? 500 : 200);
    };
    auto const refused_url = "https://127.0.0.1:" + std::to_string(free_port()) + "/hook";
    auto const admin_port = free_port();

    auto const bom = std::string("\xEF\xBB\xBF");
    auto const token_file = api.dir.write("token", bom + wrong_token + "\r\n");
    auto const secret_file = api.dir.write("hook-a.secret", secret_a + "\n");
    auto const state = api.dir.path() / "state";

    auto config = [&](std::string const& base_url, std::string const& watches) {
        return "launchdarkly:\n  base_url: " + base_url + "\n  ca_file: " + api.ca_file +
               "\n  token_file: " + token_file +
               "\n  max_requests_per_second: 0\n"
               "polling:\n  interval: 200ms\n  jitter: 0\n  backoff: { initial: 100ms, max: 500ms, multiplier: 2 }\n"
               "events:\n  webhooks:\n"
               "    - { name: flaky, url: \"" + flaky.url() + "\", secret_file: " + secret_file +
               ", ca_file: " + api.ca_file + ", timeout: 2s }\n"
               "    - { name: dead, url: \"" + flaky.url("/dead") + "\", secret_file: " + secret_file +
               ", ca_file: " + api.ca_file + ", timeout: 2s, max_age: 1s }\n"
               "    - { name: refused, url: \"" + refused_url + "\", secret_env: HOOK_SECRET_B, ca_file: " +
               api.ca_file + ", timeout: 1s }\n"
               "state:\n  dir: " + state.string() + "\n"
               "admin:\n  listen: 127.0.0.1:" + std::to_string(admin_port) + "\n"
               "shutdown_grace: 1s\n"
               "watches:\n" + watches;
    };
    auto const base_url = api.server->base_url();
    auto const credentialed_url = "https://" + url_user + ":" + url_password + "@" + base_url.substr(8);
    auto const cfg = api.dir.write("c.yaml", config(base_url, watch_entry("first")));
    std::map<std::string, std::string> const env{{"HOOK_SECRET_B", secret_b}, {"NOTIFY_SOCKET", ""}};

    std::vector<haystack> outputs;   // what the tools printed besides the daemon
    auto tool = [&](std::vector<std::string> args) {
        child_process p(args, env);
        run_until(api.ioc, [&] { return !p.running(); }, 30s);
        auto rc = p.wait(0ms);
        outputs.push_back({args.front() + " " + args[1], p.out() + p.err()});
        return std::make_pair(rc.value_or(-1), p.out() + p.err());
    };

    child_process daemon({"run", "--config", cfg, "--log-level", "debug", "--log-format", "json"}, env);
    auto admin = [&](std::string const& target) {
        auto r = admin_request(api.ioc, admin_port, "GET", target, 2s);
        return r && r->status == 200 ? r->body : std::string();
    };
    auto unauthorized = [&] {
        std::size_t n = 0;
        for (auto const& r : api.server->requests()) n += r.status == 401;
        return n;
    };

    // 1. The wrong token: 401s, every watch failed.
    BOOST_TEST_REQUIRE(run_until(api.ioc, [&] { return !daemon.running() || unauthorized() >= 2; }, 30s),
                       daemon.err());
    BOOST_TEST_REQUIRE(daemon.running(), daemon.err());

    // 2. The token is rotated in its file: the daemon re-reads it after a 401.
    api.dir.write("token", bom + token + "\r\n");
    BOOST_TEST(run_until(api.ioc, [&] {
        auto w = admin("/v1/watches");
        return w.find("\"status\":\"preparing\"") != std::string::npos ||
               w.find("\"status\":\"in_progress\"") != std::string::npos ||
               w.find("\"status\":\"complete\"") != std::string::npos;
    }, 30s));

    // 3. Webhook errors: 500s then deliveries on one, refusals on the other.
    BOOST_TEST(run_until(api.ioc, [&] {
        auto m = admin("/metrics");
        return sample(m, "importwatch_webhook_deliveries_total{webhook=\"refused\",result=\"failed\"}").value_or(0) >= 1 &&
               sample(m, "importwatch_webhook_deliveries_total{webhook=\"dead\",result=\"dead\"}").value_or(0) >= 1 &&
               !flaky.delivered().empty();
    }, 30s));

    // 4. A reload with credentials in base_url (and a new watch) is rejected...
    api.dir.write("c.yaml", config(credentialed_url, watch_entry("first") + watch_entry("later")));
    daemon.signal(SIGHUP);
    BOOST_TEST(run_until(api.ioc, [&] { return daemon.err().find("reload rejected") != std::string::npos; }, 10s));
    // (had it been applied, the new watch's events would carry the base_url as their source)
    pump_for(api.ioc, 1s);
    // ... and a good one is applied.
    api.dir.write("c.yaml", config(base_url, watch_entry("first") + watch_entry("later")));
    daemon.signal(SIGHUP);
    BOOST_TEST(run_until(api.ioc, [&] { return admin("/v1/watches").find("\"import_id\":\"later\"") != std::string::npos; },
                         10s));
    BOOST_TEST(run_until(api.ioc, [&] { return admin("/v1/watches").find("\"status\":\"complete\"") != std::string::npos; },
                         30s));

    // 5. The command-line paths: check and wait with the credentialed URL.
    auto bad = api.dir.write("bad.yaml", config(credentialed_url, watch_entry("first")));
    BOOST_TEST(tool({"check", "--config", bad}).first == 2);
    BOOST_TEST(tool({"wait", "p/e/s/first", "--base-url", credentialed_url, "--ca-file", api.ca_file, "--token-file",
                     token_file, "--timeout", "3s"})
                   .first == 2);
    BOOST_TEST(tool({"check", "--config", cfg}).first == 0);

    // Everything a secret could leak into while the daemon runs.
    std::vector<haystack> hay;
    std::string const metrics = admin("/metrics");
    std::string const watches = admin("/v1/watches");
    hay.push_back({"/metrics", metrics});
    hay.push_back({"/v1/watches", watches});
    auto [list_rc, listing] = tool({"outbox", "--config", cfg, "list"});
    BOOST_TEST(list_rc == 0);
    for (auto& h : state_files(state, "while running")) hay.push_back(std::move(h));

    BOOST_TEST(api.stop(daemon) == 0);
    tool({"outbox", "--config", cfg, "list"});
    for (auto& h : state_files(state, "after stop")) hay.push_back(std::move(h));
    hay.push_back({"daemon stderr", daemon.err()});
    hay.push_back({"daemon stdout", daemon.out()});
    for (auto const& h : flaky.hits)
        hay.push_back({"delivered request", h.target + "\n" + h.id + "\n" + h.user_agent + "\n" + h.x_team + "\n" + h.body});
    for (auto& o : outputs) hay.push_back(std::move(o));

    // The haystacks hold what they should, or finding nothing proves nothing.
    std::string const log = daemon.err();
    BOOST_TEST_INFO(log.substr(0, 20000));
    BOOST_TEST(log.find("\"level\":\"debug\"") != std::string::npos);
    BOOST_TEST(log.find("HTTP 401") != std::string::npos);
    BOOST_TEST(log.find("re-read the API token") != std::string::npos);
    BOOST_TEST(log.find("launchdarkly.base_url: must not contain a user name or password") != std::string::npos);
    BOOST_TEST(log.find("configuration reloaded") != std::string::npos);
    BOOST_TEST(log.find("onnection refused") != std::string::npos);   // the refused webhook's attempts
    BOOST_TEST(std::count_if(flaky.hits.begin(), flaky.hits.end(), [](hit const& h) { return h.answered == 500; }) >= 2);
    BOOST_TEST(flaky.delivered().size() >= 1u);
    BOOST_TEST(!logged_events(log).empty());
    BOOST_TEST(outbox_rows(listing).size() >= 3u);   // the refused webhook's backlog
    BOOST_TEST(metrics.find("importwatch_webhook_deliveries_total") != std::string::npos);
    BOOST_TEST(watches.find("\"name\":\"first\"") != std::string::npos);
    std::string db;
    for (auto const& h : hay)
        if (h.what.starts_with("after stop") || h.what.starts_with("while running")) db += h.bytes;
    BOOST_TEST(db.find("importwatch.watch.failed") != std::string::npos);   // the 401 phase's events are stored
    BOOST_TEST(db.find("p/e/s/later") != std::string::npos);

    std::vector<needle> needles;
    auto add = [&](std::string const& what, std::string const& secret) {
        needles.push_back({what, secret});
        needles.push_back({what + " (base64)", base64(secret)});
        needles.push_back({what + " (hex)", hex(secret)});
    };
    add("API token", token);
    add("wrong API token", wrong_token);
    add("webhook secret a", secret_a);
    add("webhook key a", key_a);
    add("webhook secret b", secret_b);
    add("webhook key b", key_b);
    add("URL password", url_password);
    add("URL credentials", url_user + ":" + url_password);
    for (auto const& n : needles) {
        for (auto const& h : hay) {
            BOOST_TEST_CONTEXT(n.what << " in " << h.what) {
                BOOST_TEST(h.bytes.find(n.bytes) == std::string::npos);
            }
        }
    }
    BOOST_TEST_MESSAGE("searched " << hay.size() << " outputs for " << needles.size() << " secret forms");
}
