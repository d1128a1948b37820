// The admin port beyond loopback (docs/operations.md, "Securing the admin
// port"): basic auth on every path but the open ones, TLS that refuses plain
// HTTP, client certificates, `check`'s warning and error, and healthcheck
// over https. The daemon runs as a child process with no watches; requests
// are plain blocking exchanges on 127.0.0.1, with their own sockets.
#define BOOST_TEST_MODULE admin_security
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstring>
#include <regex>

#include <crypt.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>

#include "common/admin_client.hpp"
#include "common/testing.hpp"
#include "core/webhook_signature.hpp"

using namespace importwatch;
using namespace importwatch::testing;

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

constexpr char const* password = "correct horse battery staple";

/// A bcrypt hash made here with libxcrypt, at the lowest cost (4) to keep the
/// test quick; the daemon accepts any cost from 4 to 31.
std::string bcrypt_hash(std::string const& plain) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    BOOST_TEST_REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt) != nullptr);
    crypt_data data{};
    char const* hash = crypt_rn(plain.c_str(), salt, &data, sizeof data);
    BOOST_TEST_REQUIRE(hash != nullptr);
    BOOST_TEST_REQUIRE(hash[0] == '$');
    return hash;
}

std::string basic(std::string const& user, std::string const& pass) {
    return "Basic " + core::base64_encode(user + ":" + pass);
}

struct answer {
    int status = 0;
    std::string www_authenticate;
    std::string body;
};

/// One request on a new connection; nullopt when no HTTP answer came (refused,
/// closed, TLS handshake failed). `tls` null = plain HTTP.
std::optional<answer> ask(std::uint16_t port, std::string const& method, std::string const& target,
                          std::optional<std::string> const& authorization = std::nullopt,
                          std::shared_ptr<net::ssl::context> const& tls = nullptr) {
    boost::asio::io_context ioc;
    tcp::socket socket(ioc);
    boost::system::error_code ec;
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) return std::nullopt;
    timeval tv{5, 0};   // blocking reads and writes end within 5 s
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    http::request<http::empty_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(false);
    if (authorization) req.set(http::field::authorization, *authorization);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.skip(method == "HEAD");
    auto exchange = [&](auto& stream) -> std::optional<answer> {
        http::write(stream, req, ec);
        if (ec) return std::nullopt;
        http::read(stream, buffer, parser, ec);
        if (ec) return std::nullopt;
        auto const& res = parser.get();
        return answer{static_cast<int>(res.result_int()), std::string(res[http::field::www_authenticate]),
                      res.body()};
    };
    if (!tls) return exchange(socket);
    boost::asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls);
    SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
    stream.set_verify_callback(net::ssl::host_name_verification("localhost"));
    stream.handshake(net::ssl::stream_base::client, ec);
    if (ec) return std::nullopt;
    return exchange(stream);
}

int status_of(std::optional<answer> const& a) { return a ? a->status : -1; }

/// A client context trusting `ca` and presenting `client` (when given).
std::shared_ptr<net::ssl::context> client_context(net::certificate_authority const& ca,
                                                  std::optional<net::pem_pair> const& client = std::nullopt) {
    auto ctx = net::make_client_context_from_pem(ca.certificate_pem());
    BOOST_TEST_REQUIRE(ctx.has_value());
    if (client) {
        (*ctx)->use_certificate_chain(boost::asio::buffer(client->certificate));
        (*ctx)->use_private_key(boost::asio::buffer(client->private_key), net::ssl::context::pem);
    }
    return *ctx;
}

/// The value of one sample ("name{labels}") in a Prometheus text exposition.
std::optional<double> sample(std::string const& text, std::string const& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
}

struct fixture {
    temp_dir dir;
    test_pki pki;
    std::uint16_t port = free_port();
    std::string const hash = bcrypt_hash(password);

    fixture() { pki.write_files(dir); }

    std::string config(std::string const& admin) const {
        return "launchdarkly: {base_url: \"http://127.0.0.1:9\", token_env: TEST_TOKEN}\n"
               "state: {dir: " + (dir.path() / "state").string() + "}\n"
               "events: {log: {format: text, level: info}}\n"
               "admin:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n" + admin;
    }
    std::string tls_keys(std::string const& more = "") const {
        auto const d = dir.path().string();
        return "  tls: {cert_file: " + d + "/server.pem, key_file: " + d + "/server.key" + more + "}\n";
    }
    std::string users() const { return "  basic_auth: {users: {prometheus: '" + hash + "'}}\n"; }

