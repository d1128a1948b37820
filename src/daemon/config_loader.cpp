#include "daemon/config_loader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <set>

#include <glob.h>
#include <openssl/evp.h>

#include "core/api_token.hpp"
#include "core/config_parser.hpp"
#include "core/webhook_signature.hpp"
#include "daemon/bounded_file.hpp"

namespace importwatch::daemon {

namespace {

/// "PATH: cannot read: No such file or directory", "PATH: not a regular file (a FIFO)".
std::string file_message(std::string const& path, file_read_error const& e) {
    bool const refused = e.what == file_read_error::kind::not_regular || e.what == file_read_error::kind::too_large;
    return path + (refused ? ": " : ": cannot read: ") + e.message;
}

std::optional<std::string> get_env(std::string const& name) {
    if (char const* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
}

/// Prefixes a secret error with where the key is configured ("file:line:col: ").
std::string at(std::string const& origin, std::string message) {
    return origin.empty() ? message : origin + ": " + message;
}

/// A secret's text from a file or an environment variable, BOM and trailing
/// whitespace removed. `key` is the key path for messages ("launchdarkly.token_file");
/// messages name the source, never the content.
core::expected<std::string, secret_error> read_secret_text(std::string const& key, std::optional<std::string> const& file,
                                                           std::string const& env_name) {
    using core::unexpected;
    if (file) {
        auto text = read_bounded_file(*file, max_secret_file_bytes);
        if (!text) {
            // Not there (or not for us) is absent; there but unusable is malformed.
            bool const absent = text.error().what == file_read_error::kind::cannot_open;
            std::string const message = absent || text.error().what == file_read_error::kind::read_failed
                                            ? "cannot read " + *file + ": " + text.error().message
                                            : *file + ": " + text.error().message;
            return unexpected(secret_error{key + ": " + message, absent});
        }
        std::string value(core::secret_text(*text));
        if (value.empty()) return unexpected(secret_error{key + ": " + *file + " is empty", true});
        return value;
    }
    auto value = get_env(env_name);
    if (!value) return unexpected(secret_error{key + ": " + env_name + " is not set", true});
    std::string text(core::secret_text(*value));
    if (text.empty()) return unexpected(secret_error{key + ": " + env_name + " is empty", true});
    return text;
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

core::expected<read_config> reread_config(std::string const& path, earlier_watches const& earlier) {
    auto text = read_bounded_file(path, max_config_file_bytes);
    if (!text) return core::fail(file_message(path, text.error()));
    auto cfg = core::parse_config(*text, path, get_env);
    if (!cfg) return core::fail(cfg.error());
    read_config out{std::move(*cfg), {}};

    // Relative globs are relative to the config file, not to the daemon's
    // working directory (which is / under systemd).
    std::filesystem::path base = std::filesystem::path(path).parent_path();
    std::set<std::string> files;   // sorted, and a file two globs match is read once
    for (std::size_t i = 0; i < out.config.watch_files.size(); ++i) {
        std::string pattern = out.config.watch_files[i];
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
                              out.config.watch_files[i] + ": " + glob_error);
        }
    }
    std::vector<std::vector<core::watch_config>> by_file;   // moved into the config once all are read
    by_file.reserve(files.size());
    for (auto const& file : files) {
        auto watch_text = read_bounded_file(file, max_config_file_bytes);
        if (!watch_text) return core::fail(file_message(file, watch_text.error()));
        file_digest digest{};
        unsigned int size = 0;
        if (EVP_Digest(watch_text->data(), watch_text->size(), digest.data(), &size, EVP_sha256(), nullptr) != 1)
            return core::fail(file + ": cannot compute its SHA-256");
        std::optional<std::vector<core::watch_config>> from_file;
        if (earlier) from_file = earlier(file, digest);
        if (!from_file) {
            auto parsed = core::parse_watch_file(*watch_text, file, get_env);
            if (!parsed) return core::fail(parsed.error());
            from_file = std::move(*parsed);
        }
        out.watch_files.emplace(file, watch_file_read{digest, from_file->size()});
        by_file.push_back(std::move(*from_file));
    }
    auto& watches = out.config.watches;
    std::size_t count = watches.size();
    for (auto const& list : by_file) count += list.size();
    watches.reserve(count);
    for (auto& list : by_file) std::move(list.begin(), list.end(), std::back_inserter(watches));
    if (auto ok = core::check_watch_set(out.config); !ok) return core::fail(ok.error());
    return out;
}

core::expected<core::config> load_config(std::string const& path) {
    auto read = reread_config(path, {});
    if (!read) return core::fail(read.error());
    return std::move(read->config);
}

earlier_watches unchanged_files(std::map<std::string, watch_file_read> before,
                                std::vector<core::watch_config const*> const& running) {
    std::map<std::string, std::vector<core::watch_config>> by_file;
    for (auto const* w : running) {
        // origin is "file:line:col"; the file name may itself hold ':'.
        std::string_view file = w->origin;
        for (int part = 0; part < 2; ++part) file = file.substr(0, file.rfind(':'));
        if (before.contains(std::string(file))) by_file[std::string(file)].push_back(*w);
    }
    return [before = std::move(before), by_file = std::move(by_file)](
               std::string const& file, file_digest const& digest) mutable -> std::optional<std::vector<core::watch_config>> {
        auto const read = before.find(file);
        if (read == before.end() || read->second.digest != digest) return std::nullopt;
        std::vector<core::watch_config> watches;
        if (auto const it = by_file.find(file); it != by_file.end()) watches = std::move(it->second);
        // A count that differs means the origins did not say what they were
        // taken to (or the file was read twice): parse it, to be sure.
        if (watches.size() != read->second.watches) return std::nullopt;
        return watches;
    };
}

core::expected<std::string, secret_error> read_api_token(core::launchdarkly_config const& ld) {
    std::string const key = ld.token_file ? "launchdarkly.token_file" : "launchdarkly.token_env";
    auto token = read_secret_text(key, ld.token_file, ld.token_env);
    if (!token) return core::unexpected(secret_error{at(ld.token_origin, token.error().message), token.error().absent});
    if (auto ok = core::check_api_token(*token); !ok) {
        std::string const source = ld.token_file ? *ld.token_file : ld.token_env;
        return core::unexpected(secret_error{at(ld.token_origin, key + ": " + source + ": " + ok.error()), false});
    }
    return token;
}

core::expected<std::optional<std::string>, secret_error> read_webhook_key(core::webhook_config const& webhook) {
    if (!webhook.secret_file && !webhook.secret_env) return std::optional<std::string>{};
    // The config's own key path ("events.webhooks[0]") and place in the file.
    std::string const what = webhook.path.empty() ? "events.webhooks[" + webhook.name + "]" : webhook.path;
    std::string const key = what + (webhook.secret_file ? ".secret_file" : ".secret_env");
    auto secret = read_secret_text(key, webhook.secret_file, webhook.secret_env.value_or(""));
    if (!secret) return core::unexpected(secret_error{at(webhook.secret_origin, secret.error().message), secret.error().absent});
    auto decoded = core::decode_webhook_secret(*secret);
    if (!decoded) {
        // decode_webhook_secret promises not to quote the secret; make sure.
        std::string reason = decoded.error();
        if (secret->size() > 8 && reason.find(secret->substr(6)) != std::string::npos) reason = "is not valid";
        std::string const source = webhook.secret_file ? *webhook.secret_file : *webhook.secret_env;
        return core::unexpected(secret_error{at(webhook.secret_origin, key + ": " + source + ": secret " + reason +
                                                                           " (expected \"whsec_<base64>\")"),
                                             false});
    }
    return std::optional<std::string>(std::move(*decoded));
}

core::expected<secrets> read_secrets(core::config const& cfg) {
    secrets s;
    auto token = read_api_token(cfg.launchdarkly);
    if (!token) return core::fail(token.error().message);
    s.api_token = std::move(*token);
    for (auto const& w : cfg.webhooks) {
        auto key = read_webhook_key(w);
        if (!key) return core::fail(key.error().message);
        s.webhook_keys[w.name] = std::move(*key);
    }
    return s;
}

std::vector<secret_error> webhook_secret_problems(core::config const& cfg) {
    std::vector<secret_error> problems;
    for (auto const& hook : cfg.webhooks)
        if (auto key = read_webhook_key(hook); !key) problems.push_back(key.error());
    return problems;
}

} // namespace importwatch::daemon
