#include "common/daemon_harness.hpp"

#include <sstream>

#include <boost/json/parse.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace importwatch::testing {

// Standard Webhooks, written from the spec (not with importwatch's signing
// code): v1,base64(HMAC-SHA256(key, id "." timestamp "." body)), key = the
// base64-decoded part of the secret after "whsec_".
std::string base64(std::string const& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<unsigned char const*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string spec_signature(std::string const& key, std::string const& id, std::string const& ts,
                           std::string const& body) {
    auto const message = id + "." + ts + "." + body;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<unsigned char const*>(message.data()), message.size(), mac, &mac_len);
    return "v1," + base64(std::string(reinterpret_cast<char const*>(mac), mac_len));
}

// The webhook key (raw bytes, with a NUL and high bytes) and its secret.
namespace {
// Sized from the literal itself: it holds a NUL, so strlen would stop early.
constexpr char hook_key_bytes[] = "\x00\x17\xfe\xff importwatch test key \x80\x01";
} // namespace
std::string const hook_key(hook_key_bytes, sizeof hook_key_bytes - 1);
std::string const hook_secret = "whsec_" + base64(hook_key);

// A signature header may list several space-separated signatures.
bool signature_valid(std::string const& header, std::string const& id, std::string const& ts,
                     std::string const& body) {
    auto const want = spec_signature(hook_key, id, ts, body);
    std::istringstream in(header);
    for (std::string sig; in >> sig;)
        if (sig == want) return true;
    return false;
}



sim::planned_reply reply_with(int status, std::vector<std::pair<std::string, std::string>> headers) {
    net::server_reply r;
    r.status = status;
    r.headers = std::move(headers);
    r.body = "answer";
    return r;
}


std::map<std::string, std::string> daemon_env() {
    return {{"SIM_TOKEN", "sim-token"}, {"HOOK_SECRET", hook_secret}};
}


std::string daemon_config(std::string const& base_url, std::string const& ca_file, std::string const& state_dir,
                          config_options const& o) {
    std::string c = "launchdarkly:\n  base_url: " + base_url + "\n  ca_file: " + ca_file +
                    "\n  token_env: SIM_TOKEN\n  max_requests_per_second: 0\n"
                    "polling:\n  interval: " + o.interval +
                    "\n  jitter: 0\n  backoff: { initial: 100ms, max: 1s, multiplier: 2 }\n"
                    "events:\n  log: { format: json, level: info }\n";
    if (!o.webhooks.empty()) c += "  webhooks:\n" + o.webhooks;
    c += "state:\n  dir: " + state_dir + "\n  dead_letter_retention: " + o.retention + "\n";
    c += "admin:\n  listen: " + o.admin + "\n";
    c += "shutdown_grace: 1s\n";
    c += "watches:\n" + o.watches;
    return c;
}

std::string webhook_entry(std::string const& name, std::string const& url, std::string const& ca_file,
                          std::string const& timeout) {
    return "    - name: " + name + "\n      url: " + url + "\n      secret_env: HOOK_SECRET\n      ca_file: " +
           ca_file + "\n      timeout: " + timeout + "\n      headers: { X-Team: ops }\n";
}

// The CloudEvents the daemon logged (json log format), in order.
std::vector<json::object> logged_events(std::string const& log) {
    std::vector<json::object> out;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        if (ec || !v.is_object()) continue;
        if (auto const* e = v.as_object().if_contains("event"); e && e->is_object()) out.push_back(e->as_object());
    }
    return out;
}

// Runs `importwatch outbox --config CFG ARGS…` while pumping ioc; (exit code, stdout + stderr).
std::pair<int, std::string> outbox_tool(asio::io_context& ioc, std::string const& cfg,
                                        std::vector<std::string> args) {
    std::vector<std::string> argv{"outbox", "--config", cfg};
    argv.insert(argv.end(), args.begin(), args.end());
    child_process p(argv, daemon_env());
    run_until(ioc, [&] { return !p.running(); }, 30s);
    return {p.wait(0ms).value_or(-1), p.out() + p.err()};
}

// The rows of `outbox list` ("pending\t…" / "dead\t…").
std::vector<std::string> outbox_rows(std::string const& listing) {
    std::vector<std::string> out;
    std::istringstream in(listing);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("pending\t") || line.starts_with("dead\t")) out.push_back(line);
    return out;
}

// Pumps ioc until the child exits; its exit code (nullopt on timeout).
std::optional<int> pump_until_exit(asio::io_context& ioc, child_process& p, std::chrono::milliseconds timeout) {
    run_until(ioc, [&] { return !p.running(); }, timeout);
    return p.wait(0ms);
}

void pump_for(asio::io_context& ioc, std::chrono::milliseconds d) {
    run_until(ioc, [] { return false; }, d);
}

} // namespace importwatch::testing
