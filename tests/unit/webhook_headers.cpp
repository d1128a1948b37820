#define BOOST_TEST_MODULE webhook_headers
#include <boost/test/unit_test.hpp>

#include "core/webhook_headers.hpp"

using importwatch::core::is_reserved_webhook_header;

BOOST_AUTO_TEST_CASE(the_headers_importwatch_sets_are_reserved_in_any_case) {
    for (auto name : {"Content-Type", "content-length", "Transfer-Encoding", "HOST", "Connection", "User-Agent",
                      "user-agent", "webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE"}) {
        BOOST_TEST_CONTEXT(name) { BOOST_TEST(is_reserved_webhook_header(name)); }
    }
}

BOOST_AUTO_TEST_CASE(other_headers_are_the_users) {
    for (auto name : {"X-Team", "Authorization", "webhook", "webhook-ids", "User-Agent2", "", "content-typ"}) {
        BOOST_TEST_CONTEXT(name) { BOOST_TEST(!is_reserved_webhook_header(name)); }
    }
}
