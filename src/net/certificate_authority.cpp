#include "net/certificate_authority.hpp"

#include <memory>
#include <stdexcept>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace importwatch::net {

namespace {

struct pkey_free { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct x509_free { void operator()(X509* p) const { X509_free(p); } };
struct bio_free { void operator()(BIO* p) const { BIO_free(p); } };
struct bn_free { void operator()(BIGNUM* p) const { BN_free(p); } };
struct ext_free { void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); } };

using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

[[noreturn]] void fail(std::string const& what) {
    unsigned long e = ERR_get_error();
    std::string detail;
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        detail = std::string(": ") + buf;
    }
    ERR_clear_error();
    throw std::runtime_error("certificate authority: " + what + detail);
}

void check(int rc, char const* what) {
    if (rc != 1) fail(what);
}

pkey_ptr new_p256_key() {
    pkey_ptr key(EVP_EC_gen("P-256"));
    if (!key) fail("EC P-256 key generation");
    return key;
}

bool is_ip_address(std::string const& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

void add_extension(X509* cert, X509* issuer, int nid, std::string const& value) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, ext_free> ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
    if (!ext) fail("extension " + value);
    check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

// A certificate skeleton: v3, random 127-bit serial, valid from an hour ago
// (clock skew between test processes) to a day from now.
x509_ptr new_certificate(EVP_PKEY* key, std::string const& common_name) {
    x509_ptr cert(X509_new());
    if (!cert) fail("X509_new");
    check(X509_set_version(cert.get(), 2), "X509_set_version");
    std::unique_ptr<BIGNUM, bn_free> serial(BN_new());
    if (!serial) fail("BN_new");
    check(BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "BN_rand");
    if (!BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) fail("serial number");
    if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600)) fail("notBefore");
    if (!X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600)) fail("notAfter");
    check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                     reinterpret_cast<unsigned char const*>(common_name.c_str()), -1, -1, 0),
          "subject CN");
    return cert;
}

std::string to_pem(X509* cert) {
    std::unique_ptr<BIO, bio_free> bio(BIO_new(BIO_s_mem()));
    if (!bio) fail("BIO_new");
    check(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string to_pem(EVP_PKEY* key) {
    std::unique_ptr<BIO, bio_free> bio(BIO_new(BIO_s_mem()));
    if (!bio) fail("BIO_new");
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
          "PEM_write_bio_PrivateKey");
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

} // namespace

struct certificate_authority::impl {
    pkey_ptr key;
    x509_ptr cert;
};

certificate_authority::certificate_authority(std::string const& common_name) : impl_(new impl) {
    try {
        impl_->key = new_p256_key();
        impl_->cert = new_certificate(impl_->key.get(), common_name);
        X509* c = impl_->cert.get();
        check(X509_set_issuer_name(c, X509_get_subject_name(c)), "X509_set_issuer_name");
        add_extension(c, c, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_extension(c, c, NID_subject_key_identifier, "hash");
        if (X509_sign(c, impl_->key.get(), EVP_sha256()) <= 0) fail("X509_sign (CA)");
        cert_pem_ = to_pem(c);
    } catch (...) {
        delete impl_;
        throw;
    }
}

certificate_authority::~certificate_authority() { delete impl_; }

pem_pair certificate_authority::issue_server_certificate(std::vector<std::string> const& names) const {
    if (names.empty()) throw std::invalid_argument("certificate authority: a server certificate needs a name");
    std::string san;
    for (auto const& n : names) {
        if (!san.empty()) san += ',';
        san += (is_ip_address(n) ? "IP:" : "DNS:") + n;
    }
    return issue(names.front(), "serverAuth", san);
}

pem_pair certificate_authority::issue_client_certificate(std::string const& common_name) const {
    return issue(common_name, "clientAuth", "");
}

pem_pair certificate_authority::issue(std::string const& common_name, char const* key_use, std::string const& san) const {
    auto key = new_p256_key();
    auto cert = new_certificate(key.get(), common_name);
    X509* c = cert.get();
    X509* ca = impl_->cert.get();
    check(X509_set_issuer_name(c, X509_get_subject_name(ca)), "X509_set_issuer_name");
    add_extension(c, ca, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(c, ca, NID_key_usage, "critical,digitalSignature");
    add_extension(c, ca, NID_ext_key_usage, key_use);
    if (!san.empty()) add_extension(c, ca, NID_subject_alt_name, san);
    add_extension(c, ca, NID_subject_key_identifier, "hash");
    add_extension(c, ca, NID_authority_key_identifier, "keyid:always");
    if (X509_sign(c, impl_->key.get(), EVP_sha256()) <= 0) fail(std::string("X509_sign (") + key_use + ")");
    return pem_pair{to_pem(c), to_pem(key.get())};
}

} // namespace importwatch::net
