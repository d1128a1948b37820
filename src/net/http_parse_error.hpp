#pragma once
// Which Beast read errors mean the peer sent something that is not HTTP (the
// server answers 400, the client reports an invalid response), as opposed to
// a connection that ended before or inside a message (end_of_stream,
// partial_message), which is a network failure on either side.
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>

namespace importwatch::net {

inline bool is_http_parse_error(boost::system::error_code const& ec) {
    namespace http = boost::beast::http;
    return ec.category() == http::make_error_code(http::error::bad_version).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
}

} // namespace importwatch::net
