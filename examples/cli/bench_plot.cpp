#include "bench_plot.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "cli_args.h"

extern char **environ;

namespace mst::cli {
namespace {

namespace fs = std::filesystem;

void write_text(const fs::path &path, const std::string &text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw UsageError("cannot write '" + path.string() + "'");
}

// gnuplot's double-quoted strings: backslash and quote escaped.
std::string gp_string(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string find_gnuplot() {
    const char *path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        if (dir.empty()) continue;
        const fs::path candidate = fs::path(dir) / "gnuplot";
        if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    throw UsageError("--plot needs gnuplot on PATH (Debian: apt-get install gnuplot-nox)");
}

std::string plot_data(const std::vector<PlotPoint> &points, std::vector<std::string> &series_out) {
    series_out.clear();
    std::map<std::string, std::vector<PlotPoint>> by_series;
    for (const PlotPoint &p : points) {
        if (!by_series.count(p.series)) series_out.push_back(p.series);
        by_series[p.series].push_back(p);
    }
    std::string text = "# moestream bench: expert cache budget (MiB), decode tok/s; one block per series\n";
    for (size_t i = 0; i < series_out.size(); ++i) {
        std::vector<PlotPoint> &block = by_series[series_out[i]];
        std::stable_sort(block.begin(), block.end(),
                         [](const PlotPoint &a, const PlotPoint &b) { return a.cache_mib < b.cache_mib; });
        if (i) text += "\n\n";
        text += fmt::format("# {}\n", series_out[i]);
        for (const PlotPoint &p : block) text += fmt::format("{} {}\n", p.cache_mib, p.decode_tps);
    }
    return text;
}

std::string plot_terminal(const std::string &plot_path) {
    const std::string ext = fs::path(plot_path).extension().string();
    if (ext == ".svg") return "svg size 900,560 dynamic background rgb 'white'";
    if (ext == ".png") return "png size 900,560";
    throw UsageError("--plot '" + plot_path + "': the name must end in .svg or .png");
}

void write_plot(const std::string &plot_path, const std::vector<PlotPoint> &points, const std::string &gnuplot) {
    const fs::path plot(plot_path);
    const std::string terminal = plot_terminal(plot_path);
    fs::path data = plot, script = plot;
    data.replace_extension(".dat");
    script.replace_extension(".gp");
    std::vector<std::string> series;
    write_text(data, plot_data(points, series));

    std::string gp = fmt::format(
        "# Re-make the plot with: gnuplot {}\n"
        "set terminal {}\n"
        "set output {}\n"
        "set title 'moestream bench: decode speed against the expert cache budget'\n"
        "set xlabel 'expert cache budget (MiB)'\n"
        "set ylabel 'decode tok/s'\n"
        "set yrange [0:*]\n"
        "set grid\n"
        "set key below\n"
        "plot ",
        script.filename().string(), terminal, gp_string(plot.filename().string()));
    for (size_t i = 0; i < series.size(); ++i)
        gp += fmt::format("{}{} index {} using 1:2 with linespoints title {}", i ? ", \\\n     " : "",
                          gp_string(data.filename().string()), i, gp_string(series[i]));
    gp += "\n";
    write_text(script, gp);

    // gnuplot runs in the plot's directory, so the script's file names are relative and
    // the three files can move together.
    const std::string dir = plot.parent_path().empty() ? "." : plot.parent_path().string();
    const std::string script_name = script.filename().string();
    const char *argv[] = {gnuplot.c_str(), script_name.c_str(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    pid_t pid = 0;
    const int err = posix_spawn(&pid, gnuplot.c_str(), &actions, nullptr, const_cast<char *const *>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (err) throw UsageError(fmt::format("cannot run {}: {}", gnuplot, std::strerror(err)));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw UsageError(fmt::format("gnuplot failed on '{}' (exit status {}); the data and script are beside it",
                                     script.string(), WIFEXITED(status) ? WEXITSTATUS(status) : -1));
}

}  // namespace mst::cli
