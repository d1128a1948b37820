#include "net/tls.hpp"

#include <filesystem>
#include <system_error>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace importwatch::net {

namespace {

using context_ptr = std::shared_ptr<ssl::context>;

// OpenSSL stacks errors per thread; a failed load leaves them behind and they
// would surface in the next unrelated error message.
void clear_openssl_errors() { ERR_clear_error(); }

std::string describe(boost::system::error_code const& ec) {
    std::string m = ec.message();
    return m.empty() ? "error " + std::to_string(ec.value()) : m;
}

core::expected<void> check_file(std::string const& stage, std::string const& path) {
    std::error_code fec;
    auto st = std::filesystem::status(path, fec);
    if (!std::filesystem::exists(st)) return core::fail(stage + " " + path + ": no such file");
    if (!std::filesystem::is_regular_file(st)) return core::fail(stage + " " + path + ": not a regular file");
    return {};
}

core::expected<context_ptr> new_context(ssl::context::method method, int min_version) {
    auto ctx = std::make_shared<ssl::context>(method);
    // TLS 1.2 is the floor everywhere; OpenSSL 3 defaults already say
    // so, but the system configuration could lower it.
    if (SSL_CTX_set_min_proto_version(ctx->native_handle(), min_version) != 1) {
        clear_openssl_errors();
        return core::fail("tls: cannot set the minimum protocol version");
    }
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_compression,
                     ec);
    if (ec) return core::fail("tls: options: " + describe(ec));
    return ctx;
}

core::expected<context_ptr> new_client_context() {
    auto ctx = new_context(ssl::context::tls_client, TLS1_2_VERSION);
    if (!ctx) return ctx;
    boost::system::error_code ec;
    (*ctx)->set_verify_mode(ssl::verify_peer, ec);
    if (ec) return core::fail("tls: verify mode: " + describe(ec));
    return ctx;
}

} // namespace

core::expected<std::shared_ptr<ssl::context>> make_client_context(std::optional<std::string> const& ca_file) {
    auto ctx = new_client_context();
    if (!ctx) return ctx;
    boost::system::error_code ec;
    if (ca_file) {
        if (auto ok = check_file("ca_file", *ca_file); !ok) return core::fail(ok.error());
        (*ctx)->load_verify_file(*ca_file, ec);
        clear_openssl_errors();
        if (ec) return core::fail("ca_file " + *ca_file + ": " + describe(ec));
    } else {
        (*ctx)->set_default_verify_paths(ec);
        clear_openssl_errors();
        if (ec) return core::fail("tls: system trust store: " + describe(ec));
    }
    return ctx;
}

core::expected<std::shared_ptr<ssl::context>> make_client_context_from_pem(std::string const& ca_pem) {
    auto ctx = new_client_context();
    if (!ctx) return ctx;
    if (ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
        return core::fail("ca certificate: no PEM certificate found");
    boost::system::error_code ec;
    // Asio reads every certificate of the buffer, so a bundle works too.
    (*ctx)->add_certificate_authority(boost::asio::buffer(ca_pem), ec);
    clear_openssl_errors();
    if (ec) return core::fail("ca certificate: " + describe(ec));
    return ctx;
}

core::expected<std::shared_ptr<ssl::context>> make_server_context(std::string const& cert_file,
                                                                  std::string const& key_file) {
    if (auto ok = check_file("tls certificate", cert_file); !ok) return core::fail(ok.error());
    if (auto ok = check_file("tls key", key_file); !ok) return core::fail(ok.error());
    auto ctx = new_context(ssl::context::tls_server, TLS1_2_VERSION);
    if (!ctx) return ctx;
    boost::system::error_code ec;
    (*ctx)->use_certificate_chain_file(cert_file, ec);
    clear_openssl_errors();
    if (ec) return core::fail("tls certificate " + cert_file + ": " + describe(ec));
    (*ctx)->use_private_key_file(key_file, ssl::context::pem, ec);
    clear_openssl_errors();
    if (ec) return core::fail("tls key " + key_file + ": " + describe(ec));
    if (SSL_CTX_check_private_key((*ctx)->native_handle()) != 1) {
        clear_openssl_errors();
        return core::fail("tls key " + key_file + ": key values mismatch with the certificate " + cert_file);
    }
    return ctx;
}

core::expected<std::shared_ptr<ssl::context>> make_server_context_from_pem(
    std::string const& cert_pem, std::string const& key_pem, std::optional<std::string> const& client_ca_pem) {
    auto ctx = new_context(ssl::context::tls_server, TLS1_2_VERSION);
    if (!ctx) return ctx;
    boost::system::error_code ec;
    (*ctx)->use_certificate_chain(boost::asio::buffer(cert_pem), ec);
    clear_openssl_errors();
    if (ec) return core::fail("tls certificate: " + describe(ec));
    (*ctx)->use_private_key(boost::asio::buffer(key_pem), ssl::context::pem, ec);
    clear_openssl_errors();
    if (ec) return core::fail("tls key: " + describe(ec));
    if (SSL_CTX_check_private_key((*ctx)->native_handle()) != 1) {
        clear_openssl_errors();
        return core::fail("tls key: key values mismatch with the certificate");
    }
    if (client_ca_pem) {
        if (client_ca_pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos)
            return core::fail("client ca: no PEM certificate found");
        (*ctx)->add_certificate_authority(boost::asio::buffer(*client_ca_pem), ec);
        clear_openssl_errors();
        if (ec) return core::fail("client ca: " + describe(ec));
        (*ctx)->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
        if (ec) return core::fail("tls: verify mode: " + describe(ec));
        // Session resumption with client verification needs a context id,
        // or OpenSSL refuses resumed handshakes.
        static constexpr unsigned char session_context[] = "importwatch";
        if (SSL_CTX_set_session_id_context((*ctx)->native_handle(), session_context, sizeof session_context - 1) != 1) {
            clear_openssl_errors();
            return core::fail("tls: cannot set the session id context");
        }
    }
    return ctx;
}

} // namespace importwatch::net
