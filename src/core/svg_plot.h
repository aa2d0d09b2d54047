// Line plots as standalone SVG files (loss curves and the like): one chart, a few named series,
// linear axes with ticks, a legend. Written to a temporary file, then renamed.
#pragma once
#include <string>
#include <vector>

namespace slimlm {

struct PlotSeries {
  std::string name;
  std::vector<double> x, y;
  std::string color = "#1f77b4";
};

void write_line_plot(const std::string& path, const std::string& title, const std::string& xlabel,
                     const std::string& ylabel, const std::vector<PlotSeries>& series);

}  // namespace slimlm
