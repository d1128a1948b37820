/* The floor for bench/compare: the least a TLS poller can do per poll.
 *
 * OpenSSL only, no HTTP or JSON library: N keep-alive connections, each
 * iteration writes the same prebuilt request bytes on every connection (so N
 * requests are in flight, like a client with N connections), then reads each
 * response until its Content-Length is complete and checks for "200". The
 * certificate is verified against --ca, with the IP or host name checked.
 *
 *   floor_client --url https://127.0.0.1:8443/path --ca ca.pem --token T
 *                --api-version V --user-agent UA [--connections 2]
 *
 * Runs until SIGTERM/SIGINT, finishes the responses in flight, then prints
 * "polls=P connections=C" on stdout.
 */
#define _GNU_SOURCE  /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static void die(char const* what) {
    fprintf(stderr, "floor_client: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

struct connection {
    int fd;
    SSL* ssl;
    char buf[65536];
};

static void open_connection(struct connection* c, SSL_CTX* ctx, char const* host, int port) {
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("--url host must be an IPv4 address");
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr*)&addr, sizeof addr) != 0) die("connect failed");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    /* An IP literal: no SNI (RFC 6066), match the iPAddress SAN. */
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
    if (SSL_connect(c->ssl) != 1) die("TLS handshake failed");
    if (SSL_get_verify_result(c->ssl) != X509_V_OK) die("certificate verify failed");
}

/* Reads one response; returns 1 for a complete 200, 0 otherwise. */
static int read_response(struct connection* c) {
    size_t have = 0;
    size_t header_end = 0;
    size_t total = 0;
    for (;;) {
        if (have == sizeof c->buf) return 0;
        int n = SSL_read(c->ssl, c->buf + have, (int)(sizeof c->buf - have));
        if (n <= 0) return 0;
        have += (size_t)n;
        if (header_end == 0) {
            char* end = memmem(c->buf, have, "\r\n\r\n", 4);
            if (end == NULL) continue;
            header_end = (size_t)(end - c->buf) + 4;
            char const* p = c->buf;
            char const* stop = c->buf + header_end;
            long length = -1;
            while (p < stop) {
                char const* eol = memmem(p, (size_t)(stop - p), "\r\n", 2);
                if (eol == NULL) break;
                if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) length = strtol(p + 15, NULL, 10);
                p = eol + 2;
            }
            if (length < 0) return 0;
            total = header_end + (size_t)length;
        }
        if (have >= total) return strncmp(c->buf, "HTTP/1.1 200", 12) == 0;
    }
}

int main(int argc, char** argv) {
    char const* url = NULL;
    char const* ca = NULL;
    char const* token = NULL;
    char const* api_version = NULL;
    char const* user_agent = NULL;
    int connections = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0) url = argv[i + 1];
        else if (strcmp(argv[i], "--ca") == 0) ca = argv[i + 1];
        else if (strcmp(argv[i], "--token") == 0) token = argv[i + 1];
        else if (strcmp(argv[i], "--api-version") == 0) api_version = argv[i + 1];
        else if (strcmp(argv[i], "--user-agent") == 0) user_agent = argv[i + 1];
        else if (strcmp(argv[i], "--connections") == 0) connections = atoi(argv[i + 1]);
        else die("unknown flag");
    }
    if (!url || !ca || !token || !api_version || !user_agent || connections < 1 || connections > 64)
        die("usage: floor_client --url https://IP:PORT/PATH --ca FILE --token T --api-version V --user-agent UA [--connections N]");

    char host[64];
    int port = 0;
    int path_at = 0;
    if (sscanf(url, "https://%63[^:]:%d%n", host, &port, &path_at) != 2 || url[path_at] != '/') die("bad --url");
    char const* path = url + path_at;

    char request[4096];
    int request_len = snprintf(request, sizeof request,
                               "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: %s\r\nLD-API-Version: %s\r\n"
                               "Accept: application/json\r\nUser-Agent: %s\r\n\r\n",
                               path, host, port, token, api_version, user_agent);
    if (request_len <= 0 || request_len >= (int)sizeof request) die("request too long");

    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) die("cannot load --ca");

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    struct connection* conns = calloc((size_t)connections, sizeof *conns);
    for (int i = 0; i < connections; ++i) open_connection(&conns[i], ctx, host, port);

    unsigned long long polls = 0;
    while (!stop_requested) {
        for (int i = 0; i < connections; ++i)
            if (SSL_write(conns[i].ssl, request, request_len) != request_len) die("write failed");
        for (int i = 0; i < connections; ++i) {
            if (!read_response(&conns[i])) die("bad response");
            ++polls;
        }
    }
    printf("polls=%llu connections=%d\n", polls, connections);
    return 0;
}
