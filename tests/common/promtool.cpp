#include "common/promtool.hpp"

#include <cstdlib>

#include <sys/wait.h>

namespace importwatch::testing {

std::optional<std::pair<int, std::string>> promtool_check(temp_dir const& dir, std::string const& text) {
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) return std::nullopt;
    auto in = dir.write("metrics.txt", text);
    auto out = (dir.path() / "promtool.out").string();
    int rc = std::system(("promtool check metrics < " + in + " > " + out + " 2>&1").c_str());
    return std::pair{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out)};
}

} // namespace importwatch::testing
