#pragma once
// The headers importwatch sets itself on every webhook request. A configured
// header may not replace one of them: that would break signing, HTTP framing
// or the receiver's view of who is calling. `check` refuses them and the
// dispatcher never sends them from the config.
#include <string_view>

namespace importwatch::core {

/// True for a reserved header name, compared case-insensitively.
bool is_reserved_webhook_header(std::string_view name);

} // namespace importwatch::core
