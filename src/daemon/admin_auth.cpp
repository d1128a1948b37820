#include "daemon/admin_auth.hpp"

#include <cstring>
#include <memory>

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/basic_auth.hpp"

namespace importwatch::daemon {

namespace {

// On the worker thread: only its arguments, no shared state.
asio::awaitable<bool> match_on_worker(std::string password, std::string hash) {
    co_return password_matches(password, hash);
}

} // namespace

bool password_matches(std::string const& password, std::string const& hash) {
    // crypt_data is about 32 KiB: not for the stack. Zeroed (as crypt_rn
    // wants) by value-initialisation.
    auto data = std::make_unique<crypt_data>();
    char const* out = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
    // A NUL in the password would cut it short for crypt: never a match.
    bool ok = out != nullptr && out[0] != '*' && password.find('\0') == std::string::npos &&
              std::strlen(out) == hash.size() && CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
    OPENSSL_cleanse(data.get(), sizeof(crypt_data));
    return ok;
}

admin_auth::admin_auth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

asio::awaitable<bool> admin_auth::verify(std::string const& authorization, asio::any_io_executor worker) {
    digest d{};
    unsigned int n = 0;
    if (EVP_Digest(authorization.data(), authorization.size(), d.data(), &n, EVP_sha256(), nullptr) != 1)
        co_return false;
    if (verified_.contains(d)) co_return true;

    auto credentials = core::parse_basic_authorization(authorization);
    if (!credentials || users_.empty()) co_return false;
    auto const user = users_.find(credentials->user);
    // An unknown user is checked against some user's hash all the same.
    std::string const& hash = user != users_.end() ? user->second : users_.begin()->second;
    bool const matched = co_await asio::co_spawn(worker, match_on_worker(credentials->password, hash),
                                                 asio::use_awaitable);
    if (!matched || user == users_.end()) co_return false;
    remember(d);
    co_return true;
}

void admin_auth::remember(digest const& d) {
    if (!verified_.insert(d).second) return;
    order_.push_back(d);
    if (order_.size() > admin_auth_cache_size) {
        verified_.erase(order_.front());
        order_.pop_front();
    }
}

} // namespace importwatch::daemon
