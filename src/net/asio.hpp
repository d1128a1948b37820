#pragma once
// Light declarations shared by net users; the heavy Beast headers stay in .cpp files.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace importwatch {
namespace asio = boost::asio;
} // namespace importwatch
