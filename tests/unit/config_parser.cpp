#define BOOST_TEST_MODULE config_parser
#include <boost/test/unit_test.hpp>

#include <map>

#include "core/config_parser.hpp"
#include "common/source_file.hpp"

using namespace importwatch::core;
using namespace std::chrono_literals;

namespace {

env_lookup env_of(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](std::string const& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

env_lookup const test_env = env_of({{"FOO", "foo"}, {"EMPTY", ""}, {"TOKEN", "api-secret-1234"}});

std::string error_of(std::string const& yaml, env_lookup const& env = test_env) {
    auto r = parse_config(yaml, "c.yaml", env);
    if (r) return "<parsed>";
    return r.error();
}

config parse_ok(std::string const& yaml, env_lookup const& env = test_env) {
    auto r = parse_config(yaml, "c.yaml", env);
    BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.error()));
    return *r;
}

// A valid watch entry, to append fields to or to leave fields out of.
std::string const watch_a = "watches:\n  - name: vip\n    project: default\n    environment: production\n"
                            "    segment: vip-users\n    import_id: abc-123\n";

} // namespace

BOOST_AUTO_TEST_SUITE(config_parser)

BOOST_AUTO_TEST_CASE(bad_configs_give_exact_messages) {
    struct case_ {
        char const* name;
        std::string yaml;
        std::string message;
    };
    std::vector<case_> const cases = {
        {"unknown key with hint", "polling:\n  intervall: 30s\n",
         "c.yaml:2:3: polling.intervall: unknown key (did you mean \"interval\"?)"},
        {"unknown top-level key with hint", "watch:\n  - {}\n",
         "c.yaml:1:1: watch: unknown key (did you mean \"watches\"?)"},
        {"unknown key without hint", "polling: {}\nbogus_setting: 1\n",
         "c.yaml:2:1: bogus_setting: unknown key (expected one of: launchdarkly, polling, watches, events, "
         "watch_files, state, admin, reload, shutdown_grace)"},
        {"unknown reload key with hint", "reload:\n  atuo: false\n",
         "c.yaml:2:3: reload.atuo: unknown key (did you mean \"auto\"?)"},
        {"reload.auto not a boolean", "reload: { auto: sometimes }\n",
         "c.yaml:1:17: reload.auto: expected true or false"},
        {"unknown webhook key", "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n      secret: x\n",
         "c.yaml:5:7: events.webhooks[0].secret: unknown key (expected one of: name, url, format, template, "
         "secret_file, secret_env, types, watches, headers, timeout, ca_file, max_age, proxy)"},
        {"duplicate key", "polling:\n  interval: 30s\n  jitter: 0.2\n  interval: 1m\n",
         "c.yaml:4:3: polling.interval: duplicate key (first defined at line 2)"},
        {"duplicate top-level key", "admin: {}\npolling: {}\nadmin: {}\n",
         "c.yaml:3:1: admin: duplicate key (first defined at line 1)"},
        {"bad duration", "polling:\n  interval: fast\n",
         "c.yaml:2:13: polling.interval: expected a duration like 30s"},
        {"duration with a fraction", "launchdarkly:\n  request_timeout: 1.5s\n",
         "c.yaml:2:20: launchdarkly.request_timeout: expected a duration like 30s"},
        {"negative duration", "state:\n  dead_letter_retention: -1d\n",
         "c.yaml:2:26: state.dead_letter_retention: expected a duration like 30s"},
        {"duration given a mapping", "shutdown_grace: {seconds: 5}\n",
         "c.yaml:1:17: shutdown_grace: expected a duration like 30s"},
        {"empty value for a duration", "polling:\n  interval:\n  jitter: 0.1\n",
         "c.yaml:2:3: polling.interval: expected a duration like 30s"},
        {"not a number", "polling:\n  jitter: lots\n", "c.yaml:2:11: polling.jitter: expected a number"},
        {"not a whole number", "launchdarkly:\n  max_connections: 2.5\n",
         "c.yaml:2:20: launchdarkly.max_connections: expected a whole number"},
        {"substituted value is checked too", "launchdarkly:\n  max_connections: ${FOO}\n",
         "c.yaml:2:20: launchdarkly.max_connections: expected a whole number"},
        {"not a mapping", "polling: 5\n", "c.yaml:1:10: polling: expected a mapping"},
        {"not a list", "watches: {name: x}\n", "c.yaml:1:10: watches: expected a list"},
        {"watch entry not a mapping", "watches:\n  - vip-users\n", "c.yaml:2:5: watches[0]: expected a mapping"},
        {"not a boolean", "admin:\n  enable_reload: yes\n", "c.yaml:2:18: admin.enable_reload: expected true or false"},
        {"invalid YAML", "polling:\n  interval: 30s\n jitter: 0.1\n",
         "c.yaml:3:2: invalid YAML: end of map not found"},
        {"two documents", "polling: {}\n---\nadmin: {}\n", "c.yaml:3:1: invalid YAML: more than one document"},
        // yaml-cpp's LoadAll never returns for these (found by fuzzing).
        {"a stray comma", ",", "c.yaml:1:1: invalid YAML: unexpected ','"},
        {"a stray comma after ---", "---\n, polling: {}\n", "c.yaml:2:1: invalid YAML: unexpected ','"},
        {"empty file", "", "c.yaml:1:1: the file is empty (expected a mapping of settings)"},
        {"only comments", "# nothing here\n\n", "c.yaml:1:1: the file is empty (expected a mapping of settings)"},
        {"top level is a list", "- polling\n", "c.yaml:1:1: expected a mapping of settings at the top level"},
        {"top level is a scalar", "hello\n", "c.yaml:1:1: expected a mapping of settings at the top level"},
        {"missing project", "watches:\n  - environment: production\n    segment: s\n    import_id: i\n",
         "c.yaml:2:5: watches[0].project: missing required key"},
        {"missing import_id names the watch",
         "watches:\n  - name: vip\n    project: p\n    environment: e\n    segment: s\n",
         "c.yaml:2:5: watches[0].import_id: missing required key (watch \"vip\")"},
        {"missing webhook name", "events:\n  webhooks:\n    - url: https://h.example/\n",
         "c.yaml:3:7: events.webhooks[0].name: missing required key"},
        {"missing webhook url", "events:\n  webhooks:\n    - name: ops\n",
         "c.yaml:3:7: events.webhooks[0].url: missing required key (webhook \"ops\")"},
        {"unset variable", "launchdarkly:\n  base_url: ${LD_HOST}\n",
         "c.yaml:2:13: launchdarkly.base_url: environment variable LD_HOST is not set"},
        {"unset variable in a list", "watch_files: [a, \"${NOPE}/b\"]\n",
         "c.yaml:1:18: watch_files[1]: environment variable NOPE is not set"},
        {"unterminated variable", "state:\n  dir: ${FOO\n",
         "c.yaml:2:8: state.dir: unterminated ${ (write $${ for a literal ${)"},
        {"invalid variable name", "state:\n  dir: ${1X}\n",
         "c.yaml:2:8: state.dir: invalid environment variable name in ${1X}"},
        {"segment is ..", watch_a + "  - project: p\n    environment: e\n    segment: ..\n    import_id: i\n",
         "c.yaml:9:14: watches[1].segment: must match [A-Za-z0-9._-]+ and not be \".\" or \"..\""},
        {"project with a slash names the watch",
         "watches:\n  - name: vip\n    project: a/b\n    environment: e\n    segment: s\n    import_id: i\n",
         "c.yaml:3:14: watches[0].project: must match [A-Za-z0-9._-]+ and not be \".\" or \"..\" (watch \"vip\")"},
        {"environment is .", "watches:\n  - {project: p, environment: ., segment: s, import_id: i}\n",
         "c.yaml:2:31: watches[0].environment: must match [A-Za-z0-9._-]+ and not be \".\" or \"..\""},
        {"import_id with a space",
         "watches:\n  - project: p\n    environment: e\n    segment: s\n    import_id: \"12 34\"\n",
         "c.yaml:5:16: watches[0].import_id: must match [A-Za-z0-9._-]+"},
        {"empty segment", "watches:\n  - {project: p, environment: e, segment: \"\", import_id: i}\n",
         "c.yaml:2:43: watches[0].segment: must match [A-Za-z0-9._-]+ and not be \".\" or \"..\""},
        {"plain http base_url", "launchdarkly:\n  base_url: http://app.launchdarkly.com\n",
         "c.yaml:2:13: launchdarkly.base_url: must use https:// (plain http:// only for loopback hosts)"},
        {"base_url not a URL", "launchdarkly:\n  base_url: app.launchdarkly.com\n",
         "c.yaml:2:13: launchdarkly.base_url: expected an absolute http:// or https:// URL"},
        {"plain http webhook", "events:\n  webhooks:\n    - name: ops\n      url: http://hooks.example.com/x\n",
         "c.yaml:4:12: events.webhooks[0].url: must use https:// (plain http:// only for loopback hosts)"},
        {"jitter above 1", "polling:\n  jitter: 1.5\n", "c.yaml:2:11: polling.jitter: must be between 0 and 1"},
        {"jitter below 0", "polling:\n  jitter: -0.1\n", "c.yaml:2:11: polling.jitter: must be between 0 and 1"},
        {"max_connections 0", "launchdarkly:\n  max_connections: 0\n",
         "c.yaml:2:20: launchdarkly.max_connections: must be between 1 and 64"},
        {"max_connections 65", "launchdarkly:\n  max_connections: 65\n",
         "c.yaml:2:20: launchdarkly.max_connections: must be between 1 and 64"},
        {"multiplier below 1", "polling:\n  backoff: {initial: 1s, max: 5m, multiplier: 0.5}\n",
         "c.yaml:2:47: polling.backoff.multiplier: must be at least 1"},
        {"initial above max", "polling:\n  backoff:\n    initial: 10m\n    max: 5m\n",
         "c.yaml:3:14: polling.backoff.initial: must not exceed backoff.max (5m)"},
        {"negative rate", "launchdarkly:\n  max_requests_per_second: -1\n",
         "c.yaml:2:28: launchdarkly.max_requests_per_second: must be at least 0"},
        {"zero request timeout", "launchdarkly:\n  request_timeout: 0s\n",
         "c.yaml:2:20: launchdarkly.request_timeout: must be greater than 0s"},
        {"unknown status", "polling:\n  status_intervals:\n    complete: 1m\n",
         "c.yaml:3:5: polling.status_intervals.complete: unknown key (expected one of: preparing, "
         "pending_approval, ready, in_progress)"},
        {"status with a dash", "polling:\n  status_intervals:\n    in-progress: 1m\n",
         "c.yaml:3:5: polling.status_intervals.in-progress: unknown key (did you mean \"in_progress\"?)"},
        {"bad status interval", "polling:\n  status_intervals:\n    ready: soon\n",
         "c.yaml:3:12: polling.status_intervals.ready: expected a duration like 30s"},
        {"log format", "events:\n  log: {format: xml}\n", "c.yaml:2:17: events.log.format: expected text or json"},
        {"log level", "events:\n  log:\n    level: verbose\n",
         "c.yaml:3:12: events.log.level: expected trace, debug, info, warn or error"},
        {"unknown event type",
         "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n"
         "      types: [importwatch.watch.failed, importwatch.import.status_change]\n",
         "c.yaml:5:41: events.webhooks[0].types[1]: unknown event type \"importwatch.import.status_change\" "
         "(did you mean \"importwatch.import.status_changed\"?)"},
        {"webhook names an unknown watch",
         watch_a + "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n      watches: [vip, viq]\n",
         "c.yaml:11:22: events.webhooks[0].watches[1]: no watch named \"viq\" (did you mean \"vip\"?)"},
        {"duplicate watch name",
         watch_a + "  - name: vip\n    project: default\n    environment: production\n    segment: other\n"
                   "    import_id: abc-123\n",
         "c.yaml:7:5: watches[1]: duplicate watch name \"vip\" (first defined as watches[0] at 2:5)"},
        {"duplicate watch identity",
         watch_a + "  - {name: vip2, project: default, environment: production, segment: vip-users, import_id: abc-123}\n",
         "c.yaml:7:5: watches[1]: duplicate watch default/production/vip-users/abc-123 (first defined as "
         "watches[0] at 2:5, named \"vip\")"},
        {"duplicate default name",
         "watches:\n  - {project: p, environment: e, segment: s, import_id: i}\n  - {name: p/e/s/i, project: p, "
         "environment: e, segment: s, import_id: j}\n",
         "c.yaml:3:5: watches[1]: duplicate watch name \"p/e/s/i\" (first defined as watches[0] at 2:5)"},
        {"duplicate webhook name",
         "events:\n  webhooks:\n    - name: ops\n      url: https://a.example/\n    - name: ops\n"
         "      url: https://b.example/\n",
         "c.yaml:5:13: events.webhooks[1].name: duplicate webhook name \"ops\" (first defined at line 3)"},
        {"token_file and token_env", "launchdarkly:\n  token_file: /run/token\n  token_env: LD_TOKEN\n",
         "c.yaml:3:3: launchdarkly.token_env: set either token_file or token_env, not both"},
        {"secret_file and secret_env",
         "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n      secret_file: /s\n"
         "      secret_env: S\n",
         "c.yaml:6:7: events.webhooks[0].secret_env: set either secret_file or secret_env, not both"},
        {"token_env not a variable name", "launchdarkly:\n  token_env: LD-TOKEN\n",
         "c.yaml:2:14: launchdarkly.token_env: expected an environment variable name like LD_API_TOKEN"},
        {"labels not a mapping", watch_a + "    labels: [team]\n", "c.yaml:7:13: watches[0].labels: expected a mapping"},
        {"label value not a string", watch_a + "    labels:\n      team: [a, b]\n",
         "c.yaml:8:13: watches[0].labels.team: expected a string"},
        {"duplicate label", watch_a + "    labels: {team: a, team: b}\n",
         "c.yaml:7:23: watches[0].labels.team: duplicate key (first defined at line 7)"},
        // Labels become labels of importwatch_watch_info too.
        {"label key not a metric label name", watch_a + "    labels:\n      team: a\n      cost-center: x\n",
         "c.yaml:9:7: watches[0].labels.cost-center: not a metric label name: must match [a-zA-Z_][a-zA-Z0-9_]* "
         "and not start with \"__\""},
        {"label key starting with a digit", watch_a + "    labels: {1team: a}\n",
         "c.yaml:7:14: watches[0].labels.1team: not a metric label name: must match [a-zA-Z_][a-zA-Z0-9_]* "
         "and not start with \"__\""},
        {"label key reserved by Prometheus", watch_a + "    labels: {__name__: a}\n",
         "c.yaml:7:14: watches[0].labels.__name__: not a metric label name: must match [a-zA-Z_][a-zA-Z0-9_]* "
         "and not start with \"__\""},
        {"label key not ASCII", watch_a + "    labels: {\"\xc3\xa9quipe\": a}\n",
         "c.yaml:7:14: watches[0].labels.\xc3\xa9quipe: not a metric label name: must match [a-zA-Z_][a-zA-Z0-9_]* "
         "and not start with \"__\""},
        {"label key set by importwatch", watch_a + "    labels:\n      project: other\n",
         "c.yaml:8:7: watches[0].labels.project: importwatch sets this label itself (watch, project, environment, "
         "segment, import_id)"},
        {"label key watch", watch_a + "    labels: {watch: x}\n",
         "c.yaml:7:14: watches[0].labels.watch: importwatch sets this label itself (watch, project, environment, "
         "segment, import_id)"},
        {"reserved header",
         "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n"
         "      headers: {Webhook-Signature: forged}\n",
         "c.yaml:5:17: events.webhooks[0].headers.Webhook-Signature: is set by importwatch and cannot be configured"},
        {"reserved header User-Agent, any case",
         "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n"
         "      headers: {user-AGENT: mine}\n",
         "c.yaml:5:17: events.webhooks[0].headers.user-AGENT: is set by importwatch and cannot be configured"},
        {"header name with a space",
         "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n      headers: {\"X Team\": ops}\n",
         "c.yaml:5:17: events.webhooks[0].headers.X Team: not a valid header name"},
        {"headers differing in case",
         "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n"
         "      headers: {X-Team: a, x-team: b}\n",
         "c.yaml:5:28: events.webhooks[0].headers.x-team: duplicate header (names are case-insensitive)"},
        {"admin.listen without port", "admin:\n  listen: localhost\n",
         "c.yaml:2:11: admin.listen: expected HOST:PORT like 127.0.0.1:9464, or \"\" to disable"},
        {"empty watch name", watch_a + "  - {name: \"\", project: a, environment: b, segment: c, import_id: d}\n",
         "c.yaml:7:12: watches[1].name: must not be empty"},
        {"non-string key", "polling:\n  ? [a, b]\n  : 1\n", "c.yaml:2:5: polling: expected a string key"},
        {"bad proxy", "launchdarkly:\n  proxy: proxy.internal:3128\n",
         "c.yaml:2:10: launchdarkly.proxy: expected an absolute http:// or https:// URL"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) { BOOST_TEST(error_of(c.yaml) == c.message); }
    }
    BOOST_TEST(cases.size() >= 30u);
}

