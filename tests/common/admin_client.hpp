#pragma once
// One request to a daemon's admin server (plain HTTP on 127.0.0.1) while the
// test's io_context keeps serving the simulator and the receivers.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "core/http_exchange.hpp"

namespace importwatch::testing {

/// METHOD target on 127.0.0.1:port; nullopt when no answer came within `timeout`.
std::optional<core::http_reply> admin_request(boost::asio::io_context& ioc, std::uint16_t port,
                                              std::string const& method, std::string const& target,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(5));

} // namespace importwatch::testing
