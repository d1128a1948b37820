// `importwatch outbox --config FILE [list | replay [--webhook NAME]]`:
// inspect and replay webhook deliveries. Opens the store without the state
// dir lock, so it works beside a running daemon (SQLite WAL: readers and one
// writer at a time; the busy timeout covers the daemon's short transactions).
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>

#include "core/time.hpp"
#include "cli/commands.hpp"
#include "daemon/config_loader.hpp"
#include "store/state_store.hpp"

namespace importwatch::cli {

namespace {

// One field of a tab-separated line: no tabs or newlines inside, "-" when empty.
std::string field(std::string const& text) {
    if (text.empty()) return "-";
    std::string out = text;
    for (auto& c : out)
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return out;
}

int list(store::state_store& st) {
    auto rows = st.list_outbox();
    if (!rows) {
        std::cerr << "outbox: " << st.path() << ": " << rows.error() << '\n';
        return exit_failure;
    }
    std::cout << "STATE\tWEBHOOK\tWATCH\tSEQUENCE\tEVENT_ID\tATTEMPTS\tNEXT_ATTEMPT\tLAST_ERROR\n";
    for (auto const& d : *rows) {
        std::cout << (d.dead ? "dead" : "pending") << '\t' << field(d.webhook) << '\t' << field(d.watch_name) << '\t'
                  << d.sequence << '\t' << field(d.event_id) << '\t' << d.attempts << '\t'
                  << (d.dead ? std::string("-") : core::format_rfc3339(d.next_attempt)) << '\t'
                  << field(d.last_error) << '\n';
    }
    return exit_ok;
}

int replay(store::state_store& st, core::config const& cfg, std::optional<std::string> const& webhook) {
    if (webhook) {
        // A webhook removed from the config may still have dead letters: accept those names too.
        bool known = false;
        for (auto const& w : cfg.webhooks) known = known || w.name == *webhook;
        if (!known) {
            auto backlog = st.backlog();
            known = backlog && backlog->count(*webhook) > 0;
        }
        if (!known) {
            std::cerr << "outbox replay: unknown webhook " << *webhook << '\n';
            return exit_usage;
        }
    }
    auto const now = std::chrono::time_point_cast<core::milliseconds>(std::chrono::system_clock::now());
    auto n = st.replay(webhook, now);
    if (!n) {
        std::cerr << "outbox: " << st.path() << ": " << n.error() << '\n';
        return exit_failure;
    }
    std::cout << "replayed " << *n << " dead letters\n";
    return exit_ok;
}

} // namespace

int outbox_command(outbox_options const& options) {
    if (options.action != "list" && options.action != "replay") {
        std::cerr << "outbox: unknown action '" << options.action << "' (expected list or replay)\n";
        return exit_usage;
    }
    if (options.action == "list" && options.webhook) {
        std::cerr << "outbox: --webhook applies to replay only\n";
        return exit_usage;
    }
    auto cfg = daemon::load_config(options.config_path);
    if (!cfg) {
        std::cerr << cfg.error() << '\n';
        return exit_usage;
    }
    auto const& dir = cfg->state.dir;
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(dir) / "importwatch.db", ec)) {
        std::cerr << "no state at " << dir << '\n';
        return exit_failure;
    }
    auto st = store::state_store::open(dir, store::open_mode::tool);
    if (!st) {
        std::cerr << st.error() << '\n';
        return exit_failure;
    }
    return options.action == "list" ? list(**st) : replay(**st, *cfg, options.webhook);
}

} // namespace importwatch::cli