BOOST_AUTO_TEST_CASE(secrets_never_appear_in_errors) {
    // The token arrives through ${TOKEN}; whatever is wrong, the value is not quoted.
    auto message = error_of("launchdarkly:\n  max_connections: ${TOKEN}\n");
    BOOST_TEST(message.find("api-secret-1234") == std::string::npos);
    BOOST_TEST(message != "<parsed>");
    message = error_of("events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n"
                       "      headers: {Authorization: \"Bearer ${TOKEN}\\n\"}\n");
    BOOST_TEST(message == "c.yaml:5:32: events.webhooks[0].headers.Authorization: value must not contain "
                          "control characters");
}

// Credentials in a URL would be copied into logs and every event's `source`
// (importwatch never sends them): every URL key refuses them, naming the key
// and its place, and never quoting them.
BOOST_AUTO_TEST_CASE(urls_with_credentials_are_refused_in_every_url_key) {
    std::string const credentials_message = "must not contain a user name or password (user:password@ before the host)";
    struct case_ {
        char const* name;
        std::string yaml;
        std::string where;   // "file:line:col: key"
    };
    std::vector<case_> const cases = {
        {"base_url", "launchdarkly:\n  base_url: https://alice:hunter2@app.launchdarkly.com\n",
         "c.yaml:2:13: launchdarkly.base_url"},
        {"base_url, user only", "launchdarkly:\n  base_url: \"https://hunter2@app.launchdarkly.com/\"\n",
         "c.yaml:2:13: launchdarkly.base_url"},
        {"base_url, loopback http", "launchdarkly:\n  base_url: http://alice:hunter2@127.0.0.1:8080\n",
         "c.yaml:2:13: launchdarkly.base_url"},
        {"launchdarkly.proxy", "launchdarkly:\n  proxy: http://alice:hunter2@proxy.internal:3128\n",
         "c.yaml:2:10: launchdarkly.proxy"},
        {"webhook url",
         "events:\n  webhooks:\n    - name: ops\n      url: https://alice:hunter2@hooks.example/in\n",
         "c.yaml:4:12: events.webhooks[0].url"},
        {"webhook url, empty password",
         "events:\n  webhooks:\n    - name: ops\n      url: \"https://hunter2:@hooks.example/in\"\n",
         "c.yaml:4:12: events.webhooks[0].url"},
        {"webhook proxy",
         "events:\n  webhooks:\n    - name: ops\n      url: https://hooks.example/in\n"
         "      proxy: http://alice:hunter2@proxy.internal:3128\n",
         "c.yaml:5:14: events.webhooks[0].proxy"},
        {"substituted from the environment", "launchdarkly:\n  base_url: https://${CREDS}@app.launchdarkly.com\n",
         "c.yaml:2:13: launchdarkly.base_url"},
    };
    auto const env = env_of({{"CREDS", "alice:hunter2"}});
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            auto const message = error_of(c.yaml, env);
            BOOST_TEST(message == c.where + ": " + credentials_message);
            BOOST_TEST(message.find("hunter2") == std::string::npos);
            BOOST_TEST(message.find("alice") == std::string::npos);
        }
    }
    // An '@' after the host is part of the path or the query, not userinfo.
    auto cfg = parse_ok("launchdarkly:\n  base_url: https://ld.example/@team\n"
                        "events:\n  webhooks:\n    - name: ops\n      url: https://hooks.example/in?to=ops@example.com\n");
    BOOST_TEST(cfg.launchdarkly.base_url == "https://ld.example/@team");
}

