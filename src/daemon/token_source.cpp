#include "daemon/token_source.hpp"

#include <spdlog/spdlog.h>

#include "daemon/config_loader.hpp"

namespace importwatch::daemon {

void token_source::configure(core::launchdarkly_config const& ld, std::string token) {
    source_ = ld;
    if (token != token_) {
        token_ = std::move(token);
        ++version_;
    }
}

bool token_source::reject() {
    if (auto token = read_api_token(source_); token && *token != token_) {
        token_ = std::move(*token);
        ++version_;
        spdlog::info("re-read the API token after HTTP 401");
    }
    if (rejected_) return false;   // the watches were failed already
    rejected_ = true;
    return true;
}

} // namespace importwatch::daemon
