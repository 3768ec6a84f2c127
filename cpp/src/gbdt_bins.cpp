// Quantile binning of the features (gbdt.hpp).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "energycore/gbdt.hpp"

namespace energycore::gbdt::detail {

// ---- bins ---------------------------------------------------------------------------------

namespace {

constexpr Index kMaxCutRows = 200000;

/// Cut points of one feature from its sorted non-NaN values: between every two distinct values
/// when there are at most max_bin of them, else near the max_bin-quantiles (never inside a run of
/// equal values).
std::vector<double> make_cuts(const std::vector<double>& v, int max_bin) {
  std::vector<double> cuts;
  const Index n = static_cast<Index>(v.size());
  if (n == 0) return cuts;
  Index distinct = 1;
  for (Index i = 1; i < n; ++i) distinct += v[i] != v[i - 1];
  auto midpoint = [](double a, double b) { return a + (b - a) / 2.0; };
  auto push = [&](double c) {
    if (cuts.empty() || c > cuts.back()) cuts.push_back(c);
  };
  if (distinct <= max_bin) {
    for (Index i = 1; i < n; ++i)
      if (v[i] != v[i - 1]) push(midpoint(v[i - 1], v[i]));
    return cuts;
  }
  for (int j = 1; j < max_bin; ++j) {
    const Index q = static_cast<Index>(static_cast<double>(n) * j / max_bin);
    const double a = v[q - 1];
    const auto hi = std::upper_bound(v.begin() + q - 1, v.end(), a);
    if (hi == v.end()) break;
    push(midpoint(a, *hi));
  }
  return cuts;
}

/// Number of cuts < x (std::lower_bound's index), without branches.
inline size_t count_below(const std::vector<double>& cuts, double x) noexcept {
  const double* base = cuts.data();
  size_t len = cuts.size();
  if (len == 0) return 0;
  while (len > 1) {
    const size_t half = len / 2;
    base = base[half - 1] < x ? base + half : base;
    len -= half;
  }
  return static_cast<size_t>(base - cuts.data()) + (*base < x ? 1 : 0);
}

}  // namespace

Binned bin_features(const double* X, const double* w, Index n_rows, Index n_features, int max_bin,
                    std::uint64_t seed, const Workers& pool) {
  Binned b;
  b.n_rows = n_rows;
  b.n_features = n_features;
  b.cuts.resize(static_cast<size_t>(n_features));
  b.bins.resize(static_cast<size_t>(n_rows * n_features));
  // Rows that decide the cuts: those of positive weight (a row of weight 0 is as good as
  // absent), at most kMaxCutRows of them drawn at random. Empty means all rows.
  std::vector<Index> sample;
  if (w)
    for (Index i = 0; i < n_rows; ++i)
      if (w[i] > 0) sample.push_back(i);
  if (sample.size() == static_cast<size_t>(n_rows)) sample.clear();
  const auto m_rows = sample.empty() ? n_rows : static_cast<Index>(sample.size());
  if (m_rows > kMaxCutRows) {
    if (sample.empty()) {
      sample.resize(static_cast<size_t>(n_rows));
      std::iota(sample.begin(), sample.end(), Index{0});
    }
    std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
    for (Index i = 0; i < kMaxCutRows; ++i) {
      std::uniform_int_distribution<Index> pick(i, m_rows - 1);
      std::swap(sample[static_cast<size_t>(i)], sample[static_cast<size_t>(pick(rng))]);
    }
    sample.resize(static_cast<size_t>(kMaxCutRows));
    std::sort(sample.begin(), sample.end());
  }
  pool.run(n_features, [&](Index f) {
    std::vector<double> v;
    const Index m = sample.empty() ? n_rows : static_cast<Index>(sample.size());
    v.reserve(static_cast<size_t>(m));
    for (Index k = 0; k < m; ++k) {
      const Index i = sample.empty() ? k : sample[static_cast<size_t>(k)];
      const double x = X[i * n_features + f];
      if (!std::isnan(x)) v.push_back(x);
    }
    std::sort(v.begin(), v.end());
    std::vector<double>& cuts = b.cuts[static_cast<size_t>(f)];
    cuts = make_cuts(v, max_bin);
  });
  // Bins row by row (row-major), rows in chunks across the threads.
  constexpr Index kChunk = 4096;
  pool.run((n_rows + kChunk - 1) / kChunk, [&](Index c) {
    const Index end = std::min(n_rows, (c + 1) * kChunk);
    for (Index f = 0; f < n_features; ++f) {  // one feature's cuts stay in L1 for the chunk
      const std::vector<double>& cuts = b.cuts[static_cast<size_t>(f)];
      const auto missing = static_cast<std::uint8_t>(cuts.size() + 1);
      for (Index i = c * kChunk; i < end; ++i) {
        const double x = X[i * n_features + f];
        b.bins[static_cast<size_t>(i * n_features + f)] =
            std::isnan(x) ? missing : static_cast<std::uint8_t>(count_below(cuts, x));
      }
    }
  });
  return b;
}

}  // namespace energycore::gbdt::detail
