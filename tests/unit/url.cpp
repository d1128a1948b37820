#define BOOST_TEST_MODULE url
#include <boost/test/unit_test.hpp>

#include "core/config.hpp"
#include "core/url.hpp"

using namespace importwatch::core;

BOOST_AUTO_TEST_SUITE(url_parsing)

BOOST_AUTO_TEST_CASE(parses_components_and_defaults) {
    struct case_ {
        char const* text;
        char const* scheme;
        char const* host;
        char const* port;
        char const* target;
        bool userinfo;
        char const* redacted;
    };
    case_ const cases[] = {
        {"https://app.launchdarkly.com", "https", "app.launchdarkly.com", "443", "/", false,
         "https://app.launchdarkly.com/"},
        {"http://localhost:8080/x/y?a=1#frag", "http", "localhost", "8080", "/x/y?a=1", false,
         "http://localhost:8080/x/y"},
        {"HTTPS://Hooks.Example.COM/Path", "https", "hooks.example.com", "443", "/Path", false,
         "https://hooks.example.com/Path"},
        {"http://[::1]:9464/healthz", "http", "::1", "9464", "/healthz", false, "http://[::1]:9464/healthz"},
        {"https://[2001:db8::1]/", "https", "2001:db8::1", "443", "/", false, "https://[2001:db8::1]/"},
        {"https://user:pa%40ss@hooks.example.com/h?token=s3cret", "https", "hooks.example.com", "443",
         "/h?token=s3cret", true, "https://hooks.example.com/h"},
        {"https://example.com:443/", "https", "example.com", "443", "/", false, "https://example.com/"},
        {"http://example.com:443/", "http", "example.com", "443", "/", false, "http://example.com:443/"},
        {"https://example.com?q=1", "https", "example.com", "443", "/?q=1", false, "https://example.com/"},
        {"http://127.0.0.1:08080", "http", "127.0.0.1", "8080", "/", false, "http://127.0.0.1:8080/"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.text) {
            auto u = parse_url(c.text);
            BOOST_TEST_REQUIRE(u.has_value());
            BOOST_TEST(u->scheme == c.scheme);
            BOOST_TEST(u->host == c.host);
            BOOST_TEST(u->port == c.port);
            BOOST_TEST(u->target == c.target);
            BOOST_TEST(u->has_userinfo == c.userinfo);
            BOOST_TEST(u->redacted() == c.redacted);
            BOOST_TEST(u->tls() == (std::string(c.scheme) == "https"));
        }
    }
}

BOOST_AUTO_TEST_CASE(redacted_never_contains_userinfo_or_query) {
    auto u = parse_url("https://alice:hunter2@hooks.example.com:8443/in?sig=abc");
    BOOST_TEST_REQUIRE(u.has_value());
    auto r = u->redacted();
    BOOST_TEST(r == "https://hooks.example.com:8443/in");
    BOOST_TEST(r.find("hunter2") == std::string::npos);
    BOOST_TEST(r.find("sig") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(rejects_what_is_not_an_absolute_http_url) {
    char const* const bad[] = {
        "",
        "example.com",
        "/relative/path",
        "ftp://example.com/",
        "https:/example.com",
        "https://",
        "https:///path",
        "https://:443/",
        "https://example.com:0/",
        "https://example.com:65536/",
        "https://example.com:12a/",
        "https://exa mple.com/",
        "https://example.com/a b",
        "https://example.com/\r\nX-Injected: 1",
        "https://[::1/",
        "https://[::1]x/",
        "https://[]/",
        "https://[example.com]/",
        "https://user@/",
        "https://ex%61mple.com/",
    };
    for (auto const* text : bad) {
        BOOST_TEST_CONTEXT('"' << text << '"') { BOOST_TEST(!parse_url(text).has_value()); }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(loopback)

BOOST_AUTO_TEST_CASE(loopback_hosts) {
    for (char const* host : {"localhost", "LOCALHOST", "127.0.0.1", "127.255.255.254", "127.1.2.3", "::1", "[::1]",
                             "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"}) {
        BOOST_TEST_CONTEXT(host) { BOOST_TEST(is_loopback_host(host)); }
    }
}

BOOST_AUTO_TEST_CASE(other_hosts_are_not_loopback) {
    for (char const* host : {"", "128.0.0.1", "126.255.255.255", "10.0.0.1", "0.0.0.0", "::", "::2", "[::2]",
                             "127.0.0.1.example.com", "localhost.example.com", "mylocalhost", "127.0.0",
                             "127.0.0.256", "example.com", "::ffff:10.0.0.1"}) {
        BOOST_TEST_CONTEXT('"' << host << '"') { BOOST_TEST(!is_loopback_host(host)); }
    }
}

BOOST_AUTO_TEST_CASE(loopback_after_url_parsing) {
    auto u = parse_url("http://[::1]:8080/hook");
    BOOST_TEST_REQUIRE(u.has_value());
    BOOST_TEST(is_loopback_host(u->host));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(secure_urls_are_https_or_loopback_http) {
    BOOST_TEST(parse_secure_url("https://hooks.example.com/x").has_value());
    BOOST_TEST(parse_secure_url("http://127.0.0.1:8080/x").has_value());
    BOOST_TEST(parse_secure_url("http://[::1]/x").has_value());
    BOOST_TEST(parse_secure_url("http://localhost/x").has_value());
    BOOST_TEST(parse_secure_url("http://hooks.example.com/x").error() ==
               "must use https:// (plain http:// only for loopback hosts)");
    BOOST_TEST(parse_secure_url("ftp://x").error() == "expected an absolute http:// or https:// URL");
}

BOOST_AUTO_TEST_CASE(config_urls_refuse_credentials_without_quoting_them) {
    for (char const* text : {"https://alice:hunter2@hooks.example.com/x", "https://hunter2@hooks.example.com/x",
                             "http://alice:hunter2@127.0.0.1:8080/", "https://:hunter2@hooks.example.com/"}) {
        BOOST_TEST_CONTEXT(text) {
            for (auto const& r : {parse_config_url(text), parse_secure_url(text)}) {
                BOOST_TEST_REQUIRE(!r.has_value());
                BOOST_TEST(r.error() == "must not contain a user name or password (user:password@ before the host)");
            }
        }
    }
    BOOST_TEST(parse_config_url("http://proxy.internal:3128").has_value());   // plain http is a proxy's business
    BOOST_TEST(parse_config_url("ftp://x").error() == "expected an absolute http:// or https:// URL");
}
