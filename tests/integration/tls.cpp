#define BOOST_TEST_MODULE tls
#include <boost/test/unit_test.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/ssl.h>

#include "common/testing.hpp"
#include "core/url.hpp"
#include "net/certificate_authority.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "net/tls.hpp"

namespace iw = importwatch;
namespace net = importwatch::net;
namespace core = importwatch::core;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using iw::testing::run_until;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::shared_ptr<ssl::context> server_context(net::pem_pair const& cert) {
    auto ctx = net::make_server_context_from_pem(cert.certificate, cert.private_key);
    BOOST_REQUIRE_MESSAGE(ctx.has_value(), (ctx ? std::string() : ctx.error()));
    return *ctx;
}

struct fixture {
    asio::io_context ioc;
    iw::testing::test_pki pki;
    std::unique_ptr<net::http_server> server;

    std::uint16_t serve(std::shared_ptr<ssl::context> tls) {
        net::server_options o;
        o.tls = std::move(tls);
        o.read_timeout = 2s;
        server = std::make_unique<net::http_server>(
            ioc.get_executor(), o, [](net::server_request) -> asio::awaitable<net::server_reply> {
                net::server_reply r;
                r.body = "secret";
                co_return r;
            });
        auto ok = server->start();
        BOOST_REQUIRE_MESSAGE(ok.has_value(), (ok ? std::string() : ok.error()));
        return server->port();
    }

    core::http_outcome get(std::string host, std::uint16_t port, std::shared_ptr<ssl::context> trust) {
        net::client_options o;
        o.origin = core::url{"https", std::move(host), std::to_string(port), "/", false};
        o.tls = std::move(trust);
        o.timeout = 3s;
        net::http_client client(ioc.get_executor(), o);
        std::optional<core::http_outcome> out;
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                // A named request: GCC 12 destroys a prvalue argument inside
                // a co_await expression twice.
                net::client_request req;
                out = co_await client.send(req);
            },
            [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
        BOOST_REQUIRE(run_until(ioc, [&] { return out.has_value(); }, 5s));
        return std::move(*out);
    }
};

std::string describe(core::http_outcome const& o) {
    return o ? "status " + std::to_string(o->status) + " " + o->body : "failure: " + o.error().message;
}

bool contains(std::string const& s, std::string const& part) { return s.find(part) != std::string::npos; }

} // namespace

BOOST_FIXTURE_TEST_SUITE(tls, fixture)

BOOST_AUTO_TEST_CASE(certificate_from_the_trusted_ca_works_by_ip_and_by_name) {
    auto port = serve(pki.server_context());
    for (std::string host : {"127.0.0.1", "localhost"}) {
        BOOST_TEST_CONTEXT(host) {
            auto out = get(host, port, pki.client_context());
            BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
            BOOST_TEST(out->body == "secret");
        }
    }
}

BOOST_AUTO_TEST_CASE(certificate_for_another_ip_is_refused) {
    auto port = serve(server_context(pki.ca.issue_server_certificate({"other.example", "127.0.0.2"})));
    auto out = get("127.0.0.1", port, pki.client_context());
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST((out.error().kind == core::failure_kind::network));
    BOOST_TEST(out.error().message.starts_with("tls handshake: certificate verify failed"), out.error().message);
    BOOST_TEST(contains(out.error().message, "IP address mismatch"), out.error().message);
}

BOOST_AUTO_TEST_CASE(certificate_for_another_host_name_is_refused) {
    auto port = serve(server_context(pki.ca.issue_server_certificate({"other.example", "127.0.0.1"})));
    // 127.0.0.1 is in the certificate, but we ask for "localhost".
    auto out = get("localhost", port, pki.client_context());
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST(out.error().message.starts_with("tls handshake: certificate verify failed"), out.error().message);
    BOOST_TEST(contains(out.error().message, "ostname mismatch"), out.error().message);
}

BOOST_AUTO_TEST_CASE(certificate_from_an_unknown_ca_is_refused) {
    net::certificate_authority stranger("someone else");
    auto port = serve(server_context(stranger.issue_server_certificate({"localhost", "127.0.0.1"})));
    auto out = get("127.0.0.1", port, pki.client_context());
    BOOST_REQUIRE(!out.has_value());
    BOOST_TEST(out.error().message.starts_with("tls handshake: certificate verify failed"), out.error().message);
    // The system store does not know our CA either.
    auto system = net::make_client_context(std::nullopt);
    BOOST_REQUIRE(system.has_value());
    auto via_system = get("127.0.0.1", port, *system);
    BOOST_REQUIRE(!via_system.has_value());
    BOOST_TEST(contains(via_system.error().message, "verify"), via_system.error().message);
}

