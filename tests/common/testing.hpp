#pragma once
// Fixtures for tests: temp dirs, a throwaway PKI, running an io_context until
// a condition holds, and spawning the importwatch binary.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "net/certificate_authority.hpp"
#include "net/tls.hpp"

namespace importwatch::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// Built with AddressSanitizer (the asan preset builds the daemon and the
/// tests alike): memory figures mean nothing (shadow memory, a quarantine)
/// and the unoptimised, instrumented daemon is several times slower, so
/// tests print such figures or allow more time instead of asserting them.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

/// A fresh directory under /tmp, removed with everything in it.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    fs::path const& path() const { return path_; }
    /// Writes `content` to path()/name and returns the full path.
    std::string write(std::string const& name, std::string const& content) const;

private:
    fs::path path_;
};

/// A CA and a server certificate for localhost/127.0.0.1 made at run time.
struct test_pki {
    net::certificate_authority ca;
    net::pem_pair server;
    test_pki();
    std::shared_ptr<net::ssl::context> server_context() const;
    std::shared_ptr<net::ssl::context> client_context() const;
    /// Writes ca.pem, server.pem and server.key into dir; returns the CA path.
    std::string write_files(temp_dir const& dir) const;
};

/// A port on 127.0.0.1 for a child process to listen on (or to find
/// closed). Tests run side by side, so a port that was merely free a moment
/// ago is not enough: this one lies below the kernel's ephemeral range, where
/// no port-0 listener or outgoing connection lands, and a lock file in /tmp
/// keeps every other test process on the machine from being handed it while
/// this process lives.
std::uint16_t free_port();

/// Runs ioc until `done()` holds or `timeout` passes; returns done().
bool run_until(boost::asio::io_context& ioc, std::function<bool()> const& done,
               std::chrono::milliseconds timeout = 10s);

/// Reads a whole file ("" when missing).
std::string read_file(fs::path const& p);

/// A child process running the importwatch binary, stdout and stderr
/// captured to files. Killed (SIGKILL) on destruction if still running.
class child_process {
public:
    child_process(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                  std::optional<std::string> stdout_file = {}, std::optional<std::string> stderr_file = {});
    ~child_process();
    child_process(child_process const&) = delete;
    child_process& operator=(child_process const&) = delete;

    int pid() const { return pid_; }
    /// Waits for exit; the exit code, or nullopt on timeout. A signal death
    /// yields 128 + signal.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    void signal(int sig);
    bool running();
    std::string out() const;   // stdout so far
    std::string err() const;   // stderr so far

private:
    int pid_ = -1;
    std::optional<int> status_;
    std::string out_path_, err_path_;
    std::unique_ptr<temp_dir> own_dir_;
};

/// Polls `done` every 20 ms until it holds or `timeout` passes.
bool eventually(std::function<bool()> const& done, std::chrono::milliseconds timeout = 10s);

} // namespace importwatch::testing
