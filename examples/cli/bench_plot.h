// `moestream bench --plot FILE.svg|FILE.png`: decode tok/s against the expert-cache
// budget, one line per other swept setting (tier, policy, experts per token), drawn by
// gnuplot. The data (FILE.dat) and the script (FILE.gp) are written beside the plot so
// that it can be re-made or restyled with `gnuplot FILE.gp`.
#pragma once

#include <string>
#include <vector>

namespace mst::cli {

struct PlotPoint {
    std::string series;  // the setting without its cache budget, e.g. "k=8 uring lru"
    double cache_mib = 0;
    double decode_tps = 0;
};

// The gnuplot on PATH, or a UsageError saying how to install it.
std::string find_gnuplot();

// The data file's text: one block per series (in first-seen order), points sorted by
// budget, blocks separated by two blank lines (gnuplot's `index`).
std::string plot_data(const std::vector<PlotPoint> &points, std::vector<std::string> &series_out);

// The gnuplot terminal for `plot_path`'s extension (.svg or .png); else a UsageError,
// so that a bad name fails before a benchmark runs.
std::string plot_terminal(const std::string &plot_path);

// Writes FILE.dat and FILE.gp beside `plot_path` and runs gnuplot on them. The
// terminal follows the extension (.svg or .png); anything else is a UsageError.
void write_plot(const std::string &plot_path, const std::vector<PlotPoint> &points, const std::string &gnuplot);

}  // namespace mst::cli
