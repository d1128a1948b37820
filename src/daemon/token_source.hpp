#pragma once
// The API token polls carry. It comes from token_file or token_env at start-up
// and reload, and is read again when LaunchDarkly answers 401, so a rotated
// token_file recovers without a restart. It knows whether LaunchDarkly has
// rejected the token (a 401 not yet followed by a successful poll), and tells
// a 401 for the current token from one for a token replaced since.
#include <cstdint>
#include <string>

#include "core/config.hpp"

namespace importwatch::daemon {

class token_source {
public:
    /// The token as read at start-up or reload, and where to read it again.
    void configure(core::launchdarkly_config const& ld, std::string token);

    std::string const& current() const { return token_; }
    /// Changes whenever the token does. A poll notes it when it sends, to
    /// tell afterwards whether its answer still concerns the current token.
    std::uint64_t version() const { return version_; }
    bool is_current(std::uint64_t version) const { return version == version_; }

    /// A poll with the current token succeeded.
    void accepted() { rejected_ = false; }
    /// LaunchDarkly answered 401 to the current token: reads the token again
    /// (a changed one is used from the next poll on). True the first time
    /// since the token last worked: then every watch is to be marked failed.
    bool reject();
    /// LaunchDarkly rejected the token and no poll has succeeded since.
    bool rejected() const { return rejected_; }

private:
    core::launchdarkly_config source_;
    std::string token_;
    std::uint64_t version_ = 0;
    bool rejected_ = false;
};

} // namespace importwatch::daemon
