#pragma once
// TLS contexts. Clients always verify the peer (system store or a CA file);
// there is no switch to turn that off: tests and the demo bring their own CA.
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "core/expected.hpp"

namespace importwatch::net {

namespace ssl = boost::asio::ssl;

/// TLS 1.2+, verify_peer, trust from `ca_file` (PEM) or the system store.
core::expected<std::shared_ptr<ssl::context>> make_client_context(std::optional<std::string> const& ca_file);
/// Same, trusting CA certificates given as PEM text (demo, tests).
core::expected<std::shared_ptr<ssl::context>> make_client_context_from_pem(std::string const& ca_pem);
/// A server context from PEM files.
core::expected<std::shared_ptr<ssl::context>> make_server_context(std::string const& cert_file,
                                                                  std::string const& key_file);
/// A server context from PEM text (chain: leaf first). With `client_ca_pem`,
/// a client must present a certificate that one of those CAs signed, or the
/// handshake fails.
core::expected<std::shared_ptr<ssl::context>> make_server_context_from_pem(
    std::string const& cert_pem, std::string const& key_pem,
    std::optional<std::string> const& client_ca_pem = std::nullopt);

} // namespace importwatch::net
