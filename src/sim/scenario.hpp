#pragma once
// A simulator scenario: the imports it serves and the faults it injects.
//
//   token: sim-token                 # expected Authorization; default: none checked
//   imports:
//     - project: default
//       environment: production
//       segment: vip-users
//       import_id: imp-1
//       mode: replace                # default merge
//       steps:                       # statuses in order; time since simulator start
//         - { status: preparing, for: 2s, files: [{filename: a.csv, status: pending}] }
//         - { status: in_progress, for: 3s }
//         - { status: complete }     # the last step lasts forever
//       faults: [...]                # faults for this import only
//   faults:                          # faults for every request
//     - { type: rate_limit, from: 1s, until: 4s, retry_after: 2s, reset_in: 3s }
//     - { type: server_error, status: 503, probability: 0.3 }
//     - { type: delay, delay: 5s, count: 1 }
//     - { type: reset | truncate | malformed | oversized, ... }
//     - { type: remaining_zero, reset_in: 2s, ... }   # 200 with X-Ratelimit-*-Remaining: 0
//     - { type: unauthorized | not_found | forbidden | bad_request, ... }
//     - { type: flapping_files, files: 2000 }  # every file's status flips on every request
//     - { type: invented_status, length: 204800 }   # a new status this long on every request
//
// A fault applies while its window [from, until) holds (times since start,
// scaled by speed), to at most `count` requests, each with `probability`.
// The import's own faults are tried before the global ones; the first that
// applies wins and uses up one of its `count`. Global faults also hit requests
// for unknown imports, except those that rewrite an Import body (malformed,
// oversized, unknown_status, invalid_field, remaining_zero, flapping_files,
// invented_status). Delays,
// retry_after and reset_in are real time: speed does not scale them.
//
// Strict: unknown keys, keys another fault type uses, duplicates, `for` on
// the last step and a missing `for` elsewhere are errors reading
// "FILE:LINE:COL: key.path: what is wrong", like the config.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"
#include "core/time.hpp"

namespace importwatch::sim {

using core::milliseconds;

struct file_step {
    std::string filename;
    std::string status;
};

struct import_step {
    std::string status;
    milliseconds duration{0};          // 0 on the last step: forever
    std::vector<file_step> files;
};

enum class fault_type {
    rate_limit, remaining_zero, server_error, delay, reset, truncate, malformed, oversized,
    unauthorized, forbidden, not_found, bad_request, invalid_field, unknown_status,
    flapping_files, invented_status,
};

/// The YAML name of a fault type ("rate_limit", …).
std::string_view to_string(fault_type type);

struct fault {
    fault_type type = fault_type::server_error;
    milliseconds from{0};
    std::optional<milliseconds> until;
    std::optional<std::uint64_t> count;          // at most this many requests
    double probability = 1.0;
    int status = 500;                            // server_error
    std::optional<milliseconds> retry_after;     // rate_limit: Retry-After seconds
    bool retry_after_date = false;               // rate_limit: send it as an HTTP-date
    std::optional<milliseconds> reset_in;        // X-Ratelimit-Reset = now + reset_in
    milliseconds delay{0};                       // delay
    std::size_t files = 2000;                    // flapping_files: how many files
    std::size_t length = 200 * 1024;             // invented_status: bytes of each status
};

struct simulated_import {
    std::string project, environment, segment, import_id;
    std::string mode = "merge";
    std::vector<import_step> steps;
    std::vector<fault> faults;
    std::string path() const;                    // p/e/s/i
};

struct scenario {
    std::optional<std::string> token;
    std::vector<simulated_import> imports;
    std::vector<fault> faults;
};

core::expected<scenario> parse_scenario(std::string_view yaml_text, std::string const& file_name);

} // namespace importwatch::sim
