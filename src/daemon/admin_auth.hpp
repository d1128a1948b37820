#pragma once
// Basic authentication for the admin server (admin.basic_auth). bcrypt costs
// 50–100 ms a try, so it runs on a worker thread (wrong passwords in a flood
// cost that thread, not the event loop), and a successful verification is
// remembered by the SHA-256 of its Authorization header: a scrape every 15 s
// costs one bcrypt in all, not one per scrape.
#include <array>
#include <cstddef>
#include <deque>
#include <map>
#include <set>
#include <string>

#include "net/asio.hpp"

namespace importwatch::daemon {

/// Authorization headers remembered as verified (README "Limits").
inline constexpr std::size_t admin_auth_cache_size = 64;

/// Whether `password` hashes to `hash` (crypt(3), bcrypt from libxcrypt); the
/// comparison of the results takes the same time whatever the bytes.
bool password_matches(std::string const& password, std::string const& hash);

class admin_auth {
public:
    /// users: name -> bcrypt hash (core::is_bcrypt_hash), at least one.
    explicit admin_auth(std::map<std::string, std::string> users);

    std::map<std::string, std::string> const& users() const { return users_; }

    /// Whether the Authorization header value names a user with the right
    /// password. bcrypt runs on `worker`; an unknown user costs one bcrypt
    /// too, so timing does not tell which users exist.
    asio::awaitable<bool> verify(std::string const& authorization, asio::any_io_executor worker);

private:
    using digest = std::array<unsigned char, 32>;
    void remember(digest const& d);

    std::map<std::string, std::string> users_;
    std::set<digest> verified_;
    std::deque<digest> order_;   // oldest first: the one forgotten at the bound
};

} // namespace importwatch::daemon
