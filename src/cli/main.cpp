// importwatch: parse the command line, call one function per subcommand.
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>

#include "core/duration.hpp"
#include "cli/commands.hpp"

namespace po = boost::program_options;
using namespace importwatch;

namespace {

constexpr char const* usage = R"(importwatch — watches LaunchDarkly big-segment imports

usage:
  importwatch run    --config FILE [--log-format text|json] [--log-level trace|debug|info|warn|error]
  importwatch check  --config FILE
  importwatch wait   --config FILE [--watch NAME]... [--timeout DURATION]
  importwatch wait   PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID [--base-url URL] [--token-env VAR | --token-file F]
                     [--ca-file F] [--interval D] [--timeout D]
  importwatch demo   [--speed FACTOR] [--webhook URL]
  importwatch simulate --listen HOST:PORT --scenario FILE [--tls-cert F --tls-key F]
  importwatch outbox --config FILE [list | replay [--webhook NAME]]
  importwatch healthcheck [--url URL] [--ca-file F]
  importwatch --version | --help      (every subcommand has --help too)
)";

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

core::milliseconds duration_option(std::string const& flag, std::string const& text) {
    auto d = core::parse_duration(text);
    if (!d) throw usage_error(flag + ": not a duration like 30s, 5m or 1h30m: \"" + text + "\"");
    return *d;
}

template <class T>
std::optional<T> optional_of(po::variables_map const& vm, char const* name) {
    if (vm.count(name)) return vm[name].as<T>();
    return std::nullopt;
}

/// Parses the arguments after the subcommand; prints help and returns nullopt for --help.
std::optional<po::variables_map> parse(std::vector<std::string> const& args, po::options_description options,
                                       std::string const& synopsis,
                                       po::positional_options_description const& positional = {}) {
    options.add_options()("help,h", "show this help");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: " << synopsis << "\n\n" << options;
        return std::nullopt;
    }
    po::notify(vm);
    return vm;
}

