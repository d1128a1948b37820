// `importwatch check`: validate the config and summarise it. Never touches
// the network; missing daemon::secrets are warnings because check may run on a build
// host where they are not installed.
#include <cerrno>
#include <cstring>
#include <iostream>

#include <unistd.h>

#include "core/config_parser.hpp"
#include "core/duration.hpp"
#include "core/url.hpp"
#include "cli/commands.hpp"
#include "daemon/admin_server.hpp"
#include "daemon/config_loader.hpp"

namespace importwatch::cli {

namespace {

std::string join(std::vector<std::string> const& items) {
    if (items.empty()) return "all";
    std::string out;
    for (auto const& item : items) out += (out.empty() ? "" : ",") + item;
    return out;
}

void warn_unreadable(std::string const& key, std::optional<std::string> const& file) {
    if (file && ::access(file->c_str(), R_OK) != 0) {
        std::cerr << "warning: " << key << ": cannot read " << *file << ": " << std::strerror(errno) << "\n";
    }
}

} // namespace

int check_command(std::string const& config_path) {
    auto cfg = daemon::load_config(config_path);
    if (!cfg) {
        std::cerr << "importwatch: " << cfg.error() << "\n";
        return exit_usage;
    }

    for (auto const& w : cfg->watches) {
        std::cout << "watch " << w.name << ": " << w.key.path() << " every "
                  << core::format_duration(cfg->polling.interval);
        if (!cfg->polling.status_intervals.empty()) {
            std::string overrides;
            for (auto const& [status, interval] : cfg->polling.status_intervals)
                overrides += (overrides.empty() ? "" : ", ") + status + " " + core::format_duration(interval);
            std::cout << " (" << overrides << ")";
        }
        std::cout << "\n";
    }
    for (auto const& hook : cfg->webhooks) {
        // The parser accepted the URL, so it parses; redacted() drops userinfo and query.
        auto u = core::parse_url(hook.url);
        std::cout << "webhook " << hook.name << ": " << (u ? u->redacted() : std::string("?"))
                  << " (types: " << join(hook.types) << ", watches: " << join(hook.watches) << ", "
                  << (hook.secret_file || hook.secret_env ? "signed" : "unsigned") << ")\n";
    }
    std::cout.flush();

    // A secret that is not here (unset, unreadable, empty) is only a warning:
    // check may run where daemon::secrets are not. One that is here but malformed is
    // a config error, as it is for run and wait.
    bool malformed = false;
    auto judge = [&](std::string const& error, bool present) {
        std::cerr << (present ? "importwatch: " : "warning: ") << error << "\n";
        malformed = malformed || present;
    };
    auto const& ld = cfg->launchdarkly;
    if (auto token = daemon::read_api_token(ld); !token) judge(token.error().message, !token.error().absent);
    warn_unreadable("launchdarkly.ca_file", ld.ca_file);
    for (auto const& problem : daemon::webhook_secret_problems(*cfg)) judge(problem.message, !problem.absent);
    for (auto const& hook : cfg->webhooks) warn_unreadable("events.webhooks[" + hook.name + "].ca_file", hook.ca_file);
    // The admin certificate and key, like secrets, may not be here yet; when
    // they are, they must make a working TLS setup, as run would need.
    if (auto const& tls = cfg->admin.tls; tls && !cfg->admin.listen.empty()) {
        bool readable = true;
        auto probe = [&](std::string const& key, std::optional<std::string> const& file) {
            readable = readable && (!file || ::access(file->c_str(), R_OK) == 0);
            warn_unreadable(key, file);
        };
        probe("admin.tls.cert_file", tls->cert_file);
        probe("admin.tls.key_file", tls->key_file);
        probe("admin.tls.client_ca_file", tls->client_ca_file);
        if (readable)
            if (auto settings = daemon::load_admin_settings(cfg->admin); !settings) judge(settings.error(), true);
    }
    for (auto const& warning : core::config_warnings(*cfg)) std::cerr << "warning: " << warning << "\n";
    return malformed ? exit_usage : exit_ok;
}

} // namespace importwatch::cli
