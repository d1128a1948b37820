#pragma once
// A Kubernetes ConfigMap volume as the kubelet lays it out and updates it:
// each file is a symlink `NAME -> ..data/NAME`, `..data` a symlink to the
// current generation `..2026_11_30_10_00_00.1234/`. An update writes a new
// generation, renames a new `..data_tmp` symlink over `..data` (atomic),
// adds symlinks for new files and removes the old generation.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace importwatch::testing {

struct configmap_volume {
    std::filesystem::path dir;
    std::string generation;   // the directory ..data points to
    int generations = 0;

    configmap_volume(std::filesystem::path d, std::map<std::string, std::string> const& files) : dir(std::move(d)) {
        std::filesystem::create_directories(dir);
        generation = write_generation(files);
        std::filesystem::create_directory_symlink(generation, dir / "..data");
        for (auto const& [name, content] : files) std::filesystem::create_symlink(std::filesystem::path("..data") / name, dir / name);
    }

    void update(std::map<std::string, std::string> const& files) {
        namespace fs = std::filesystem;
        auto const old = generation;
        generation = write_generation(files);
        fs::create_directory_symlink(generation, dir / "..data_tmp");
        fs::rename(dir / "..data_tmp", dir / "..data");
        for (auto const& [name, content] : files)
            if (!fs::is_symlink(dir / name)) fs::create_symlink(fs::path("..data") / name, dir / name);
        fs::remove_all(dir / old);
    }

    std::string path(std::string const& name) const { return (dir / name).string(); }

private:
    std::string write_generation(std::map<std::string, std::string> const& files) {
        auto const name = "..2026_11_30_10_00_0" + std::to_string(generations++) + ".12345";
        std::filesystem::create_directory(dir / name);
        for (auto const& [file, content] : files) std::ofstream(dir / name / file) << content;
        return name;
    }
};

} // namespace importwatch::testing