BOOST_AUTO_TEST_CASE(tls_1_1_client_is_refused_and_tls_1_2_accepted) {
    auto port = serve(pki.server_context());
    // A raw client allowed to speak old protocols (security level 0 so that
    // OpenSSL's own client side does not refuse TLS 1.1 first).
    auto handshake = [&](int max_version) {
        ssl::context ctx(ssl::context::tls_client);
        SSL_CTX_set_security_level(ctx.native_handle(), 0);
        SSL_CTX_set_cipher_list(ctx.native_handle(), "DEFAULT:@SECLEVEL=0");
        SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_VERSION);
        SSL_CTX_set_max_proto_version(ctx.native_handle(), max_version);
        ctx.set_verify_mode(ssl::verify_none);   // this raw client only probes the protocol floor
        std::optional<boost::system::error_code> result;
        ssl::stream<tcp::socket> stream(ioc, ctx);
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                auto [cec] = co_await stream.next_layer().async_connect(
                    tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), use_tuple);
                if (cec) {
                    result = cec;
                    co_return;
                }
                auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
                result = hec;
            },
            [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
        BOOST_REQUIRE(run_until(ioc, [&] { return result.has_value(); }, 5s));
        return *result;
    };
    auto old = handshake(TLS1_1_VERSION);
    BOOST_TEST(old.failed(), "a TLS 1.1 handshake succeeded");
    auto current = handshake(TLS1_2_VERSION);
    BOOST_TEST(!current.failed(), current.message());
}

BOOST_AUTO_TEST_CASE(contexts_from_files) {
    iw::testing::temp_dir dir;
    auto ca_path = pki.write_files(dir);
    auto server_ctx = net::make_server_context((dir.path() / "server.pem").string(),
                                               (dir.path() / "server.key").string());
    BOOST_REQUIRE_MESSAGE(server_ctx.has_value(), (server_ctx ? std::string() : server_ctx.error()));
    auto port = serve(*server_ctx);
    auto client_ctx = net::make_client_context(ca_path);
    BOOST_REQUIRE_MESSAGE(client_ctx.has_value(), (client_ctx ? std::string() : client_ctx.error()));
    auto out = get("localhost", port, *client_ctx);
    BOOST_REQUIRE_MESSAGE(out.has_value(), describe(out));
    BOOST_TEST(out->body == "secret");
}

BOOST_AUTO_TEST_CASE(file_errors_name_the_stage_and_file) {
    iw::testing::temp_dir dir;
    auto missing = (dir.path() / "nope.pem").string();
    auto no_ca = net::make_client_context(missing);
    BOOST_REQUIRE(!no_ca.has_value());
    BOOST_TEST(no_ca.error() == "ca_file " + missing + ": no such file");

    auto garbage = dir.write("garbage.pem", "not a certificate\n");
    auto bad_ca = net::make_client_context(garbage);
    BOOST_REQUIRE(!bad_ca.has_value());
    BOOST_TEST(bad_ca.error().starts_with("ca_file " + garbage + ": "), bad_ca.error());

    BOOST_TEST(!net::make_client_context_from_pem("garbage").has_value());

    auto cert = dir.write("server.pem", pki.server.certificate);
    auto other_key = dir.write("other.key", pki.ca.issue_server_certificate({"localhost"}).private_key);
    auto mismatch = net::make_server_context(cert, other_key);
    BOOST_REQUIRE(!mismatch.has_value());
    BOOST_TEST(mismatch.error().starts_with("tls key " + other_key + ": "), mismatch.error());
    BOOST_TEST(contains(mismatch.error(), "mismatch"), mismatch.error());

    auto no_key = net::make_server_context(cert, missing);
    BOOST_REQUIRE(!no_key.has_value());
    BOOST_TEST(no_key.error() == "tls key " + missing + ": no such file");
}

BOOST_AUTO_TEST_CASE(issued_certificates_are_distinct_and_chain_to_the_ca) {
    auto a = pki.ca.issue_server_certificate({"localhost"});
    auto b = pki.ca.issue_server_certificate({"localhost"});
    BOOST_TEST(a.certificate != b.certificate);
    BOOST_TEST(a.private_key != b.private_key);
    BOOST_TEST(contains(a.certificate, "-----BEGIN CERTIFICATE-----"));
    BOOST_TEST(contains(a.private_key, "PRIVATE KEY-----"));
    net::certificate_authority other;
    BOOST_TEST(other.certificate_pem() != pki.ca.certificate_pem());
}

BOOST_AUTO_TEST_SUITE_END()
