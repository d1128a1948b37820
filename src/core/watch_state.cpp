#include "core/watch_state.hpp"

namespace importwatch::core {

bool watch_state::terminal() const { return status.has_value() && is_terminal(*status); }

} // namespace importwatch::core