BOOST_AUTO_TEST_CASE(defaults_when_only_watches_are_given) {
    auto cfg = parse_ok("watches:\n  - project: default\n    environment: production\n    segment: vip-users\n"
                        "    import_id: 1234a567-bcd8-9123-4567-abcd1234567f\n");
    BOOST_TEST(cfg.file == "c.yaml");
    BOOST_TEST(cfg.launchdarkly.base_url == "https://app.launchdarkly.com");
    BOOST_TEST(!cfg.launchdarkly.token_file.has_value());
    BOOST_TEST(cfg.launchdarkly.token_env == "LD_API_TOKEN");
    BOOST_TEST(cfg.launchdarkly.api_version == "20240415");
    BOOST_TEST(!cfg.launchdarkly.ca_file.has_value());
    BOOST_TEST(cfg.launchdarkly.request_timeout.count() == 10'000);
    BOOST_TEST(cfg.launchdarkly.max_connections == 2);
    BOOST_TEST(cfg.launchdarkly.max_requests_per_second == 2.0);
    BOOST_TEST(!cfg.launchdarkly.proxy.has_value());
    BOOST_TEST(cfg.polling.interval.count() == 30'000);
    BOOST_TEST(cfg.polling.status_intervals.empty());
    BOOST_TEST(cfg.polling.jitter == 0.1);
    BOOST_TEST((cfg.polling.stall_after == stall_thresholds{}));   // default_stall_after for every status
    BOOST_TEST((stall_threshold(cfg.watches[0], cfg.polling, "ready") == 6h));
    BOOST_TEST(cfg.polling.backoff.initial.count() == 1'000);
    BOOST_TEST(cfg.polling.backoff.max.count() == 300'000);
    BOOST_TEST(cfg.polling.backoff.multiplier == 2.0);
    BOOST_TEST_REQUIRE(cfg.watches.size() == 1u);
    auto const& w = cfg.watches[0];
    BOOST_TEST(w.name == "default/production/vip-users/1234a567-bcd8-9123-4567-abcd1234567f");
    BOOST_TEST(w.key.path() == w.name);
    BOOST_TEST(w.key.segment == "vip-users");
    BOOST_TEST(w.labels.empty());
    BOOST_TEST(w.origin == "c.yaml:2:5");
    BOOST_TEST((cfg.log.format == log_format::text));
    BOOST_TEST((cfg.log.level == log_level::info));
    BOOST_TEST(cfg.webhooks.empty());
    BOOST_TEST(cfg.watch_files.empty());
    BOOST_TEST(cfg.state.dir == "./state");
    BOOST_TEST(cfg.state.dead_letter_retention.count() == 30LL * 86'400'000);
    BOOST_TEST(cfg.admin.listen == "127.0.0.1:9464");
    BOOST_TEST(cfg.admin.enable_reload == false);
    BOOST_TEST(cfg.reload.automatic == true);
    BOOST_TEST(cfg.shutdown_grace.count() == 5'000);
    BOOST_TEST(config_warnings(cfg).empty());
}

BOOST_AUTO_TEST_CASE(empty_sections_mean_defaults) {
    auto cfg = parse_ok("launchdarkly:\npolling:\nwatches:\nevents:\n  webhooks:\n");
    BOOST_TEST(cfg.watches.empty());
    BOOST_TEST(cfg.webhooks.empty());
    BOOST_TEST(cfg.polling.interval.count() == 30'000);
}

BOOST_AUTO_TEST_CASE(webhook_defaults_and_values) {
    auto cfg = parse_ok(watch_a + "events:\n  webhooks:\n    - name: plain\n      url: http://127.0.0.1:8080/hook\n"
                                  "    - name: full\n      url: https://hooks.example.com/in?x=1\n"
                                  "      secret_env: OPS_SECRET\n      types: [importwatch.watch.failed]\n"
                                  "      watches: [vip]\n      headers: {X-Team: ops, X-Env: prod}\n"
                                  "      timeout: 3s\n      max_age: 1h\n      ca_file: /ca.pem\n"
                                  "      proxy: http://proxy.internal:3128\n");
    BOOST_TEST_REQUIRE(cfg.webhooks.size() == 2u);
    auto const& plain = cfg.webhooks[0];
    BOOST_TEST(plain.timeout.count() == 15'000);
    BOOST_TEST(plain.max_age.count() == 24 * 3'600'000);
    BOOST_TEST(!plain.secret_file.has_value());
    BOOST_TEST(!plain.secret_env.has_value());
    BOOST_TEST(plain.accepts("importwatch.import.stalled", "anything"));
    auto const& full = cfg.webhooks[1];
    BOOST_TEST(full.url == "https://hooks.example.com/in?x=1");
    BOOST_TEST(*full.secret_env == "OPS_SECRET");
    BOOST_TEST(full.timeout.count() == 3'000);
    BOOST_TEST(full.max_age.count() == 3'600'000);
    BOOST_TEST(*full.ca_file == "/ca.pem");
    BOOST_TEST(*full.proxy == "http://proxy.internal:3128");
    BOOST_TEST_REQUIRE(full.headers.size() == 2u);
    BOOST_TEST(full.headers[0].first == "X-Team");   // as written, not sorted
    BOOST_TEST(full.headers[1].second == "prod");
    BOOST_TEST(full.accepts("importwatch.watch.failed", "vip"));
    BOOST_TEST(!full.accepts("importwatch.watch.failed", "other"));
    BOOST_TEST(!full.accepts("importwatch.import.status_changed", "vip"));
}

BOOST_AUTO_TEST_CASE(webhook_formats) {
    auto cfg = parse_ok("events:\n  webhooks:\n"
                        "    - { name: plain, url: https://h.example/a }\n"
                        "    - { name: ce, url: https://h.example/b, format: cloudevents }\n"
                        "    - { name: chat, url: https://hooks.slack.com/services/T/B/x, format: slack }\n"
                        "    - name: custom\n      url: https://h.example/c\n      format: template\n"
                        "      template: '{{\"text\": \"{watch} is {status} in ${FOO}\"}}'\n");
    BOOST_TEST_REQUIRE(cfg.webhooks.size() == 4u);
    BOOST_TEST((cfg.webhooks[0].format == webhook_format::cloudevents));
    BOOST_TEST((cfg.webhooks[1].format == webhook_format::cloudevents));
    BOOST_TEST((cfg.webhooks[2].format == webhook_format::slack));
    BOOST_TEST((cfg.webhooks[3].format == webhook_format::body_template));
    BOOST_TEST(cfg.webhooks[3].body_template == R"({{"text": "{watch} is {status} in foo"}})");   // ${VAR} as anywhere
    BOOST_TEST(cfg.webhooks[2].body_template.empty());
}

BOOST_AUTO_TEST_CASE(webhook_format_errors_point_at_the_key) {
    std::string const hook = "events:\n  webhooks:\n    - name: ops\n      url: https://h.example/\n";
    struct case_ {
        char const* name;
        std::string yaml;
        std::string message;
    };
    std::vector<case_> const cases = {
        {"unknown format", hook + "      format: teams\n",
         "c.yaml:5:15: events.webhooks[0].format: expected cloudevents, slack or template"},
        {"template without format", hook + "      template: '{{\"s\": \"{status}\"}}'\n",
         "c.yaml:5:7: events.webhooks[0].template: only with format: template"},
        {"template with another format", hook + "      format: slack\n      template: '{{\"s\": \"{status}\"}}'\n",
         "c.yaml:6:7: events.webhooks[0].template: only with format: template"},
        {"format template without template", hook + "      format: template\n",
         "c.yaml:5:7: events.webhooks[0].template: missing: format template needs a template"},
        {"misspelt field", hook + "      format: template\n      template: '{{\"s\": \"{staus}\"}}'\n",
         "c.yaml:6:17: events.webhooks[0].template: unknown field {staus} (did you mean {status}?)"},
        {"unescaped brace", hook + "      format: template\n      template: '{\"s\": \"{status}\"}'\n",
         "c.yaml:6:17: events.webhooks[0].template: \"{\" starts a field (write {{ and }} for literal braces)"},
        {"not JSON", hook + "      format: template\n      template: '{status}'\n",
         "c.yaml:6:17: events.webhooks[0].template: does not make JSON for a sample event (syntax error); put each "
         "field inside a JSON string, e.g. \"{status}\""},
        {"template not a string", hook + "      format: template\n      template: [a]\n",
         "c.yaml:6:17: events.webhooks[0].template: expected a string"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) { BOOST_TEST(error_of(c.yaml) == c.message); }
    }
}

BOOST_AUTO_TEST_CASE(loopback_urls_may_use_http) {
    for (std::string host : {"127.0.0.1", "127.8.9.10", "[::1]", "localhost"}) {
        BOOST_TEST_CONTEXT(host) {
            auto cfg = parse_ok("launchdarkly:\n  base_url: http://" + host + ":8443/\n");
            BOOST_TEST(cfg.launchdarkly.base_url == "http://" + host + ":8443");   // trailing slash dropped
        }
    }
}

BOOST_AUTO_TEST_CASE(label_keys_are_metric_label_names) {
    auto cfg = parse_ok(watch_a + "    labels: {team: a, _private: b, Cost_Center2: c, name: d}\n");
    std::vector<std::pair<std::string, std::string>> expected = {
        {"Cost_Center2", "c"}, {"_private", "b"}, {"name", "d"}, {"team", "a"}};
    BOOST_TEST((cfg.watches[0].labels == expected));
    for (std::string_view ok : {"a", "_", "_a1", "A_b_9", "watchers"}) BOOST_TEST(is_metric_label_name(ok), ok);
    for (std::string_view bad : {"", "1a", "a-b", "a.b", "a b", "__x", "__", "\xc3\xa9t\xc3\xa9"})
        BOOST_TEST(!is_metric_label_name(bad), bad);
}

BOOST_AUTO_TEST_CASE(variables_are_substituted_and_dollar_dollar_escapes) {
    auto cfg = parse_ok(watch_a + "    labels:\n      plain: \"${FOO}-x\"\n      escaped: \"$${FOO}\"\n"
                                  "      dollar: a$b$$c\n      empty: \"[${EMPTY}]\"\n      twice: ${FOO}${FOO}\n"
                                  "launchdarkly:\n  max_connections: ${N}\n",
                        env_of({{"FOO", "foo"}, {"EMPTY", ""}, {"N", "7"}}));
    std::vector<std::pair<std::string, std::string>> expected = {
        {"dollar", "a$b$$c"}, {"empty", "[]"}, {"escaped", "${FOO}"}, {"plain", "foo-x"}, {"twice", "foofoo"}};
    BOOST_TEST((cfg.watches[0].labels == expected));   // also sorted by key
    BOOST_TEST(cfg.launchdarkly.max_connections == 7);
}

BOOST_AUTO_TEST_CASE(state_dir_default_comes_from_state_directory) {
    BOOST_TEST(parse_ok("polling: {}\n", env_of({{"STATE_DIRECTORY", "/var/lib/iw"}})).state.dir == "/var/lib/iw");
    // systemd joins several StateDirectory= entries with ':'.
    BOOST_TEST(parse_ok("polling: {}\n", env_of({{"STATE_DIRECTORY", "/var/lib/a:/var/lib/b"}})).state.dir ==
               "/var/lib/a");
    BOOST_TEST(parse_ok("state: {dir: /x}\n", env_of({{"STATE_DIRECTORY", "/var/lib/iw"}})).state.dir == "/x");
    BOOST_TEST(parse_ok("polling: {}\n", env_of({})).state.dir == "./state");
}

BOOST_AUTO_TEST_CASE(every_key_is_read) {
    auto cfg = parse_ok(
        "launchdarkly:\n  base_url: https://app.eu.launchdarkly.com\n  token_file: /run/t\n"
        "  api_version: beta\n  ca_file: /ca\n  request_timeout: 2s\n  max_connections: 64\n"
        "  max_requests_per_second: 0.5\n  proxy: http://p:3128\n"
        "polling:\n  interval: 1m\n  status_intervals: {pending_approval: 5m, preparing: 10s}\n  jitter: 0\n"
        "  stall_after: 0\n  backoff: {initial: 2s, max: 2s, multiplier: 1}\n"
        "events:\n  log: {format: json, level: warn}\n"
        "watch_files: [a/*.yaml, /b.yaml]\n"
        "state: {dir: /s, dead_letter_retention: 1d}\n"
        "admin: {listen: \"\", enable_reload: true}\n"
        "reload: {auto: false}\n"
        "shutdown_grace: 500ms\n");
    BOOST_TEST(cfg.launchdarkly.base_url == "https://app.eu.launchdarkly.com");
    BOOST_TEST(*cfg.launchdarkly.token_file == "/run/t");
    BOOST_TEST(cfg.launchdarkly.api_version == "beta");
    BOOST_TEST(*cfg.launchdarkly.ca_file == "/ca");
    BOOST_TEST(cfg.launchdarkly.request_timeout.count() == 2'000);
    BOOST_TEST(cfg.launchdarkly.max_connections == 64);
    BOOST_TEST(cfg.launchdarkly.max_requests_per_second == 0.5);
    BOOST_TEST(*cfg.launchdarkly.proxy == "http://p:3128");
    BOOST_TEST(cfg.polling.interval.count() == 60'000);
    BOOST_TEST(cfg.polling.status_intervals.size() == 2u);
    BOOST_TEST(cfg.polling.status_intervals.at("pending_approval").count() == 300'000);
    BOOST_TEST(cfg.polling.jitter == 0.0);
    BOOST_TEST((cfg.polling.stall_after == stall_thresholds{{}, 0ms}));
    BOOST_TEST(cfg.polling.backoff.initial.count() == 2'000);
    BOOST_TEST(cfg.polling.backoff.multiplier == 1.0);
    BOOST_TEST((cfg.log.format == log_format::json));
    BOOST_TEST((cfg.log.level == log_level::warn));
    BOOST_TEST((cfg.watch_files == std::vector<std::string>{"a/*.yaml", "/b.yaml"}));
    BOOST_TEST(cfg.state.dir == "/s");
    BOOST_TEST(cfg.state.dead_letter_retention.count() == 86'400'000);
    BOOST_TEST(cfg.admin.listen == "");
    BOOST_TEST(cfg.admin.enable_reload == true);
    BOOST_TEST(cfg.reload.automatic == false);
    BOOST_TEST(cfg.shutdown_grace.count() == 500);
}

BOOST_AUTO_TEST_CASE(stall_after_is_a_duration_or_a_map_by_status) {
    auto cfg = parse_ok("polling:\n  stall_after: 2h\n" + watch_a);
    BOOST_TEST((cfg.polling.stall_after == stall_thresholds{{}, 2h}));
    BOOST_TEST((cfg.watches[0].stall_after == stall_thresholds{}));

    cfg = parse_ok("polling:\n  stall_after: {pending_approval: 72h, in_progress: 30m, default: 6h}\n" + watch_a +
                   "    stall_after: 0\n"
                   "  - {name: b, project: p, environment: e, segment: s, import_id: i,\n"
                   "     stall_after: {ready: 5m, preparing: 1m}}\n");
    BOOST_TEST((cfg.polling.stall_after == stall_thresholds{{{"in_progress", 30min}, {"pending_approval", 72h}}, 6h}));
    BOOST_TEST((cfg.watches[0].stall_after == stall_thresholds{{}, 0ms}));
    BOOST_TEST((cfg.watches[1].stall_after == stall_thresholds{{{"preparing", 1min}, {"ready", 5min}}, std::nullopt}));

    // A map without default leaves the other statuses at their default.
    cfg = parse_ok("polling:\n  stall_after:\n    in_progress: ${FOO_DURATION}\n",
                   env_of({{"FOO_DURATION", "45m"}}));
    BOOST_TEST((cfg.polling.stall_after == stall_thresholds{{{"in_progress", 45min}}, std::nullopt}));

    // Watch files take the same forms.
    auto watches = parse_watch_file("watches:\n  - {project: p, environment: e, segment: s, import_id: i,\n"
                                    "     stall_after: {in_progress: 10m, default: 0}}\n",
                                    "w.yaml", test_env);
    BOOST_TEST_REQUIRE(watches.has_value());
    BOOST_TEST(((*watches)[0].stall_after == stall_thresholds{{{"in_progress", 10min}}, 0ms}));
}

BOOST_AUTO_TEST_CASE(stall_after_errors_point_at_the_key) {
    struct case_ {
        char const* name;
        std::string yaml;
        std::string message;
    };
    std::vector<case_> const cases = {
        {"misspelt status", "polling:\n  stall_after:\n    in_progres: 30m\n",
         "c.yaml:3:5: polling.stall_after.in_progres: unknown key (did you mean \"in_progress\"?)"},
        {"misspelt default", "polling:\n  stall_after: {defualt: 1h}\n",
         "c.yaml:2:17: polling.stall_after.defualt: unknown key (did you mean \"default\"?)"},
        {"not a status", "polling:\n  stall_after: {weekend: 1h}\n",
         "c.yaml:2:17: polling.stall_after.weekend: unknown key (expected one of: preparing, pending_approval, "
         "ready, in_progress, default)"},
        {"terminal status", "polling:\n  stall_after: {complete: 1h}\n",
         "c.yaml:2:17: polling.stall_after.complete: a complete import never stalls (expected one of: preparing, "
         "pending_approval, ready, in_progress, default)"},
        {"duplicate status", "polling:\n  stall_after: {ready: 1h, ready: 2h}\n",
         "c.yaml:2:28: polling.stall_after.ready: duplicate key (first defined at line 2)"},
        {"bad duration in the map", "polling:\n  stall_after: {ready: soon}\n",
         "c.yaml:2:24: polling.stall_after.ready: expected a duration like 30s"},
        {"empty value in the map", "polling:\n  stall_after:\n    ready:\n",
         "c.yaml:3:5: polling.stall_after.ready: expected a duration like 30s"},
        {"a list", "polling:\n  stall_after: [1h]\n",
         "c.yaml:2:16: polling.stall_after: expected a duration like 6h, or a mapping of statuses to durations"},
        {"empty value", "polling:\n  stall_after:\n  jitter: 0.1\n",
         "c.yaml:2:3: polling.stall_after: expected a duration like 6h, or a mapping of statuses to durations"},
        {"bad duration", "polling:\n  stall_after: forever\n",
         "c.yaml:2:16: polling.stall_after: expected a duration like 30s"},
        {"misspelt status on a watch", watch_a + "    stall_after: {pendng_approval: 1d}\n",
         "c.yaml:7:19: watches[0].stall_after.pendng_approval: unknown key (did you mean \"pending_approval\"?)"},
        {"misspelt key on a watch", watch_a + "    stal_after: 1h\n",
         "c.yaml:7:5: watches[0].stal_after: unknown key (did you mean \"stall_after\"?)"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) { BOOST_TEST(error_of(c.yaml) == c.message); }
    }
}

BOOST_AUTO_TEST_CASE(admin_listen_forms) {
    for (std::string listen : {"127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0", "localhost:80"}) {
        BOOST_TEST_CONTEXT(listen) { BOOST_TEST(parse_ok("admin: {listen: \"" + listen + "\"}\n").admin.listen == listen); }
    }
    for (std::string listen : {"9464", ":9464", "127.0.0.1:", "127.0.0.1:65536", "::1:9464", "host:port"}) {
        BOOST_TEST_CONTEXT(listen) { BOOST_TEST(error_of("admin: {listen: \"" + listen + "\"}\n") != "<parsed>"); }
    }    // "*" reads as "every address" elsewhere; here it would resolve to wherever
    // the resolver puts it, so it is refused with what to write instead.
    BOOST_TEST(error_of("admin:\n  listen: \"*:9464\"\n") ==
               "c.yaml:2:11: admin.listen: \"*\" is not a host: write 0.0.0.0:9464 (every IPv4 address) or "
               "[::]:9464 (every IPv6 address)");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(watch_files)

BOOST_AUTO_TEST_CASE(watch_file_holds_a_watches_list) {
    auto watches = parse_watch_file("watches:\n  - {name: a, project: p, environment: e, segment: s, import_id: i}\n"
                                    "  - {project: p, environment: e, segment: s, import_id: j, labels: {b: 2, a: 1}}\n",
                                    "/etc/w.d/x.yaml", test_env);
    BOOST_TEST_REQUIRE(watches.has_value());
    BOOST_TEST_REQUIRE(watches->size() == 2u);
    BOOST_TEST((*watches)[0].name == "a");
    BOOST_TEST((*watches)[1].name == "p/e/s/j");
    BOOST_TEST((*watches)[1].origin == "/etc/w.d/x.yaml:3:5");
    BOOST_TEST(((*watches)[1].labels.front() == std::pair<std::string, std::string>{"a", "1"}));
    // An empty drop-in adds nothing.
    auto empty = parse_watch_file("# no watches yet\n", "/etc/w.d/y.yaml", test_env);
    BOOST_TEST_REQUIRE(empty.has_value());
    BOOST_TEST(empty->empty());
}

// The parser builds its own tree from yaml-cpp's events: an alias reads as
// the anchored node (its place in messages included), as with YAML::Load.
BOOST_AUTO_TEST_CASE(an_alias_reads_as_the_anchored_node) {
    auto watches = parse_watch_file("watches:\n"
                                    "  - &w {project: p, environment: e, segment: s, import_id: i, labels: &l {team: a}}\n"
                                    "  - {project: p, environment: e, segment: t, import_id: i, labels: *l}\n",
                                    "w.yaml", test_env);
    BOOST_TEST_REQUIRE(watches.has_value(), (watches ? std::string() : watches.error()));
    BOOST_TEST_REQUIRE(watches->size() == 2u);
    BOOST_TEST(((*watches)[1].labels == std::vector<std::pair<std::string, std::string>>{{"team", "a"}}));
    BOOST_TEST(error_of("watches:\n"
                        "  - &w {project: p, environment: e, segment: s, import_id: i}\n"
                        "  - *w\n") ==
               "c.yaml:2:5: watches[1]: duplicate watch p/e/s/i (first defined as watches[0] at 2:5, named \"p/e/s/i\")");
    auto unknown = parse_watch_file("watches:\n  - {project: p, environment: e, segment: s, import_id: *nope}\n",
                                    "w.yaml", test_env);
    BOOST_TEST(unknown.error() == "w.yaml:2:57: invalid YAML: the referenced anchor is not defined");
}

BOOST_AUTO_TEST_CASE(watch_file_errors_name_the_file) {
    auto r = parse_watch_file("watches:\n  - {project: p, environment: e, segment: s}\n", "w.yaml", test_env);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error() == "w.yaml:2:5: watches[0].import_id: missing required key");
    r = parse_watch_file("polling: {}\n", "w.yaml", test_env);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error() == "w.yaml:1:1: polling: unknown key (expected one of: watches)");
    r = parse_watch_file("watches:\n  - {project: p, environment: e, segment: s, import_id: \"${X}\"}\n", "w.yaml",
                         test_env);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error() == "w.yaml:2:57: watches[0].import_id: environment variable X is not set");
}

BOOST_AUTO_TEST_CASE(duplicates_across_files_name_both_places) {
    auto cfg = parse_ok(watch_a + "watch_files: [/etc/w.d/*.yaml]\n");
    auto extra = parse_watch_file("watches:\n  - {name: other, project: p, environment: e, segment: s, import_id: i}\n"
                                  "  - {name: vip, project: p, environment: e, segment: s, import_id: j}\n",
                                  "/etc/w.d/x.yaml", test_env);
    BOOST_TEST_REQUIRE(extra.has_value());
    cfg.watches.insert(cfg.watches.end(), extra->begin(), extra->end());
    auto r = check_watch_set(cfg);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error() == "/etc/w.d/x.yaml:3:5: watches[1]: duplicate watch name \"vip\" (first defined as "
                            "watches[0] at c.yaml:2:5)");

    cfg.watches.pop_back();
    auto same_key = parse_watch_file("watches:\n  - {project: default, environment: production, segment: vip-users, "
                                     "import_id: abc-123}\n",
                                     "/etc/w.d/y.yaml", test_env);
    BOOST_TEST_REQUIRE(same_key.has_value());
    cfg.watches.push_back(same_key->front());
    r = check_watch_set(cfg);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error() == "/etc/w.d/y.yaml:2:5: watches[0]: duplicate watch default/production/vip-users/abc-123 "
                            "(first defined as watches[0] at c.yaml:2:5, named \"vip\")");
}

BOOST_AUTO_TEST_CASE(webhook_watches_may_live_in_watch_files) {
    // parse_config cannot know the watches of watch_files yet...
    auto cfg = parse_ok("watch_files: [w.d/*.yaml]\nevents:\n  webhooks:\n    - name: ops\n"
                        "      url: https://h.example/\n      watches: [from-file]\n");
    // ...check_watch_set, run after they were appended, does.
    auto r = check_watch_set(cfg);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error() == "c.yaml: events.webhooks[0].watches: no watch named \"from-file\" (webhook \"ops\")");
    auto extra = parse_watch_file("watches:\n  - {name: from-file, project: p, environment: e, segment: s, import_id: i}\n",
                                  "w.d/a.yaml", test_env);
    BOOST_TEST_REQUIRE(extra.has_value());
    cfg.watches = *extra;
    BOOST_TEST(check_watch_set(cfg).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(warnings)

BOOST_AUTO_TEST_CASE(rate_cap_off_or_interval_zero_against_launchdarkly) {
    auto cfg = parse_ok(watch_a + "launchdarkly: {max_requests_per_second: 0}\n");
    auto w = config_warnings(cfg);
    BOOST_TEST_REQUIRE(w.size() == 1u);
    BOOST_TEST(w[0].find("max_requests_per_second is 0") != std::string::npos);

    cfg = parse_ok(watch_a + "polling: {interval: 0s}\nlaunchdarkly: {base_url: https://app.launchdarkly.us}\n");
    w = config_warnings(cfg);
    BOOST_TEST_REQUIRE(w.size() == 1u);
    BOOST_TEST(w[0].find("polling.interval is 0s") != std::string::npos);

    // Against a simulator both are the point, not a mistake.
    cfg = parse_ok(watch_a + "polling: {interval: 0s}\n"
                             "launchdarkly: {base_url: \"http://127.0.0.1:8080\", max_requests_per_second: 0}\n");
    BOOST_TEST(config_warnings(cfg).empty());
    // A host that merely contains the name is not LaunchDarkly.
    cfg = parse_ok(watch_a + "launchdarkly: {base_url: \"https://launchdarkly.com.evil.example\", "
                             "max_requests_per_second: 0}\n");
    BOOST_TEST(config_warnings(cfg).empty());
}

BOOST_AUTO_TEST_CASE(capacity_warning_gives_the_effective_interval) {
    std::string yaml = "polling: {interval: 30s}\nwatches:\n";
    for (int i = 0; i < 120; ++i)
        yaml += "  - {project: p, environment: e, segment: s, import_id: id" + std::to_string(i) + "}\n";
    auto w = config_warnings(parse_ok(yaml));
    BOOST_TEST_REQUIRE(w.size() == 1u);
    BOOST_TEST(w[0] == "120 watches at 30s need 4.0 requests/s but max_requests_per_second is 2: each watch will "
                       "be polled about every 1m");

    // 60 watches at 30s need exactly 2/s: no warning.
    yaml = "polling: {interval: 30s}\nwatches:\n";
    for (int i = 0; i < 60; ++i)
        yaml += "  - {project: p, environment: e, segment: s, import_id: id" + std::to_string(i) + "}\n";
    BOOST_TEST(config_warnings(parse_ok(yaml)).empty());
    // 61 do not fit.
    yaml += "  - {project: p, environment: e, segment: s, import_id: one-more}\n";
    w = config_warnings(parse_ok(yaml));
    BOOST_TEST_REQUIRE(w.size() == 1u);
    BOOST_TEST(w[0] == "61 watches at 30s need 2.0 requests/s but max_requests_per_second is 2: each watch will "
                       "be polled about every 31s");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shipped_configs)

BOOST_AUTO_TEST_CASE(reference_config_parses_with_every_section_set) {
    auto cfg = parse_ok(importwatch::testing::read_source_file("config/reference.yaml"), env_of({}));
    BOOST_TEST(cfg.launchdarkly.base_url == "https://app.launchdarkly.com");
    BOOST_TEST(cfg.polling.status_intervals.size() == 4u);
    BOOST_TEST_REQUIRE(cfg.watches.size() == 1u);
    BOOST_TEST(cfg.watches[0].name == "vip-nightly");
    BOOST_TEST((cfg.polling.stall_after == stall_thresholds{{{"in_progress", 30min}, {"pending_approval", 72h}}, 6h}));
    BOOST_TEST((cfg.watches[0].stall_after == stall_thresholds{{{"in_progress", 10min}}, std::nullopt}));
    BOOST_TEST_REQUIRE(cfg.webhooks.size() == 1u);
    BOOST_TEST(cfg.webhooks[0].secret_env.has_value());
    BOOST_TEST(!cfg.watch_files.empty());
    BOOST_TEST(cfg.state.dir == "/var/lib/importwatch");
    BOOST_TEST(check_watch_set(cfg).has_value());
    BOOST_TEST(config_warnings(cfg).empty());
}

BOOST_AUTO_TEST_CASE(example_config_runs_on_defaults) {
    auto cfg = parse_ok(importwatch::testing::read_source_file("config/example.yaml"), env_of({}));
    BOOST_TEST(cfg.launchdarkly.base_url == "https://app.launchdarkly.com");
    BOOST_TEST(cfg.launchdarkly.token_env == "LD_API_TOKEN");
    BOOST_TEST(!cfg.launchdarkly.token_file.has_value());
    BOOST_TEST(cfg.watches.size() == 1u);
    BOOST_TEST(cfg.watch_files.empty());
    BOOST_TEST(config_warnings(cfg).empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(admin_security)

// A bcrypt hash of "s3cret" (cost 10); parsing only checks its form.
std::string const hash = "$2b$10$O9ygQGHBAf3dSs2cBFziRO2oNZ/2IOzKq.3.2W6bmUq9eAzi/oUKS";

BOOST_AUTO_TEST_CASE(tls_basic_auth_and_open_paths_are_read) {
    auto cfg = parse_ok("admin:\n"
                        "  listen: 0.0.0.0:9464\n"
                        "  enable_reload: true\n"
                        "  tls: {cert_file: /etc/a.crt, key_file: /etc/a.key, client_ca_file: /etc/ca.pem}\n"
                        "  basic_auth:\n"
                        "    users: {prometheus: \"" + hash + "\", ops: '" + hash + "'}\n"
                        "  open_paths: [/healthz, /metrics, /healthz]\n");
    BOOST_TEST_REQUIRE(cfg.admin.tls.has_value());
    BOOST_TEST(cfg.admin.tls->cert_file == "/etc/a.crt");
    BOOST_TEST(cfg.admin.tls->key_file == "/etc/a.key");
    BOOST_TEST(cfg.admin.tls->client_ca_file.value_or("") == "/etc/ca.pem");
    BOOST_TEST(cfg.admin.users.size() == 2u);
    BOOST_TEST(cfg.admin.users.at("prometheus") == hash);
    BOOST_TEST((cfg.admin.open_paths == std::vector<std::string>{"/healthz", "/metrics"}));
    BOOST_TEST(cfg.admin.beyond_loopback());
}

BOOST_AUTO_TEST_CASE(defaults_leave_probes_open_and_nothing_else_set) {
    auto cfg = parse_ok("admin: {listen: 127.0.0.1:9464}\n");
    BOOST_TEST(!cfg.admin.tls.has_value());
    BOOST_TEST(cfg.admin.users.empty());
    BOOST_TEST((cfg.admin.open_paths == std::vector<std::string>{"/healthz", "/readyz"}));
    BOOST_TEST(!cfg.admin.beyond_loopback());
    BOOST_TEST(parse_ok("admin: {open_paths: []}\n").admin.open_paths.empty());
}

BOOST_AUTO_TEST_CASE(bad_admin_keys_give_exact_messages) {
    struct case_ {
        char const* name;
        std::string yaml;
        std::string message;
    };
    std::vector<case_> const cases = {
        {"tls without key", "admin:\n  tls: {cert_file: /a.crt}\n", "c.yaml:2:8: admin.tls.key_file: missing required key"},
        {"tls without cert", "admin:\n  tls: {key_file: /a.key}\n", "c.yaml:2:8: admin.tls.cert_file: missing required key"},
        {"tls not a mapping", "admin:\n  tls: /a.crt\n",
         "c.yaml:2:8: admin.tls: expected a mapping with cert_file and key_file"},
        {"tls empty file name", "admin:\n  tls: {cert_file: \"\", key_file: /a.key}\n",
         "c.yaml:2:20: admin.tls.cert_file: must not be empty"},
        {"tls unknown key", "admin:\n  tls: {cert_file: /a, key_file: /b, ca_file: /c}\n",
         "c.yaml:2:38: admin.tls.ca_file: unknown key (expected one of: cert_file, key_file, client_ca_file)"},
        {"basic_auth without users", "admin:\n  basic_auth: {}\n",
         "c.yaml:2:15: admin.basic_auth.users: missing required key"},
        {"basic_auth not a mapping", "admin:\n  basic_auth: [ops]\n",
         "c.yaml:2:15: admin.basic_auth: expected a mapping with users"},
        {"basic_auth users empty", "admin:\n  basic_auth: {users: {}}\n",
         "c.yaml:2:23: admin.basic_auth.users: must name at least one user"},
        {"user with a colon", "admin:\n  basic_auth: {users: {\"a:b\": \"" + hash + "\"}}\n",
         "c.yaml:2:24: admin.basic_auth.users.a:b: a user name must be non-empty, without colons or control characters"},
        {"empty user name", "admin:\n  basic_auth: {users: {\"\": \"" + hash + "\"}}\n",
         "c.yaml:2:24: admin.basic_auth.users.: a user name must be non-empty, without colons or control characters"},
        {"unknown open path", "admin:\n  open_paths: [/healthz, /metric]\n",
         "c.yaml:2:26: admin.open_paths[1]: not an admin path \"/metric\" (did you mean \"/metrics\"?)"},
        {"far-off open path", "admin:\n  open_paths: [/admin/secret/thing]\n",
         "c.yaml:2:16: admin.open_paths[0]: not an admin path \"/admin/secret/thing\" (expected one of: "
         "/healthz, /readyz, /metrics, /v1/watches)"},
        {"reload cannot be opened", "admin:\n  open_paths: [/-/reload]\n",
         "c.yaml:2:16: admin.open_paths[0]: POST /-/reload changes the daemon and cannot be opened"},
        {"reload beyond loopback without auth", "admin:\n  listen: 0.0.0.0:9464\n  enable_reload: true\n",
         "c.yaml:3:18: admin.enable_reload: POST /-/reload on 0.0.0.0:9464 (beyond loopback) needs "
         "admin.basic_auth; or listen on 127.0.0.1"},
        {"reload beyond loopback with TLS only",
         "admin:\n  listen: \"[::]:9464\"\n  enable_reload: true\n  tls: {cert_file: /a, key_file: /b}\n",
         "c.yaml:3:18: admin.enable_reload: POST /-/reload on [::]:9464 (beyond loopback) needs "
         "admin.basic_auth; or listen on 127.0.0.1"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.name) { BOOST_TEST(error_of(c.yaml) == c.message); }
    }
}

BOOST_AUTO_TEST_CASE(a_password_instead_of_a_hash_is_refused_without_echoing_it) {
    for (std::string const value : {"hunter2-Plaintext", "$2y$10$tooshort", "$1$abcdefgh$0123456789012345678901",
                                    "$2y$03$O9ygQGHBAf3dSs2cBFziRO2oNZ/2IOzKq.3.2W6bmUq9eAzi/oUKS",
                                    "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}) {
        BOOST_TEST_CONTEXT(value) {
            auto error = error_of("admin:\n  basic_auth:\n    users: {ops: '" + value + "'}\n");
            BOOST_TEST(error.find("c.yaml:3:18: admin.basic_auth.users.ops: must be a bcrypt password hash") == 0u,
                       error);
            BOOST_TEST(error.find(value) == std::string::npos, error);
        }
    }
}

BOOST_AUTO_TEST_CASE(reload_beyond_loopback_is_fine_with_basic_auth_or_on_loopback) {
    for (std::string const listen : {"127.0.0.1:9464", "[::1]:9464", "localhost:9464", "127.3.4.5:0"}) {
        BOOST_TEST_CONTEXT(listen) {
            auto cfg = parse_ok("admin: {listen: \"" + listen + "\", enable_reload: true}\n");
            BOOST_TEST(!cfg.admin.beyond_loopback());
        }
    }
    parse_ok("admin:\n  listen: 0.0.0.0:9464\n  enable_reload: true\n  basic_auth: {users: {ops: '" + hash + "'}}\n");
}

BOOST_AUTO_TEST_CASE(warns_beyond_loopback_without_tls_or_basic_auth) {
    auto has_admin_warning = [](config const& cfg) {
        for (auto const& w : config_warnings(cfg))
            if (w.find("admin.listen is") == 0) return true;
        return false;
    };
    auto open = parse_ok("admin: {listen: 0.0.0.0:9464}\n");
    auto const w = config_warnings(open);
    BOOST_TEST_REQUIRE(w.size() == 1u);
    BOOST_TEST(w[0] == "admin.listen is 0.0.0.0:9464 (beyond loopback) without admin.tls or admin.basic_auth: "
                       "anyone who reaches the port can read /metrics and /v1/watches");
    BOOST_TEST(has_admin_warning(parse_ok("admin: {listen: \"pod.example:9464\"}\n")));
    BOOST_TEST(!has_admin_warning(parse_ok("admin: {listen: 127.0.0.1:9464}\n")));
    BOOST_TEST(!has_admin_warning(parse_ok("admin: {listen: \"\"}\n")));
    BOOST_TEST(!has_admin_warning(parse_ok("admin: {listen: 0.0.0.0:9464, tls: {cert_file: /a, key_file: /b}}\n")));
    BOOST_TEST(!has_admin_warning(
        parse_ok("admin: {listen: 0.0.0.0:9464, basic_auth: {users: {ops: '" + hash + "'}}}\n")));
}

BOOST_AUTO_TEST_SUITE_END()
