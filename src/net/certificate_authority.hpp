#pragma once
// A throwaway CA made at run time (OpenSSL, EC P-256) for `importwatch demo`
// and the tests: a trusted TLS setup on loopback without ever disabling
// verification.
#include <string>
#include <vector>

namespace importwatch::net {

struct pem_pair {
    std::string certificate;
    std::string private_key;
};

class certificate_authority {
public:
    /// A new self-signed CA valid for a day.
    explicit certificate_authority(std::string const& common_name = "importwatch test CA");
    ~certificate_authority();
    certificate_authority(certificate_authority const&) = delete;
    certificate_authority& operator=(certificate_authority const&) = delete;

    std::string const& certificate_pem() const { return cert_pem_; }
    /// A server certificate signed by this CA, with the given DNS names and IP
    /// addresses (e.g. {"localhost", "127.0.0.1"}) as subjectAltNames.
    pem_pair issue_server_certificate(std::vector<std::string> const& names) const;
    /// A client certificate signed by this CA (TLS client authentication).
    pem_pair issue_client_certificate(std::string const& common_name) const;

private:
    pem_pair issue(std::string const& common_name, char const* key_use, std::string const& san) const;
    struct impl;
    impl* impl_;
    std::string cert_pem_;
};

} // namespace importwatch::net
