#include "daemon/log_sink.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "core/untrusted_text.hpp"

namespace importwatch::daemon {
namespace {

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

/// The JSON line of an event: ts, level and msg, then the event's own bytes
/// as `event`, spliced in (the CloudEvent is serialized once, in core).
std::string event_json_line(core::event const& e) {
    boost::json::object head;
    head.reserve(3);
    head.emplace("ts", core::format_rfc3339(e.time));
    head.emplace("level", to_string(e.level));
    head.emplace("msg", e.summary);
    auto const prefix = boost::json::serialize(head);   // ends with its closing '}'
    std::string_view constexpr event_member = ",\"event\":";
    std::string line;
    line.reserve(prefix.size() + event_member.size() + e.body.size() + 1);
    line.append(prefix, 0, prefix.size() - 1).append(event_member).append(e.body).append("}");
    return line;
}

} // namespace

log_sink::log_sink(std::ostream& out, core::log_format format, bool journal)
    : out_(out), format_(format), journal_(journal) {}

void log_sink::set_line_format(core::log_format format) {
    std::lock_guard lock(mutex_);
    format_ = format;
}

void log_sink::write_event(core::event const& e) {
    std::lock_guard lock(mutex_);
    write_line(to_spdlog(e.level), format_ == core::log_format::json ? event_json_line(e) : event_text_line(e));
}

void log_sink::write_fields(core::log_level level, std::string const& msg, boost::json::object const& fields) {
    auto const now = std::chrono::system_clock::now();
    std::lock_guard lock(mutex_);
    if (format_ != core::log_format::json) {
        write_line(to_spdlog(level), timestamp(now) + " " + to_string(level) + " " + msg);
        return;
    }
    boost::json::object o;
    o.reserve(3 + fields.size());
    o.emplace("ts", timestamp(now));
    o.emplace("level", to_string(level));
    o.emplace("msg", msg);
    for (auto const& f : fields) o.emplace(f.key(), f.value());   // ts, level and msg stay ours
    write_line(to_spdlog(level), boost::json::serialize(o));
}

void log_sink::sink_it_(spdlog::details::log_msg const& msg) {
    std::string_view const payload(msg.payload.data(), msg.payload.size());
    if (format_ == core::log_format::json) {
        boost::json::object o;
        o.reserve(3);
        o.emplace("ts", timestamp(msg.time));
        o.emplace("level", level_name(msg.level));
        o.emplace("msg", payload);
        write_line(msg.level, boost::json::serialize(o));
        return;
    }
    std::string line = timestamp(msg.time);
    line += ' ';
    line += level_name(msg.level);
    line += ' ';
    line += payload;
    write_line(msg.level, std::move(line));
}

void log_sink::flush_() { out_.flush(); }

void log_sink::write_line(spdlog::level::level_enum level, std::string line) {
    // Whatever a line carries (server text in errors, statuses, file
    // names), it stays one line and shows no terminal or bidi controls.
    line = format_ == core::log_format::json ? core::json_printable(std::move(line)) : core::printable(std::move(line));
    line += '\n';
    if (journal_) {
        // journald splits on newlines: every piece gets the priority.
        std::string_view const prefix = journal_prefix(level);
        std::string prefixed;
        prefixed.reserve(line.size() + prefix.size());
        for (std::size_t i = 0; i < line.size();) {
            auto const end = line.find('\n', i) + 1;
            prefixed.append(prefix).append(line, i, end - i);
            i = end;
        }
        line = std::move(prefixed);
    }
    out_.write(line.data(), static_cast<std::streamsize>(line.size()));
    out_.flush();
}

char const* to_string(core::log_level level) { return level_name(to_spdlog(level)); }

void configure_logging(core::log_format format, core::log_level level, bool to_stdout) {
    auto logger = spdlog::get("importwatch");
    auto sink = logger && !logger->sinks().empty() ? std::dynamic_pointer_cast<log_sink>(logger->sinks().front())
                                                   : nullptr;
    if (!sink || to_stdout) {
        sink = to_stdout ? std::make_shared<log_sink>(std::cout, format)
                         : std::make_shared<log_sink>(std::cerr, format, stderr_is_journal());
        if (logger) spdlog::drop("importwatch");
        logger = std::make_shared<spdlog::logger>("importwatch", sink);
        spdlog::register_logger(logger);
        spdlog::set_default_logger(logger);
    }
    sink->set_line_format(format);
    logger->set_level(to_spdlog(level));
    logger->flush_on(spdlog::level::trace);
}

std::string event_text_line(core::event const& e) {
    return core::format_rfc3339(e.time) + " " + to_string(e.level) + " " + e.summary;
}

namespace {

/// Hands a whole line to every sink of the default logger that takes its
/// level: a log_sink writes it in its own format (`whole`), any other sink
/// gets `text` as a plain message (tests capture the poller's lines so).
template <class Whole, class Text>
void dispatch(spdlog::level::level_enum level, Whole whole, Text text) {
    auto* logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    for (auto const& sink : logger->sinks()) {
        if (!sink->should_log(level)) continue;
        if (auto* ours = dynamic_cast<log_sink*>(sink.get())) {
            whole(*ours);
            continue;
        }
        std::string const payload = text();
        sink->log(spdlog::details::log_msg(logger->name(), level, payload));
        if (level >= logger->flush_level()) sink->flush();
    }
}

} // namespace

void log_fields(core::log_level level, std::string const& msg, boost::json::object const& fields) {
    dispatch(
        to_spdlog(level), [&](log_sink& s) { s.write_fields(level, msg, fields); }, [&] { return msg; });
}

void log_event(core::event const& e) {
    dispatch(
        to_spdlog(e.level), [&](log_sink& s) { s.write_event(e); }, [&] { return event_text_line(e); });
}

} // namespace importwatch::daemon
