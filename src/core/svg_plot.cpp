#include "core/svg_plot.h"
#include "core/error.h"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace slimlm {

namespace {
constexpr double kW = 720, kH = 420, kL = 70, kR = 20, kT = 40, kB = 50;  // canvas and margins

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}
std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}
struct Range { double lo = INFINITY, hi = -INFINITY; };
void widen(Range& r) {
  if (!std::isfinite(r.lo)) r = {0, 1};
  if (r.hi - r.lo < 1e-12) { r.lo -= 0.5; r.hi += 0.5; }
}
void axes(std::ostringstream& s, const Range& xr, const Range& yr, const std::string& xl, const std::string& yl) {
  s << "<rect x='" << kL << "' y='" << kT << "' width='" << kW - kL - kR << "' height='" << kH - kT - kB
    << "' fill='none' stroke='#444'/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double fx = kL + (kW - kL - kR) * i / 4, fy = kH - kB - (kH - kT - kB) * i / 4;
    s << "<text x='" << fx << "' y='" << kH - kB + 16 << "' text-anchor='middle'>" << num(xr.lo + (xr.hi - xr.lo) * i / 4)
      << "</text>\n<text x='" << kL - 6 << "' y='" << fy + 4 << "' text-anchor='end'>"
      << num(yr.lo + (yr.hi - yr.lo) * i / 4) << "</text>\n<line x1='" << kL << "' x2='" << kW - kR << "' y1='" << fy
      << "' y2='" << fy << "' stroke='#ddd'/>\n";
  }
  s << "<text x='" << (kL + kW - kR) / 2 << "' y='" << kH - 12 << "' text-anchor='middle'>" << esc(xl) << "</text>\n"
    << "<text x='16' y='" << (kT + kH - kB) / 2 << "' text-anchor='middle' transform='rotate(-90 16 "
    << (kT + kH - kB) / 2 << ")'>" << esc(yl) << "</text>\n";
}
}  // namespace

void write_line_plot(const std::string& path, const std::string& title, const std::string& xlabel,
                     const std::string& ylabel, const std::vector<PlotSeries>& series) {
  Range xr, yr;
  for (const PlotSeries& p : series) {
    if (p.x.size() != p.y.size()) fail("plot series '", p.name, "' has ", p.x.size(), " x and ", p.y.size(), " y values");
    for (size_t i = 0; i < p.x.size(); ++i) {
      if (!std::isfinite(p.x[i]) || !std::isfinite(p.y[i])) continue;
      xr = {std::min(xr.lo, p.x[i]), std::max(xr.hi, p.x[i])};
      yr = {std::min(yr.lo, p.y[i]), std::max(yr.hi, p.y[i])};
    }
  }
  widen(xr);
  widen(yr);
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << kW << "' height='" << kH
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n<text x='" << kW / 2
    << "' y='22' text-anchor='middle' font-size='15'>" << esc(title) << "</text>\n";
  axes(s, xr, yr, xlabel, ylabel);
  auto px = [&](double x) { return kL + (x - xr.lo) / (xr.hi - xr.lo) * (kW - kL - kR); };
  auto py = [&](double y) { return kH - kB - (y - yr.lo) / (yr.hi - yr.lo) * (kH - kT - kB); };
  for (size_t k = 0; k < series.size(); ++k) {
    const PlotSeries& p = series[k];
    s << "<polyline fill='none' stroke='" << p.color << "' stroke-width='1.5' points='";
    for (size_t i = 0; i < p.x.size(); ++i)
      if (std::isfinite(p.x[i]) && std::isfinite(p.y[i])) s << num(px(p.x[i])) << ',' << num(py(p.y[i])) << ' ';
    s << "'/>\n<text x='" << kW - kR - 8 << "' y='" << kT + 16 + 16 * double(k) << "' text-anchor='end' fill='"
      << p.color << "'>" << esc(p.name) << "</text>\n";
  }
  s << "</svg>\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!(f << s.str()) || !f.flush()) fail("cannot write ", tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace slimlm