    static std::map<std::string, std::string> env() {
        return {{"TEST_TOKEN", "test-token-123"}, {"NOTIFY_SOCKET", ""}, {"WATCHDOG_USEC", ""}, {"WATCHDOG_PID", ""}};
    }

    std::unique_ptr<child_process> start(std::string const& admin, std::shared_ptr<net::ssl::context> tls = nullptr) {
        auto cfg = dir.write("config.yaml", config(admin));
        auto daemon = std::make_unique<child_process>(std::vector<std::string>{"run", "--config", cfg}, env());
        bool up = eventually([&] { return !daemon->running() || status_of(ask(port, "GET", "/healthz", basic("prometheus", password), tls)) == 200; }, 30s);
        BOOST_TEST_REQUIRE((up && daemon->running()), "admin server not up; stderr:\n" << daemon->err());
        return daemon;
    }
};

std::size_t count(std::string const& haystack, std::string const& needle) {
    std::size_t n = 0;
    for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
    return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(basic_auth)

BOOST_FIXTURE_TEST_CASE(every_path_but_the_open_ones_needs_the_right_credentials, fixture) {
    auto daemon = start(users());
    auto const right = basic("prometheus", password);

    for (std::string const target : {"/v1/watches", "/metrics", "/v1/watches?x=1", "/nowhere"}) {
        BOOST_TEST_CONTEXT(target) {
            auto none = ask(port, "GET", target);
            BOOST_TEST(status_of(none) == 401);
            if (none) BOOST_TEST(none->www_authenticate == "Basic realm=\"importwatch\"");
            BOOST_TEST(status_of(ask(port, "HEAD", target)) == 401);
            BOOST_TEST(status_of(ask(port, "GET", target, basic("prometheus", "wrong password"))) == 401);
            BOOST_TEST(status_of(ask(port, "GET", target, basic("nobody", password))) == 401);
            BOOST_TEST(status_of(ask(port, "GET", target, "Bearer " + std::string(password))) == 401);
            BOOST_TEST(status_of(ask(port, "GET", target, "Basic !!!")) == 401);
        }
    }
    BOOST_TEST(status_of(ask(port, "POST", "/-/reload")) == 401);

    auto watches = ask(port, "GET", "/v1/watches", right);
    BOOST_TEST(status_of(watches) == 200);
    if (watches) BOOST_TEST(watches->body == "[]");
    BOOST_TEST(status_of(ask(port, "HEAD", "/v1/watches", right)) == 200);
    BOOST_TEST(status_of(ask(port, "GET", "/nowhere", right)) == 404);
    BOOST_TEST(status_of(ask(port, "POST", "/-/reload", right)) == 403);   // enable_reload is off

    // Probes stay open by default.
    BOOST_TEST(status_of(ask(port, "GET", "/healthz")) == 200);
    BOOST_TEST(status_of(ask(port, "HEAD", "/healthz")) == 200);
    BOOST_TEST(status_of(ask(port, "GET", "/readyz")) == 200);

    // Counted by reason; cached verifications answer as the first did.
    for (int i = 0; i < 3; ++i) BOOST_TEST(status_of(ask(port, "GET", "/metrics", right)) == 200);
    auto metrics = ask(port, "GET", "/metrics", right);
    BOOST_TEST_REQUIRE(status_of(metrics) == 200);
    BOOST_TEST(sample(metrics->body, "importwatch_admin_auth_failures_total{reason=\"missing\"}").value_or(-1) == 9);
    BOOST_TEST(sample(metrics->body, "importwatch_admin_auth_failures_total{reason=\"invalid\"}").value_or(-1) == 16);

    // Logged, throttled, and never with the password, the header or the user.
    daemon->signal(SIGTERM);
    BOOST_TEST(daemon->wait(10s).value_or(-1) == 0);
    auto const log = daemon->err();
    BOOST_TEST(count(log, "without credentials") == 1u, log);
    BOOST_TEST(count(log, "with wrong credentials") == 1u, log);
    BOOST_TEST(log.find(password) == std::string::npos);
    BOOST_TEST(log.find("wrong password") == std::string::npos);
    BOOST_TEST(log.find(core::base64_encode(std::string("prometheus:") + password)) == std::string::npos);
    BOOST_TEST(log.find("nobody") == std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(open_paths_empty_closes_the_probes_too, fixture) {
    auto daemon = start(users() + "  open_paths: []\n");
    BOOST_TEST(status_of(ask(port, "GET", "/healthz")) == 401);
    BOOST_TEST(status_of(ask(port, "GET", "/readyz")) == 401);
    BOOST_TEST(status_of(ask(port, "GET", "/readyz", basic("prometheus", password))) == 200);
}

BOOST_FIXTURE_TEST_CASE(open_paths_may_open_metrics, fixture) {
    auto daemon = start(users() + "  open_paths: [/metrics]\n");
    BOOST_TEST(status_of(ask(port, "GET", "/metrics")) == 200);
    BOOST_TEST(status_of(ask(port, "GET", "/healthz")) == 401);
    BOOST_TEST(status_of(ask(port, "GET", "/v1/watches")) == 401);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tls)

BOOST_FIXTURE_TEST_CASE(plain_http_is_refused_and_https_served, fixture) {
    auto const trusted = client_context(pki.ca);
    auto daemon = start(tls_keys() + users(), trusted);

    // Plain HTTP gets no HTTP answer at all: the handshake fails, the
    // connection closes.
    BOOST_TEST(!ask(port, "GET", "/healthz").has_value());
    BOOST_TEST(!ask(port, "GET", "/v1/watches", basic("prometheus", password)).has_value());
    BOOST_TEST(status_of(ask(port, "GET", "/healthz", std::nullopt, trusted)) == 200);
    BOOST_TEST(status_of(ask(port, "GET", "/v1/watches", std::nullopt, trusted)) == 401);
    BOOST_TEST(status_of(ask(port, "GET", "/v1/watches", basic("prometheus", password), trusted)) == 200);

    // A client that does not trust the CA refuses the server.
    net::certificate_authority stranger("some other CA");
    BOOST_TEST(!ask(port, "GET", "/healthz", std::nullopt, client_context(stranger)).has_value());

    auto metrics = ask(port, "GET", "/metrics", basic("prometheus", password), trusted);
    BOOST_TEST_REQUIRE(status_of(metrics) == 200);
    BOOST_TEST(sample(metrics->body, "importwatch_admin_tls_handshake_failures_total").value_or(0) >= 2);
}

BOOST_FIXTURE_TEST_CASE(a_client_ca_requires_a_certificate_it_signed, fixture) {
    net::certificate_authority clients("importwatch test client CA");
    dir.write("clients.pem", clients.certificate_pem());
    net::certificate_authority stranger("some other CA");
    auto const with_cert = client_context(pki.ca, clients.issue_client_certificate("prometheus"));
    auto daemon = start(tls_keys(", client_ca_file: " + (dir.path() / "clients.pem").string()), with_cert);

    BOOST_TEST(status_of(ask(port, "GET", "/v1/watches", std::nullopt, with_cert)) == 200);
    // No certificate, or one from another CA: the handshake fails, even for probes.
    BOOST_TEST(!ask(port, "GET", "/healthz", std::nullopt, client_context(pki.ca)).has_value());
    BOOST_TEST(!ask(port, "GET", "/healthz", std::nullopt,
                    client_context(pki.ca, stranger.issue_client_certificate("prometheus")))
                    .has_value());
    BOOST_TEST(!ask(port, "GET", "/healthz").has_value());
}

BOOST_FIXTURE_TEST_CASE(reload_reads_the_certificate_again_and_keeps_the_old_one_when_broken, fixture) {
    auto daemon = start(tls_keys(), client_context(pki.ca));

    // A broken certificate: the reload is rejected, the old one still serves.
    dir.write("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    auto const d = dir.path().string();
    dir.write("config.yaml", config("  tls: {cert_file: " + d + "/broken.pem, key_file: " + d + "/server.key}\n"));
    daemon->signal(SIGHUP);
    BOOST_TEST_REQUIRE(eventually([&] { return daemon->err().find("reload rejected") != std::string::npos; }, 10s),
                       daemon->err());
    BOOST_TEST(daemon->err().find("admin.tls") != std::string::npos, daemon->err());
    BOOST_TEST(status_of(ask(port, "GET", "/healthz", std::nullopt, client_context(pki.ca))) == 200);

    // A renewed certificate from another CA: new connections get it.
    test_pki renewed;
    dir.write("renewed.pem", renewed.server.certificate);
    dir.write("renewed.key", renewed.server.private_key);
    dir.write("config.yaml", config("  tls: {cert_file: " + d + "/renewed.pem, key_file: " + d + "/renewed.key}\n"));
    daemon->signal(SIGHUP);
    BOOST_TEST(eventually([&] { return status_of(ask(port, "GET", "/healthz", std::nullopt, client_context(renewed.ca))) == 200; }, 10s),
               daemon->err());
    BOOST_TEST(!ask(port, "GET", "/healthz", std::nullopt, client_context(pki.ca)).has_value());
}

BOOST_FIXTURE_TEST_CASE(healthcheck_verifies_https_against_its_ca_file, fixture) {
    auto daemon = start(tls_keys(), client_context(pki.ca));
    auto const url = "https://127.0.0.1:" + std::to_string(port) + "/healthz";
    child_process trusted({"healthcheck", "--url", url, "--ca-file", (dir.path() / "ca.pem").string()});
    BOOST_TEST(trusted.wait(15s).value_or(-1) == 0, trusted.err());
    // The system store does not know the test CA: verification is never skipped.
    child_process system_store({"healthcheck", "--url", url});
    BOOST_TEST(system_store.wait(15s).value_or(-1) == 1);
    BOOST_TEST(system_store.err().find("certificate verify failed") != std::string::npos, system_store.err());
    // Plain HTTP against the TLS port fails too.
    child_process plain({"healthcheck", "--url", "http://127.0.0.1:" + std::to_string(port) + "/healthz"});
    BOOST_TEST(plain.wait(15s).value_or(-1) == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(check)

BOOST_FIXTURE_TEST_CASE(warns_beyond_loopback_without_tls_or_auth_and_fails_with_open_reload, fixture) {
    auto const base = "launchdarkly: {token_env: TEST_TOKEN}\nstate: {dir: " + (dir.path() / "state").string() + "}\n";

    auto open = dir.write("open.yaml", base + "admin: {listen: 0.0.0.0:9464}\n");
    child_process warned({"check", "--config", open}, env());
    BOOST_TEST(warned.wait(15s).value_or(-1) == 0, warned.err());
    BOOST_TEST(warned.err().find("warning: admin.listen is 0.0.0.0:9464 (beyond loopback) without admin.tls or "
                                 "admin.basic_auth") != std::string::npos,
               warned.err());

    auto with_auth = dir.write("auth.yaml", base + "admin:\n  listen: 0.0.0.0:9464\n  enable_reload: true\n" + users());
    child_process quiet({"check", "--config", with_auth}, env());
    BOOST_TEST(quiet.wait(15s).value_or(-1) == 0, quiet.err());
    BOOST_TEST(quiet.err().find("admin.") == std::string::npos, quiet.err());

    // The same rule in check and run: exit 2, naming the file, line and key.
    auto reload = dir.write("reload.yaml", base + "admin:\n  listen: 0.0.0.0:9464\n  enable_reload: true\n");
    std::string const message = reload + ":5:18: admin.enable_reload: POST /-/reload on 0.0.0.0:9464 (beyond "
                                         "loopback) needs admin.basic_auth";
    child_process failed({"check", "--config", reload}, env());
    BOOST_TEST(failed.wait(15s).value_or(-1) == 2);
    BOOST_TEST(failed.err().find(message) != std::string::npos, failed.err());
    child_process refused({"run", "--config", reload}, env());
    BOOST_TEST(refused.wait(15s).value_or(-1) == 2);
    BOOST_TEST(refused.err().find(message) != std::string::npos, refused.err());
}

BOOST_FIXTURE_TEST_CASE(tls_files_missing_warn_and_broken_fail, fixture) {
    auto const base = "launchdarkly: {token_env: TEST_TOKEN}\nstate: {dir: " + (dir.path() / "state").string() + "}\n";
    auto missing = dir.write("missing.yaml", base + "admin:\n  tls: {cert_file: /nonexistent/a.pem, key_file: /nonexistent/a.key}\n");
    child_process warned({"check", "--config", missing}, env());
    BOOST_TEST(warned.wait(15s).value_or(-1) == 0, warned.err());
    BOOST_TEST(warned.err().find("warning: admin.tls.cert_file: cannot read /nonexistent/a.pem") != std::string::npos,
               warned.err());

    // The key of another certificate: run would fail, so check does.
    test_pki other;
    dir.write("other.key", other.server.private_key);
    auto const d = dir.path().string();
    auto mismatched = dir.write("mismatch.yaml", base + "admin:\n  tls: {cert_file: " + d + "/server.pem, key_file: " + d + "/other.key}\n");
    child_process failed({"check", "--config", mismatched}, env());
    BOOST_TEST(failed.wait(15s).value_or(-1) == 2);
    BOOST_TEST(failed.err().find("admin.tls") != std::string::npos, failed.err());
    // The key's text never reaches the output.
    BOOST_TEST(failed.err().find("PRIVATE KEY") == std::string::npos, failed.err());
}

BOOST_AUTO_TEST_SUITE_END()
