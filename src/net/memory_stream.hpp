#pragma once
// A synchronous read stream over bytes in memory: what a socket would hand
// Beast's parser, in reads of at most `read_size`, then end of stream. Lets
// the client's and the server's parsing run without a socket (fuzzers).
#include <algorithm>
#include <cstddef>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

namespace importwatch::net {

class memory_stream {
public:
    memory_stream(std::string_view bytes, std::size_t read_size)
        : bytes_(bytes), read_size_(std::max<std::size_t>(1, read_size)) {}

    template <class MutableBuffers>
    std::size_t read_some(MutableBuffers const& buffers, boost::system::error_code& ec) {
        if (bytes_.empty()) {
            ec = boost::asio::error::eof;
            return 0;
        }
        ec = {};
        auto const n = boost::asio::buffer_copy(
            buffers, boost::asio::buffer(bytes_.data(), std::min(read_size_, bytes_.size())));
        bytes_.remove_prefix(n);
        return n;
    }

    template <class MutableBuffers>
    std::size_t read_some(MutableBuffers const& buffers) {
        boost::system::error_code ec;
        auto const n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

private:
    std::string_view bytes_;
    std::size_t read_size_;
};

} // namespace importwatch::net
