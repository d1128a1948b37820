#include "daemon/config_loader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include "core/config_parser.hpp"
#include "core/webhook_signature.hpp"

namespace importwatch::daemon {

namespace {

// POSIX read so that the error is the real errno (EACCES, ENOENT, EISDIR).
core::expected<std::string> read_file(std::string const& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return core::fail(std::strerror(errno));
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int saved = errno;
            ::close(fd);
            return core::fail(std::strerror(saved));
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

std::optional<std::string> get_env(std::string const& name) {
    if (char const* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
}

std::string trim(std::string s) {
    auto space = [](unsigned char c) { return std::isspace(c) != 0; };
    while (!s.empty() && space(static_cast<unsigned char>(s.back()))) s.pop_back();
    auto first = std::find_if_not(s.begin(), s.end(), [&](char c) { return space(static_cast<unsigned char>(c)); });
    s.erase(s.begin(), first);
    return s;
}

bool has_space_or_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

/// Secret text from a file or an environment variable; `what` is the key path
/// for messages. Messages name the source, never the content.
/// Prefixes a secret error with where the key is configured ("file:line:col: ").
std::string at(std::string const& origin, std::string message) {
    return origin.empty() ? message : origin + ": " + message;
}

core::expected<std::string> read_secret(std::string const& origin, std::string const& what,
                                        std::optional<std::string> const& file, std::string const& env_name) {
    if (file) {
        auto text = read_file(*file);
        if (!text) return core::fail(at(origin, what + ".token_file: cannot read " + *file + ": " + text.error()));
        std::string value = trim(*text);
        if (value.empty()) return core::fail(at(origin, what + ".token_file: " + *file + " is empty"));
        return value;
    }
    auto value = get_env(env_name);
    if (!value) return core::fail(at(origin, what + ".token_env: " + env_name + " is not set"));
    std::string trimmed = trim(*value);
    if (trimmed.empty()) return core::fail(at(origin, what + ".token_env: " + env_name + " is empty"));
    return trimmed;
}

// glob() reports unreadable directories through a callback without a context
// pointer; a missing directory just means the glob matches nothing.
thread_local std::string glob_error;

int on_glob_error(char const* epath, int error) {
    if (error == ENOENT || error == ENOTDIR) return 0;
    glob_error = std::string(epath) + ": " + std::strerror(error);
    return 1;
}

} // namespace

core::expected<core::config> load_config(std::string const& path) {
    auto text = read_file(path);
    if (!text) return core::fail(path + ": cannot read: " + text.error());
    auto cfg = core::parse_config(*text, path, get_env);
    if (!cfg) return cfg;

    // Relative globs are relative to the config file, not to the daemon's
    // working directory (which is / under systemd).
    std::filesystem::path base = std::filesystem::path(path).parent_path();
    std::set<std::string> files;   // sorted, and a file two globs match is read once
    for (std::size_t i = 0; i < cfg->watch_files.size(); ++i) {
        std::string pattern = cfg->watch_files[i];
        if (!pattern.empty() && pattern.front() != '/' && !base.empty()) pattern = (base / pattern).string();
        glob_t g{};
        glob_error = "out of memory";
        int rc = ::glob(pattern.c_str(), 0, on_glob_error, &g);
        if (rc == 0) {
            for (std::size_t k = 0; k < g.gl_pathc; ++k) files.insert(g.gl_pathv[k]);
        }
        ::globfree(&g);
        if (rc != 0 && rc != GLOB_NOMATCH) {
            return core::fail(path + ": watch_files[" + std::to_string(i) + "]: cannot expand " +
                              cfg->watch_files[i] + ": " + glob_error);
        }
    }
    for (auto const& file : files) {
        auto watch_text = read_file(file);
        if (!watch_text) return core::fail(file + ": cannot read: " + watch_text.error());
        auto watches = core::parse_watch_file(*watch_text, file, get_env);
        if (!watches) return core::fail(watches.error());
        cfg->watches.insert(cfg->watches.end(), watches->begin(), watches->end());
    }
    if (auto ok = core::check_watch_set(*cfg); !ok) return core::fail(ok.error());
    return cfg;
}

core::expected<std::string> read_api_token(core::launchdarkly_config const& ld) {
    auto token = read_secret(ld.token_origin, "launchdarkly", ld.token_file, ld.token_env);
    if (!token) return token;
    // It goes into a header line as is.
    if (has_space_or_control(*token)) {
        return core::fail(at(ld.token_origin,
                             ld.token_file ? "launchdarkly.token_file: " + *ld.token_file +
                                                 " holds whitespace or control characters inside the token"
                                           : "launchdarkly.token_env: " + ld.token_env +
                                                 " holds whitespace or control characters inside the token"));
    }
    return token;
}

core::expected<std::optional<std::string>> read_webhook_key(core::webhook_config const& webhook) {
    if (!webhook.secret_file && !webhook.secret_env) return std::optional<std::string>{};
    // The config's own key path ("events.webhooks[0]") and place in the file.
    std::string what = at(webhook.secret_origin,
                          webhook.path.empty() ? "events.webhooks[" + webhook.name + "]" : webhook.path);
    std::string source;   // "secret_file: /path" or "secret_env: VAR", for messages
    std::string secret;
    if (webhook.secret_file) {
        source = what + ".secret_file: " + *webhook.secret_file;
        auto text = read_file(*webhook.secret_file);
        if (!text) return core::fail(what + ".secret_file: cannot read " + *webhook.secret_file + ": " + text.error());
        secret = trim(*text);
        if (secret.empty()) return core::fail(source + " is empty");
    } else {
        source = what + ".secret_env: " + *webhook.secret_env;
        auto value = get_env(*webhook.secret_env);
        if (!value) return core::fail(source + " is not set");
        secret = trim(*value);
        if (secret.empty()) return core::fail(source + " is empty");
    }
    auto key = core::decode_webhook_secret(secret);
    if (!key) {
        // decode_webhook_secret promises not to quote the secret; make sure.
        std::string reason = key.error();
        if (secret.size() > 8 && reason.find(secret.substr(6)) != std::string::npos) reason = "is not valid";
        return core::fail(source + ": secret " + reason + " (expected \"whsec_<base64>\")");
    }
    return std::optional<std::string>(*key);
}

core::expected<secrets> read_secrets(core::config const& cfg) {
    secrets s;
    auto token = read_api_token(cfg.launchdarkly);
    if (!token) return core::fail(token.error());
    s.api_token = std::move(*token);
    for (auto const& w : cfg.webhooks) {
        auto key = read_webhook_key(w);
        if (!key) return core::fail(key.error());
        s.webhook_keys[w.name] = std::move(*key);
    }
    return s;
}

std::vector<secret_problem> webhook_secret_problems(core::config const& cfg) {
    std::vector<secret_problem> problems;
    for (auto const& hook : cfg.webhooks)
        if (auto key = read_webhook_key(hook); !key)
            problems.push_back({key.error(), secret_present(hook.secret_file, hook.secret_env)});
    return problems;
}

bool secret_present(std::optional<std::string> const& file, std::optional<std::string> const& env) {
    if (file) {
        auto text = read_file(*file);
        return text && !trim(*text).empty();
    }
    if (!env) return false;
    auto value = get_env(*env);
    return value && !trim(*value).empty();
}

} // namespace importwatch::daemon
