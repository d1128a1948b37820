#include "daemon/log_sink.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/untrusted_text.hpp"

namespace importwatch::daemon {
namespace {

core::log_format current_format = core::log_format::text;

spdlog::level::level_enum to_spdlog(core::log_level l) {
    switch (l) {
    case core::log_level::trace: return spdlog::level::trace;
    case core::log_level::debug: return spdlog::level::debug;
    case core::log_level::info: return spdlog::level::info;
    case core::log_level::warn: return spdlog::level::warn;
    case core::log_level::error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

char const* level_name(spdlog::level::level_enum l) {
    switch (l) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "error";
    default: return "info";
    }
}

/// The sd-daemon priority prefix journald reads off each stderr line
/// (syslog levels: err 3, warning 4, info 6, debug 7).
char const* journal_prefix(spdlog::level::level_enum l) {
    switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "<7>";
    case spdlog::level::info: return "<6>";
    case spdlog::level::warn: return "<4>";
    case spdlog::level::err:
    case spdlog::level::critical: return "<3>";
    default: return "<6>";
    }
}

/// Whether stderr is the journal: systemd sets JOURNAL_STREAM to the
/// device:inode of the stream it connected, so a redirected stderr (or a
/// child that inherited the variable) does not match and gets no prefixes.
bool stderr_is_journal() {
    char const* env = std::getenv("JOURNAL_STREAM");
    if (!env) return false;
    unsigned long long dev = 0, ino = 0;
    char tail = 0;
    if (std::sscanf(env, "%llu:%llu%c", &dev, &ino, &tail) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

std::string timestamp(std::chrono::system_clock::time_point t) {
    return core::format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(t));
}

/// Formats spdlog lines as our text or JSON lines. A payload that already is a
/// whole line (events) is marked by a leading '\x1e' and passed through.
/// With `journal`, each line starts with its priority prefix.
class line_formatter final : public spdlog::formatter {
public:
    line_formatter(core::log_format f, bool journal) : format_(f), journal_(journal) {}

    void format(spdlog::details::log_msg const& msg, spdlog::memory_buf_t& dest) override {
        std::string_view payload(msg.payload.data(), msg.payload.size());
        std::string line;
        if (!payload.empty() && payload.front() == '\x1e') {
            line.assign(payload.substr(1));
        } else if (format_ == core::log_format::json) {
            boost::json::object o;
            o["ts"] = timestamp(msg.time);
            o["level"] = level_name(msg.level);
            o["msg"] = payload;
            line = boost::json::serialize(o);
        } else {
            line = timestamp(msg.time);
            line += ' ';
            line += level_name(msg.level);
            line += ' ';
            line += payload;
        }
        // Whatever a line carries (server text in errors, statuses, file
        // names), it stays one line and shows no terminal or bidi controls.
        line = format_ == core::log_format::json ? core::json_printable(std::move(line))
                                                 : core::printable(std::move(line));
        line += '\n';
        if (journal_) {
            // journald splits on newlines: every piece gets the priority.
            std::string_view const prefix = journal_prefix(msg.level);
            for (std::size_t i = 0; i < line.size();) {
                auto const end = line.find('\n', i) + 1;
                dest.append(prefix.data(), prefix.data() + prefix.size());
                dest.append(line.data() + i, line.data() + end);
                i = end;
            }
            return;
        }
        dest.append(line.data(), line.data() + line.size());
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<line_formatter>(format_, journal_);
    }

private:
    core::log_format format_;
    bool journal_;
};

} // namespace

char const* to_string(core::log_level level) { return level_name(to_spdlog(level)); }

void configure_logging(core::log_format format, core::log_level level, bool to_stdout) {
    current_format = format;
    auto logger = spdlog::get("importwatch");
    if (!logger || to_stdout) {
        spdlog::sink_ptr sink;
        if (to_stdout) sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
        else sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        if (logger) spdlog::drop("importwatch");
        logger = std::make_shared<spdlog::logger>("importwatch", sink);
        spdlog::register_logger(logger);
        spdlog::set_default_logger(logger);
    }
    logger->set_formatter(std::make_unique<line_formatter>(format, !to_stdout && stderr_is_journal()));
    logger->set_level(to_spdlog(level));
    logger->flush_on(spdlog::level::trace);
}

std::string event_text_line(core::event const& e) {
    return core::format_rfc3339(e.time) + " " + to_string(e.level) + " " + e.summary;
}

void log_fields(core::log_level level, std::string const& msg, boost::json::object fields) {
    auto const l = to_spdlog(level);
    auto logger = spdlog::default_logger();
    if (!logger->should_log(l)) return;
    if (current_format != core::log_format::json) {
        logger->log(l, "{}", msg);
        return;
    }
    boost::json::object o;
    o["ts"] = timestamp(std::chrono::system_clock::now());
    o["level"] = to_string(level);
    o["msg"] = msg;
    for (auto& f : fields)
        if (!o.contains(f.key())) o[f.key()] = std::move(f.value());
    logger->log(l, "{}", "\x1e" + boost::json::serialize(o));
}

void log_event(core::event const& e) {
    auto const level = to_spdlog(e.level);
    auto logger = spdlog::default_logger();
    if (!logger->should_log(level)) return;
    std::string line = "\x1e";
    if (current_format == core::log_format::json) {
        boost::json::object o;
        o["ts"] = core::format_rfc3339(e.time);
        o["level"] = to_string(e.level);
        o["msg"] = e.summary;
        boost::system::error_code ec;
        o["event"] = boost::json::parse(e.body, ec);
        line += boost::json::serialize(o);
    } else {
        line += event_text_line(e);
    }
    logger->log(level, line);
}

} // namespace importwatch::daemon
