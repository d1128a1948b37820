#pragma once
// What spdlog's default logger writes while one of these lives, as
// "LEVEL message" lines: for tests that check what was (or was not) logged.
#include <memory>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace importwatch::testing {

struct log_capture {
    std::ostringstream out;
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();

    explicit log_capture(spdlog::level::level_enum level = spdlog::level::info) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
        sink->set_pattern("%l %v");
        auto logger = std::make_shared<spdlog::logger>("test", sink);
        logger->set_level(level);
        spdlog::set_default_logger(logger);
    }
    ~log_capture() { spdlog::set_default_logger(previous); }
    log_capture(log_capture const&) = delete;
    log_capture& operator=(log_capture const&) = delete;
};

} // namespace importwatch::testing
