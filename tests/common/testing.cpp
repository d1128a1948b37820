#include "common/testing.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>

extern char** environ;

namespace importwatch::testing {

temp_dir::temp_dir() {
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
        auto candidate = fs::temp_directory_path() / ("importwatch-test-" + std::to_string(rd()));
        if (fs::create_directory(candidate)) {
            path_ = candidate;
            return;
        }
    }
    throw std::runtime_error("cannot create a temp dir");
}

temp_dir::~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string temp_dir::write(std::string const& name, std::string const& content) const {
    auto p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
}

test_pki::test_pki() : server(ca.issue_server_certificate({"localhost", "127.0.0.1"})) {}

std::shared_ptr<net::ssl::context> test_pki::server_context() const {
    auto ctx = net::make_server_context_from_pem(server.certificate, server.private_key);
    if (!ctx) throw std::runtime_error(ctx.error());
    return *ctx;
}

std::shared_ptr<net::ssl::context> test_pki::client_context() const {
    auto ctx = net::make_client_context_from_pem(ca.certificate_pem());
    if (!ctx) throw std::runtime_error(ctx.error());
    return *ctx;
}

std::string test_pki::write_files(temp_dir const& dir) const {
    dir.write("server.pem", server.certificate);
    dir.write("server.key", server.private_key);
    return dir.write("ca.pem", ca.certificate_pem());
}

std::uint16_t free_port() {
    // Below the ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by
    // default) and above the ports services usually take.
    int ephemeral_low = 32768;
    if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> ephemeral_low;
    int const high = ephemeral_low > 24'000 ? ephemeral_low - 1 : 32'767;
    int const low = high - 8'000;

    auto const locks = fs::temp_directory_path() / "importwatch-test-ports";
    std::error_code ec;
    fs::create_directories(locks, ec);
    int const span = high - low + 1;
    int const first = static_cast<int>(std::random_device{}() % static_cast<unsigned>(span));
    for (int i = 0; i < span; ++i) {
        auto const port = static_cast<std::uint16_t>(low + (first + i) % span);
        // Held (never closed) until this process exits; not inherited by children.
        int const fd = ::open((locks / std::to_string(port)).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) continue;
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd);   // another test process has it
            continue;
        }
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor probe(ioc);
        boost::system::error_code bind_error;
        probe.open(boost::asio::ip::tcp::v4(), bind_error);
        if (!bind_error) probe.bind({boost::asio::ip::make_address("127.0.0.1"), port}, bind_error);
        if (!bind_error) return port;
        ::close(fd);   // something outside the tests listens there
    }
    throw std::runtime_error("no free port in " + std::to_string(low) + "-" + std::to_string(high));
}

bool run_until(boost::asio::io_context& ioc, std::function<bool()> const& done,
               std::chrono::milliseconds timeout) {
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        if (ioc.stopped()) ioc.restart();
        ioc.run_for(10ms);
    }
    return done();
}

std::string read_file(fs::path const& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool eventually(std::function<bool()> const& done, std::chrono::milliseconds timeout) {
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

child_process::child_process(std::vector<std::string> args, std::map<std::string, std::string> env,
                             std::optional<std::string> stdout_file, std::optional<std::string> stderr_file) {
    if (!stdout_file || !stderr_file) own_dir_ = std::make_unique<temp_dir>();
    out_path_ = stdout_file ? *stdout_file : (own_dir_->path() / "stdout").string();
    err_path_ = stderr_file ? *stderr_file : (own_dir_->path() / "stderr").string();

    std::vector<std::string> argv_s{IMPORTWATCH_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);

    // The parent's environment, overridden by `env` (an empty value unsets).
    std::map<std::string, std::string> merged;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (auto& [k, v] : env) {
        if (v.empty()) merged.erase(k);
        else merged[k] = v;
    }
    std::vector<std::string> env_s;
    for (auto& [k, v] : merged) env_s.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("posix_spawn failed: " + std::to_string(rc));
}

child_process::~child_process() {
    if (running()) {
        ::kill(pid_, SIGKILL);
        wait(5s);
    }
}

std::optional<int> child_process::wait(std::chrono::milliseconds timeout) {
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(10ms);
    }
    return status_;
}

void child_process::signal(int sig) {
    if (!status_) ::kill(pid_, sig);
}

bool child_process::running() {
    if (status_) return false;
    return !wait(0ms).has_value();
}

std::string child_process::out() const { return read_file(out_path_); }
std::string child_process::err() const { return read_file(err_path_); }

} // namespace importwatch::testing