int dispatch(std::string const& command, std::vector<std::string> const& args) {
    if (command == "run") {
        po::options_description o("options");
        o.add_options()("config", po::value<std::string>()->required(), "config file (YAML)")(
            "log-format", po::value<std::string>(), "text | json (overrides events.log.format)")(
            "log-level", po::value<std::string>(), "trace | debug | info | warn | error");
        auto vm = parse(args, o, "importwatch run --config FILE [--log-format text|json] [--log-level LEVEL]");
        if (!vm) return cli::exit_ok;
        cli::run_options r{(*vm)["config"].as<std::string>(), {}, {}};
        if (auto f = optional_of<std::string>(*vm, "log-format")) {
            if (*f == "text") r.log_format = core::log_format::text;
            else if (*f == "json") r.log_format = core::log_format::json;
            else throw usage_error("--log-format: expected text or json, got \"" + *f + "\"");
        }
        if (auto l = optional_of<std::string>(*vm, "log-level")) {
            static std::pair<char const*, core::log_level> const levels[] = {
                {"trace", core::log_level::trace}, {"debug", core::log_level::debug},
                {"info", core::log_level::info},   {"warn", core::log_level::warn},
                {"error", core::log_level::error}};
            for (auto [name, level] : levels)
                if (*l == name) r.log_level = level;
            if (!r.log_level) throw usage_error("--log-level: expected trace, debug, info, warn or error, got \"" + *l + "\"");
        }
        return cli::run_command(r);
    }
    if (command == "check") {
        po::options_description o("options");
        o.add_options()("config", po::value<std::string>()->required(), "config file (YAML)");
        auto vm = parse(args, o, "importwatch check --config FILE");
        if (!vm) return cli::exit_ok;
        return cli::check_command((*vm)["config"].as<std::string>());
    }
    if (command == "wait") {
        po::options_description o("options");
        o.add_options()("config", po::value<std::string>(), "config file (YAML)")(
            "watch", po::value<std::vector<std::string>>(), "wait for this watch only (repeatable)")(
            "import", po::value<std::string>(), "PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID")(
            "base-url", po::value<std::string>(), "LaunchDarkly base URL")(
            "token-env", po::value<std::string>(), "variable holding the API token (default LD_API_TOKEN)")(
            "token-file", po::value<std::string>(), "file holding the API token")(
            "ca-file", po::value<std::string>(), "CA certificates to trust (PEM)")(
            "interval", po::value<std::string>(), "poll interval (default 10s)")(
            "timeout", po::value<std::string>(), "give up after this long (exit 4)");
        po::positional_options_description p;
        p.add("import", 1);
        auto vm = parse(args, o,
                        "importwatch wait --config FILE [--watch NAME]... [--timeout D]\n"
                        "       importwatch wait PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID [--base-url URL] "
                        "[--token-env VAR | --token-file F] [--ca-file F] [--interval D] [--timeout D]",
                        p);
        if (!vm) return cli::exit_ok;
        cli::wait_options w;
        w.config_path = optional_of<std::string>(*vm, "config");
        w.import_path = optional_of<std::string>(*vm, "import");
        if (w.config_path.has_value() == w.import_path.has_value())
            throw usage_error("wait: give either --config FILE or PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID");
        if (vm->count("watch")) w.watch_names = (*vm)["watch"].as<std::vector<std::string>>();
        bool form2_flag = vm->count("base-url") || vm->count("token-env") || vm->count("token-file") ||
                          vm->count("ca-file") || vm->count("interval");
        if (w.config_path && form2_flag)
            throw usage_error("wait: --base-url, --token-env, --token-file, --ca-file and --interval go with "
                              "PROJECT/ENVIRONMENT/SEGMENT/IMPORT_ID, not --config");
        if (w.import_path && !w.watch_names.empty()) throw usage_error("wait: --watch goes with --config");
        w.base_url = optional_of<std::string>(*vm, "base-url");
        w.token_env = optional_of<std::string>(*vm, "token-env");
        w.token_file = optional_of<std::string>(*vm, "token-file");
        w.ca_file = optional_of<std::string>(*vm, "ca-file");
        if (auto i = optional_of<std::string>(*vm, "interval")) w.interval = duration_option("--interval", *i);
        if (auto t = optional_of<std::string>(*vm, "timeout")) w.timeout = duration_option("--timeout", *t);
        return cli::wait_command(w);
    }
    if (command == "demo") {
        po::options_description o("options");
        o.add_options()("speed", po::value<double>()->default_value(1.0), "run the scenario this many times faster")(
            "webhook", po::value<std::string>(), "also deliver the events to this URL");
        auto vm = parse(args, o, "importwatch demo [--speed FACTOR] [--webhook URL]");
        if (!vm) return cli::exit_ok;
        return cli::demo_command({(*vm)["speed"].as<double>(), optional_of<std::string>(*vm, "webhook")});
    }
    if (command == "simulate") {
        po::options_description o("options");
        o.add_options()("listen", po::value<std::string>()->required(), "HOST:PORT to listen on")(
            "scenario", po::value<std::string>()->required(), "scenario file (YAML)")(
            "tls-cert", po::value<std::string>(), "serve HTTPS with this certificate chain (PEM)")(
            "tls-key", po::value<std::string>(), "and this private key (PEM)");
        auto vm = parse(args, o, "importwatch simulate --listen HOST:PORT --scenario FILE [--tls-cert F --tls-key F]");
        if (!vm) return cli::exit_ok;
        return cli::simulate_command({(*vm)["listen"].as<std::string>(), (*vm)["scenario"].as<std::string>(),
                                         optional_of<std::string>(*vm, "tls-cert"),
                                         optional_of<std::string>(*vm, "tls-key")});
    }
    if (command == "outbox") {
        po::options_description o("options");
        o.add_options()("config", po::value<std::string>()->required(), "config file (YAML)")(
            "action", po::value<std::string>()->default_value("list"), "list | replay")(
            "webhook", po::value<std::string>(), "replay: only this webhook's dead letters");
        po::positional_options_description p;
        p.add("action", 1);
        auto vm = parse(args, o, "importwatch outbox --config FILE [list | replay [--webhook NAME]]", p);
        if (!vm) return cli::exit_ok;
        cli::outbox_options out{(*vm)["config"].as<std::string>(), (*vm)["action"].as<std::string>(),
                                   optional_of<std::string>(*vm, "webhook")};
        if (out.action != "list" && out.action != "replay")
            throw usage_error("outbox: expected list or replay, got \"" + out.action + "\"");
        if (out.action == "list" && out.webhook) throw usage_error("outbox: --webhook goes with replay");
        return cli::outbox_command(out);
    }
    if (command == "healthcheck") {
        po::options_description o("options");
        o.add_options()("url", po::value<std::string>()->default_value("http://127.0.0.1:9464/healthz"),
                        "health endpoint to ask")(
            "ca-file", po::value<std::string>(),
            "for https: CA certificates (PEM) that signed the admin certificate; default: the system store");
        auto vm = parse(args, o, "importwatch healthcheck [--url URL] [--ca-file F]");
        if (!vm) return cli::exit_ok;
        std::optional<std::string> ca_file;
        if (vm->count("ca-file")) ca_file = (*vm)["ca-file"].as<std::string>();
        return cli::healthcheck_command((*vm)["url"].as<std::string>(), ca_file);
    }
    throw usage_error("unknown command \"" + command + "\"");
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::cerr << usage;
        return cli::exit_usage;
    }
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::cout << usage;
        return cli::exit_ok;
    }
    if (args[0] == "--version") {
        // IMPORTWATCH_REVISION: `git describe` of the checkout it was built from, or "".
        std::string_view const revision = IMPORTWATCH_REVISION;
        std::cout << "importwatch " << IMPORTWATCH_VERSION;
        if (!revision.empty()) std::cout << " (git " << revision << ")";
        std::cout << "\n";
        return cli::exit_ok;
    }
    try {
        return dispatch(args[0], {args.begin() + 1, args.end()});
    } catch (usage_error const& e) {
        std::cerr << "importwatch: " << e.what() << "\n(see importwatch --help)\n";
    } catch (po::error const& e) {
        std::cerr << "importwatch " << args[0] << ": " << e.what() << "\n(see importwatch " << args[0] << " --help)\n";
    }
    return cli::exit_usage;
}
