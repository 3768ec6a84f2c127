// Training of gradient-boosted trees on binned features (gbdt.hpp): objectives, histograms,
// split search, depth-wise and leaf-wise growth, the boosting loop with early stopping.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <type_traits>

#include "energycore/gbdt.hpp"

namespace energycore::gbdt {

void Params::validate(Index n_features) const {
  auto bad = [](const std::string& m) { throw std::invalid_argument(m); };
  if (n_estimators < 1) bad("n_estimators: must be at least 1");
  if (!(learning_rate > 0) || !std::isfinite(learning_rate))
    bad("learning_rate: must be positive and finite");
  if (num_leaves == 1) bad("num_leaves: must be at least 2 (or 0 for no limit)");
  if (growth == Growth::leafwise && num_leaves < 2)
    bad("num_leaves: leaf-wise growth needs a leaf limit of at least 2");
  if (!(lambda_l2 >= 0) || !std::isfinite(lambda_l2)) bad("reg_lambda: must be >= 0 and finite");
  if (!(min_child_weight >= 0) || !std::isfinite(min_child_weight))
    bad("min_child_weight: must be >= 0 and finite");
  if (min_child_samples < 1) bad("min_child_samples: must be at least 1");
  if (!(min_split_gain >= 0) || !std::isfinite(min_split_gain))
    bad("min_split_gain: must be >= 0 and finite");
  if (!(subsample > 0 && subsample <= 1)) bad("subsample: must be in (0, 1]");
  if (!(colsample > 0 && colsample <= 1)) bad("colsample: must be in (0, 1]");
  if (max_bin < 2 || max_bin > 255) bad("max_bin: must be in [2, 255]");
  if (!(huber_delta > 0) || !std::isfinite(huber_delta)) bad("huber_delta: must be positive");
  if (pairs_per_sample < 1) bad("pairs_per_sample: must be at least 1");
  if (early_stopping_rounds < 0) bad("early_stopping_rounds: must be >= 0");
  if (!monotone.empty() && static_cast<Index>(monotone.size()) != n_features)
    bad("monotone: expected one constraint per feature (" + std::to_string(n_features) + ")");
  for (const int m : monotone)
    if (m < -1 || m > 1) bad("monotone: constraints must be -1, 0 or +1");
}

namespace {

using detail::Binned;

struct GH {
  double g = 0.0, h = 0.0;
};
struct Bin {
  double g = 0.0, h = 0.0, c = 0.0;
};

struct Split {
  double gain = 0.0;
  int feature = -1;
  int bin = -1;  ///< left = value bins <= bin
  bool default_left = false;
  double gl = 0, hl = 0, cl = 0, gr = 0, hr = 0, cr = 0, wl = 0, wr = 0;
};

struct Leaf {
  Index begin = 0, end = 0;  ///< range of the row index array
  int node = 0;
  int depth = 0;
  double G = 0, H = 0, C = 0;
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  std::vector<Bin> hist;
  Split best;
};

struct TreeNode {
  int feature = -1;
  int bin = -1;
  bool default_left = false;
  double threshold = 0.0;
  int left = -1;
  double value = 0.0;
  double gain = 0.0;
  double cover = 0.0;
};

constexpr double kInf = std::numeric_limits<double>::infinity();

inline double sigmoid(double x) noexcept { return 1.0 / (1.0 + std::exp(-x)); }

/// Grows one tree on the rows idx[0, n) (the sampled rows) from gradients `gh`.
class TreeBuilder {
 public:
  /// `hessian` > 0: every row's hessian is this constant (h sums are then counts times it).
  TreeBuilder(const Binned& b, const Params& p, const Workers& pool, double hessian)
      : b_(b),
        p_(p),
        pool_(pool),
        offset_(static_cast<size_t>(b.n_features) + 1, 0),
        const_hessian_(hessian > 0),
        hessian_(hessian) {
    for (Index f = 0; f < b.n_features; ++f)
      offset_[static_cast<size_t>(f) + 1] = offset_[static_cast<size_t>(f)] + b.n_bins(f);
    bounded_ = std::any_of(p.monotone.begin(), p.monotone.end(), [](int m) { return m; });
  }

  /// Builds the tree; rows of each leaf end up contiguous in idx (leaf ranges in `leaves`).
  std::vector<TreeNode> grow(std::vector<Index>& idx, const std::vector<GH>& gh,
                             const std::vector<Index>& features,
                             std::vector<std::pair<int, std::pair<Index, Index>>>& leaves) {
    idx_ = &idx;
    gh_ = &gh;
    features_ = &features;
    tree_.assign(1, TreeNode{});
    leaves.clear();
    Leaf root;
    root.begin = 0;
    root.end = static_cast<Index>(idx.size());
    for (const Index r : idx) {
      root.G += gh[static_cast<size_t>(r)].g;
      root.H += gh[static_cast<size_t>(r)].h;
    }
    root.C = static_cast<double>(idx.size());
    std::vector<Leaf> pending;
    int n_leaves = 1;
    // Per tree: the histogram slots of the tree's features, and their total.
    foff_.resize(features.size());
    n_bins_ = 0;
    for (size_t j = 0; j < features.size(); ++j) {
      foff_[j] = offset_[static_cast<size_t>(features[j])];
      n_bins_ += b_.n_bins(features[j]);
    }
    // Leaves that may split get their best split; those with one wait in `pending`, the
    // others are final.
    auto settle = [&](Leaf* leaf) {
      if (!leaf) return;
      if (leaf->best.feature >= 0) pending.push_back(std::move(*leaf));
      else finish(*leaf, leaves);
    };
    if (can_split(root)) step(&root, nullptr);
    settle(&root);
    while (!pending.empty()) {
      if (p_.num_leaves > 0 && n_leaves >= p_.num_leaves) break;
      size_t pick = 0;
      if (p_.growth == Growth::leafwise)
        for (size_t i = 1; i < pending.size(); ++i)
          if (pending[i].best.gain > pending[pick].best.gain) pick = i;
      Leaf parent = std::move(pending[pick]);
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(pick));
      auto [l, r] = split(parent);
      ++n_leaves;
      if (can_split(l) || can_split(r)) {
        Leaf& small = l.C <= r.C ? l : r;
        Leaf& large = l.C <= r.C ? r : l;
        large.hist = std::move(parent.hist);
        step(&small, &large);
      } else {
        spare_.push_back(std::move(parent.hist));
      }
      settle(&l);
      settle(&r);
    }
    for (Leaf& leaf : pending) finish(leaf, leaves);
    return std::move(tree_);
  }

 private:
  bool can_split(const Leaf& leaf) const noexcept {
    return (p_.max_depth <= 0 || leaf.depth < p_.max_depth) &&
           leaf.C >= 2.0 * p_.min_child_samples && leaf.H >= 2.0 * p_.min_child_weight;
  }

  double weight(double G, double H, double lo, double hi) const noexcept {
    const double w = -G / (H + p_.lambda_l2);
    return std::min(hi, std::max(lo, w));
  }
  double score(double G, double H, double w) const noexcept {
    return -(2.0 * G * w + (H + p_.lambda_l2) * w * w);
  }

  /// One hand-off to the pool per split: in a parallel loop over blocks of features, each
  /// block builds `small`'s histogram (rows of the leaf, one cache line of bins per row), turns
  /// `large`'s (if given; it holds the parent's) into the sibling's by subtraction, and searches
  /// the best split of those of the two that may split. Every bin is summed in row order and
  /// the blocks' winners are compared in feature order, so the tree is the serial one whatever
  /// the thread count.
  void step(Leaf* small, Leaf* large) {
    Leaf* search[2];
    int k = 0;
    for (Leaf* leaf : {small, large})
      if (leaf && can_split(*leaf)) search[k++] = leaf;
    if (!spare_.empty()) {
      small->hist = std::move(spare_.back());
      spare_.pop_back();
    }
    small->hist.resize(static_cast<size_t>(offset_.back()));  // zeroed per block below
    if (const_hessian_) gc_.resize(small->hist.size());
    const auto nf = static_cast<Index>(features_->size());
    const Index m = small->end - small->begin;
    // Below this much work (bin updates plus split candidates) another thread costs more
    // than it saves.
    constexpr Index kParallelWork = 8192;
    const Index n_blocks = pool_.size() > 1 && m * nf + 4 * n_bins_ * k >= kParallelWork
                               ? std::min<Index>(nf, pool_.size())
                               : 1;
    parts_.assign(static_cast<size_t>(k * n_blocks), Split{});
    auto block = [&](Index bl) {
      const Index j0 = nf * bl / n_blocks, j1 = nf * (bl + 1) / n_blocks;
      hist_block(*small, j0, j1);
      if (large) {
        Bin* lh = large->hist.data();
        const Bin* sh = small->hist.data();
        for (Index j = j0; j < j1; ++j) {
          const Index o = foff_[static_cast<size_t>(j)];
          const Index e = o + b_.n_bins((*features_)[static_cast<size_t>(j)]);
          for (Index q = o; q < e; ++q) {
            lh[q].g -= sh[q].g;
            lh[q].h -= sh[q].h;
            lh[q].c -= sh[q].c;
          }
        }
      }
      for (int i = 0; i < k; ++i)
        parts_[static_cast<size_t>(i * n_blocks + bl)] = scan(*search[i], j0, j1);
    };
    pool_.run(n_blocks, block);
    for (int i = 0; i < k; ++i) {
      Split best = parts_[static_cast<size_t>(i * n_blocks)];
      for (Index blk = 1; blk < n_blocks; ++blk) {
        const Split& s = parts_[static_cast<size_t>(i * n_blocks + blk)];
        if (s.feature >= 0 && (best.feature < 0 || s.gain > best.gain)) best = s;
      }
      search[i]->best = best;
    }
  }

  /// Histogram slots of the features features_[j0, j1) of a leaf, from its rows. With a
  /// constant hessian (squared error or Huber, unweighted) only g and the count are summed
  /// (16-byte bins), h follows.
  void hist_block(Leaf& leaf, Index j0, Index j1) {
    const Index m = leaf.end - leaf.begin;
    const Index* rows = idx_->data() + leaf.begin;
    const GH* gh = gh_->data();
    const Index* foff = foff_.data();
    const Index* fidx = features_->data();
    const Index F = b_.n_features;
    const std::uint8_t* bins = b_.bins.data();
    const bool all = static_cast<Index>(features_->size()) == F;
    Bin* hist = leaf.hist.data();
    GC* gc = gc_.data();
    auto range = [&](Index j) {
      const Index o = foff[j];
      return std::pair<Index, Index>{o, o + b_.n_bins(fidx[j])};
    };
    for (Index j = j0; j < j1; ++j) {
      const auto [o, e] = range(j);
      if (const_hessian_) std::fill(gc + o, gc + e, GC{});
      else std::fill(hist + o, hist + e, Bin{});
    }
    if (const_hessian_ && all) hist_rows<GC, true>(rows, m, gh, bins, F, foff, fidx, j0, j1, gc);
    else if (const_hessian_) hist_rows<GC, false>(rows, m, gh, bins, F, foff, fidx, j0, j1, gc);
    else if (all) hist_rows<Bin, true>(rows, m, gh, bins, F, foff, fidx, j0, j1, hist);
    else hist_rows<Bin, false>(rows, m, gh, bins, F, foff, fidx, j0, j1, hist);
    if (const_hessian_)
      for (Index j = j0; j < j1; ++j) {
        const auto [o, e] = range(j);
        for (Index q = o; q < e; ++q) hist[q] = Bin{gc[q].g, gc[q].c * hessian_, gc[q].c};
      }
  }

  /// Sums of a bin when every hessian is the same constant: 16 bytes instead of 24.
  struct GC {
    double g = 0.0, c = 0.0;
  };

  template <class B, bool kAll>
  static void hist_rows(const Index* rows, Index m, const GH* gh, const std::uint8_t* bins, Index F,
                        const Index* foff, const Index* fidx, Index j0, Index j1,
                        B* hist) noexcept {
    for (Index k = 0; k < m; ++k) {
      const Index r = rows[k];
      const std::uint8_t* rb = bins + r * F;
      const double g = gh[r].g, h = gh[r].h;
      for (Index j = j0; j < j1; ++j) {
        B& x = hist[foff[j] + rb[kAll ? j : fidx[j]]];
        x.g += g;
        if constexpr (std::is_same_v<B, Bin>) x.h += h;
        x.c += 1.0;
      }
    }
  }

  void consider(const Leaf& leaf, int f, int bin, bool default_left, double gl, double hl,
                double cl, double parent_score, Split& best) const {
    const double gr = leaf.G - gl, hr = leaf.H - hl, cr = leaf.C - cl;
    if (cl < p_.min_child_samples || cr < p_.min_child_samples || hl < p_.min_child_weight ||
        hr < p_.min_child_weight)
      return;
    double gain, wl = 0.0, wr = 0.0;
    if (!bounded_) {  // unclamped leaf values: the closed form, two divisions
      // Most candidates lose: gl^2/dl + gr^2/dr > best + parent_score is checked first without
      // dividing (all terms >= 0, a slack of 1e-9 far above the rounding), and the gain is
      // computed as before only where it may win, so the same candidates win.
      const double dl = hl + p_.lambda_l2, dr = hr + p_.lambda_l2;
      const double rhs = (best.gain + parent_score) * dl * dr;
      if ((gl * gl * dr + gr * gr * dl) * (1.0 + 1e-9) < rhs && rhs < kInf) return;
      gain = gl * gl / dl + gr * gr / dr - parent_score;
    } else {
      wl = weight(gl, hl, leaf.lo, leaf.hi);
      wr = weight(gr, hr, leaf.lo, leaf.hi);
      const int m = p_.monotone[static_cast<size_t>(f)];
      if ((m > 0 && wl > wr) || (m < 0 && wl < wr)) return;
      gain = score(gl, hl, wl) + score(gr, hr, wr) - parent_score;
    }
    if (gain > best.gain) {
      if (!bounded_) {
        wl = -gl / (hl + p_.lambda_l2);
        wr = -gr / (hr + p_.lambda_l2);
      }
      best = Split{gain, f, bin, default_left, gl, hl, cl, gr, hr, cr, wl, wr};
    }
  }

  /// Best split of a leaf over the features features_[j0, j1).
  Split scan(const Leaf& leaf, Index j0, Index j1) const {
    Split best;
    best.gain = p_.min_split_gain;
    const double parent_score = score(leaf.G, leaf.H, weight(leaf.G, leaf.H, leaf.lo, leaf.hi));
    // Left sums only grow: no split before the left side is big enough, none after the
    // right side (with or without the NaN rows) has become too small.
    const double c_end = leaf.C - p_.min_child_samples, h_end = leaf.H - p_.min_child_weight;
    for (Index j = j0; j < j1; ++j) {
      const Index fi = (*features_)[static_cast<size_t>(j)];
      const int f = static_cast<int>(fi);
      const int nb = b_.n_bins(fi);
      const Bin* h = leaf.hist.data() + offset_[static_cast<size_t>(fi)];
      const Bin miss = h[nb - 1];
      double gl = 0, hl = 0, cl = 0;
      for (int bin = 0; bin <= nb - 2; ++bin) {
        gl += h[bin].g;
        hl += h[bin].h;
        cl += h[bin].c;
        if (cl > c_end || hl > h_end) break;
        if (bin < nb - 2) {
          consider(leaf, f, bin, false, gl, hl, cl, parent_score, best);
          if (miss.c > 0)
            consider(leaf, f, bin, true, gl + miss.g, hl + miss.h, cl + miss.c, parent_score, best);
        } else if (miss.c > 0) {  // all values left, NaN right
          consider(leaf, f, bin, false, gl, hl, cl, parent_score, best);
        }
      }
    }
    return best.feature >= 0 ? best : Split{};
  }

  std::pair<Leaf, Leaf> split(Leaf& parent) {
    const Split& s = parent.best;
    TreeNode& node = tree_[static_cast<size_t>(parent.node)];
    const auto f = static_cast<size_t>(s.feature);
    const std::vector<double>& cuts = b_.cuts[f];
    node.feature = s.feature;
    node.bin = s.bin;
    node.default_left = s.default_left;
    node.threshold = s.bin < static_cast<int>(cuts.size()) ? cuts[static_cast<size_t>(s.bin)]
                                                           : std::numeric_limits<double>::max();
    node.gain = s.gain;
    node.cover = parent.H;
    const int left = static_cast<int>(tree_.size());
    node.left = left;
    tree_.emplace_back();  // invalidates `node`
    tree_.emplace_back();
    // Stable partition of the parent's rows, in chunks across the threads for a large node:
    // each chunk's left rows forward and right rows backward into the scratch, then both to
    // their places (the same order as a serial pass).
    const std::uint8_t* col = b_.bins.data() + s.feature;
    const Index stride = b_.n_features;
    const auto missing = static_cast<std::uint8_t>(b_.n_bins(s.feature) - 1);
    Index* rows = idx_->data() + parent.begin;
    const Index m = parent.end - parent.begin;
    scratch_.resize(static_cast<size_t>(m));
    Index* out = scratch_.data();
    constexpr Index kParallelRows = 16384;
    const Index n_chunks = pool_.size() > 1 && m >= kParallelRows ? pool_.size() : 1;
    n_left_.assign(static_cast<size_t>(n_chunks) + 1, 0);
    const int bin = s.bin;
    const bool dl = s.default_left;
    pool_.run(n_chunks, [&](Index t) {
      const Index a = m * t / n_chunks, e = m * (t + 1) / n_chunks;
      Index w = a, back = e;
      for (Index k = a; k < e; ++k) {  // branch-free: rows go left half the time
        const Index r = rows[k];
        const std::uint8_t v = col[r * stride];
        const bool go_left = (v <= bin) | ((v == missing) & dl);  // missing > bin always
        out[w] = r;         // the slot stays if r goes left,
        out[back - 1] = r;  // this one if it goes right (w < back until the last row)
        w += go_left;
        back -= !go_left;
      }
      n_left_[static_cast<size_t>(t) + 1] = w - a;
    });
    for (Index t = 0; t < n_chunks; ++t)
      n_left_[static_cast<size_t>(t) + 1] += n_left_[static_cast<size_t>(t)];
    const Index n_l = n_left_.back();
    pool_.run(n_chunks, [&](Index t) {
      const Index a = m * t / n_chunks, e = m * (t + 1) / n_chunks;
      const Index nl = n_left_[static_cast<size_t>(t) + 1] - n_left_[static_cast<size_t>(t)];
      std::copy(out + a, out + a + nl, rows + n_left_[static_cast<size_t>(t)]);
      Index* dst = rows + n_l + (a - n_left_[static_cast<size_t>(t)]);
      for (Index q = e - 1; q >= a + nl; --q) *dst++ = out[q];
    });
    const Index w = parent.begin + n_l;
    Leaf l, r;
    l.begin = parent.begin;
    l.end = r.begin = w;
    r.end = parent.end;
    l.node = left;
    r.node = left + 1;
    l.depth = r.depth = parent.depth + 1;
    l.G = s.gl, l.H = s.hl, l.C = static_cast<double>(w - parent.begin);
    r.G = s.gr, r.H = s.hr, r.C = static_cast<double>(parent.end - w);
    l.lo = r.lo = parent.lo;
    l.hi = r.hi = parent.hi;
    const int mono = p_.monotone.empty() ? 0 : p_.monotone[f];
    if (mono != 0) {
      const double mid = 0.5 * (s.wl + s.wr);
      if (mono > 0) {
        l.hi = std::min(l.hi, mid);
        r.lo = std::max(r.lo, mid);
      } else {
        l.lo = std::max(l.lo, mid);
        r.hi = std::min(r.hi, mid);
      }
    }
    return {std::move(l), std::move(r)};
  }

  void finish(Leaf& leaf, std::vector<std::pair<int, std::pair<Index, Index>>>& leaves) {
    TreeNode& node = tree_[static_cast<size_t>(leaf.node)];
    node.value = p_.learning_rate * weight(leaf.G, leaf.H, leaf.lo, leaf.hi);
    node.cover = leaf.H;
    leaves.push_back({leaf.node, {leaf.begin, leaf.end}});
    if (!leaf.hist.empty()) spare_.push_back(std::move(leaf.hist));
  }

  const Binned& b_;
  const Params& p_;
  const Workers& pool_;
  std::vector<Index> offset_;
  bool const_hessian_ = false;
  double hessian_ = 0.0;
  bool bounded_ = false;                 ///< monotone constraints: leaf values clamped to bounds
  std::vector<std::vector<Bin>> spare_;  ///< histogram buffers to reuse
  std::vector<Index>* idx_ = nullptr;
  const std::vector<GH>* gh_ = nullptr;
  const std::vector<Index>* features_ = nullptr;
  std::vector<TreeNode> tree_;
  std::vector<Index> foff_;  ///< histogram offset of each of the tree's features
  Index n_bins_ = 0;         ///< histogram slots of the tree's features
  std::vector<Index> n_left_;
  std::vector<Split> parts_;
  std::vector<GC> gc_;
  std::vector<Index> scratch_;
};

/// Rows of each query group (groups in order of first appearance... sorted by id, stable).
std::vector<std::vector<Index>> make_groups(const std::int64_t* group, Index n) {
  std::vector<Index> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  if (group)
    std::stable_sort(order.begin(), order.end(),
                     [&](Index a, Index b) { return group[a] < group[b]; });
  std::vector<std::vector<Index>> out;
  for (size_t k = 0; k < order.size(); ++k) {
    if (k == 0 || (group && group[order[k]] != group[order[k - 1]])) out.emplace_back();
    out.back().push_back(order[k]);
  }
  return out;
}

double weighted_median(const double* y, const double* w, Index n) {
  std::vector<Index> o(static_cast<size_t>(n));
  std::iota(o.begin(), o.end(), Index{0});
  std::sort(o.begin(), o.end(), [&](Index a, Index b) { return y[a] < y[b]; });
  double total = 0;
  for (Index i = 0; i < n; ++i) total += w ? w[i] : 1.0;
  double acc = 0;
  for (const Index i : o) {
    acc += w ? w[i] : 1.0;
    if (acc >= 0.5 * total) return y[i];
  }
  return y[o.back()];
}

double base_score(const Params& p, const DataView& d) {
  if (p.objective == Objective::pairwise) return 0.0;
  if (p.objective == Objective::huber) return weighted_median(d.y, d.w, d.n_rows);
  double sw = 0, swy = 0;
  for (Index i = 0; i < d.n_rows; ++i) {
    const double w = d.w ? d.w[i] : 1.0;
    sw += w;
    swy += w * d.y[i];
  }
  const double mean = sw > 0 ? swy / sw : 0.0;
  if (p.objective == Objective::squared_error) return mean;
  const double q = std::min(1.0 - 1e-6, std::max(1e-6, mean));
  return std::log(q / (1.0 - q));
}

/// Below this many rows the element-wise loops of a round stay on the calling thread.
constexpr Index kParallelRowsPerRound = 32768;

void gradients(const Params& p, const DataView& d, const std::vector<double>& pred,
               const std::vector<std::vector<Index>>& groups, std::mt19937_64& rng,
               std::vector<GH>& gh, const Workers& pool) {
  const Index n = d.n_rows;
  auto wt = [&](Index i) { return d.w ? d.w[i] : 1.0; };
  // Row by row (all but pairwise): in chunks across the threads for a large set.
  auto rows = [&](Index i0, Index i1) {
    switch (p.objective) {
      case Objective::squared_error:
        for (Index i = i0; i < i1; ++i) gh[i] = {wt(i) * (pred[i] - d.y[i]), wt(i)};
        break;
      case Objective::huber:
        for (Index i = i0; i < i1; ++i) {
          const double r = std::min(p.huber_delta, std::max(-p.huber_delta, pred[i] - d.y[i]));
          gh[i] = {wt(i) * r, wt(i)};
        }
        break;
      case Objective::logistic:
        for (Index i = i0; i < i1; ++i) {
          const double q = sigmoid(pred[i]);
          gh[i] = {wt(i) * (q - d.y[i]), wt(i) * std::max(q * (1.0 - q), 1e-16)};
        }
        break;
      case Objective::pairwise:
        break;
    }
  };
  switch (p.objective) {
    case Objective::squared_error:
    case Objective::huber:
    case Objective::logistic: {
      const Index chunks = pool.size() > 1 && n >= kParallelRowsPerRound ? 4 * pool.size() : 1;
      pool.run(chunks, [&](Index c) { rows(n * c / chunks, n * (c + 1) / chunks); });
      break;
    }
    case Objective::pairwise:
      std::fill(gh.begin(), gh.end(), GH{});
      for (const auto& g : groups) {
        if (g.size() < 2) continue;
        std::uniform_int_distribution<size_t> pick(0, g.size() - 1);
        // Pairs whose scores are close weigh more (1 / (|s_hi - s_lo| + 0.01), XGBoost's
        // score normalisation): once the scores spread, the effort goes to the pairs still
        // near a swap. Not in the first round, where all scores are equal.
        double s_min = pred[static_cast<size_t>(g[0])], s_max = s_min;
        for (const Index i : g) {
          s_min = std::min(s_min, pred[static_cast<size_t>(i)]);
          s_max = std::max(s_max, pred[static_cast<size_t>(i)]);
        }
        const bool by_diff = s_max > s_min;
        for (const Index i : g) {
          for (int k = 0; k < p.pairs_per_sample; ++k) {
            const Index j = g[pick(rng)];
            if (d.y[j] == d.y[i]) continue;
            const Index hi = d.y[i] > d.y[j] ? i : j, lo = hi == i ? j : i;
            const double q = sigmoid(pred[lo] - pred[hi]);  // probability of the wrong order
            double w = 0.5 * (wt(i) + wt(j));
            if (by_diff) w /= std::abs(pred[hi] - pred[lo]) + 0.01;
            const double hh = w * std::max(q * (1.0 - q), 1e-16);
            gh[hi].g -= w * q;
            gh[lo].g += w * q;
            gh[hi].h += hh;
            gh[lo].h += hh;
          }
        }
      }
      break;
  }
}

double metric(const Params& p, const DataView& d, const std::vector<double>& pred) {
  if (p.objective == Objective::pairwise) {
    const double acc = pairwise_accuracy(pred.data(), d.y, d.group, d.n_rows);
    return std::isnan(acc) ? 0.0 : 1.0 - acc;
  }
  double sw = 0, s = 0;
  for (Index i = 0; i < d.n_rows; ++i) {
    const double w = d.w ? d.w[i] : 1.0;
    const double r = pred[i] - d.y[i];
    double l = 0;
    if (p.objective == Objective::squared_error) {
      l = r * r;
    } else if (p.objective == Objective::huber) {
      const double a = std::abs(r);
      l = a <= p.huber_delta ? 0.5 * r * r : p.huber_delta * (a - 0.5 * p.huber_delta);
    } else {
      const double q = std::min(1.0 - 1e-15, std::max(1e-15, sigmoid(pred[i])));
      l = -(d.y[i] * std::log(q) + (1.0 - d.y[i]) * std::log(1.0 - q));
    }
    sw += w;
    s += w * l;
  }
  const double m = sw > 0 ? s / sw : 0.0;
  return p.objective == Objective::squared_error ? std::sqrt(m) : m;
}

/// Walk of one training tree on raw feature values (validation rows).
double walk(const std::vector<TreeNode>& t, const double* x) noexcept {
  int i = 0;
  while (t[static_cast<size_t>(i)].feature >= 0) {
    const TreeNode& n = t[static_cast<size_t>(i)];
    const double v = x[n.feature];
    const bool go_left = std::isnan(v) ? n.default_left : v <= n.threshold;
    i = n.left + (go_left ? 0 : 1);
  }
  return t[static_cast<size_t>(i)].value;
}

void check_view(const DataView& d, const char* what) {
  if (d.n_rows < 1) throw std::invalid_argument(std::string(what) + ": no rows");
  if (d.n_features < 1) throw std::invalid_argument(std::string(what) + ": no features");
  if (d.n_features > kMaxFeatures)
    throw std::invalid_argument(std::string(what) + ": more than " + std::to_string(kMaxFeatures) +
                                " features");
  if (!d.X || !d.y) throw std::invalid_argument(std::string(what) + ": missing X or y");
}

}  // namespace

Model train(const DataView& d, const DataView* valid, const Params& p,
            std::vector<double>* valid_curve) {
  check_view(d, "X");
  p.validate(d.n_features);
  if (valid) {
    check_view(*valid, "eval_set");
    if (valid->n_features != d.n_features)
      throw std::invalid_argument("eval_set: X has " + std::to_string(valid->n_features) +
                                  " features, expected " + std::to_string(d.n_features));
  }
  const Index n = d.n_rows, F = d.n_features;
  // Threads pay off only on enough work: below about 5k rows x 20 features a whole fit takes a
  // few tens of milliseconds, in steps too small to share.
  constexpr Index kParallelValues = 100000;
  const int n_threads = n * F >= kParallelValues ? resolve_threads(p.n_threads) : 1;
  const Workers pool(n_threads);
  const Workers serial(1);
  const Binned bins = detail::bin_features(d.X, d.w, n, F, p.max_bin, p.seed, pool);
  const auto groups = p.objective == Objective::pairwise ? make_groups(d.group, n)
                                                         : std::vector<std::vector<Index>>{};

  ModelState state;
  state.objective = p.objective;
  state.n_features = F;
  state.base_score = base_score(p, d);
  std::vector<double> pred(static_cast<size_t>(n), state.base_score);
  std::vector<double> vpred;
  if (valid) vpred.assign(static_cast<size_t>(valid->n_rows), state.base_score);
  std::vector<GH> gh(static_cast<size_t>(n));
  std::mt19937_64 rng(p.seed);
  const bool const_h =
      !d.w && (p.objective == Objective::squared_error || p.objective == Objective::huber);
  TreeBuilder builder(bins, p, pool, const_h ? 1.0 : 0.0);
  std::vector<Index> idx, unsampled, features(static_cast<size_t>(F));
  std::vector<std::pair<int, std::pair<Index, Index>>> leaves;
  std::iota(features.begin(), features.end(), Index{0});
  const auto n_cols =
      std::max<Index>(1, static_cast<Index>(std::lround(p.colsample * static_cast<double>(F))));
  double best_metric = std::numeric_limits<double>::infinity();
  size_t best_nodes = 0, best_trees = 0;
  int since_best = 0;

  for (int it = 0; it < p.n_estimators; ++it) {
    gradients(p, d, pred, groups, rng, gh, pool);
    idx.clear();
    unsampled.clear();
    if (p.subsample < 1.0) {
      std::bernoulli_distribution keep(p.subsample);
      for (Index i = 0; i < n; ++i) (keep(rng) ? idx : unsampled).push_back(i);
      if (idx.empty()) idx.push_back(unsampled.back()), unsampled.pop_back();
    } else {
      idx.resize(static_cast<size_t>(n));
      std::iota(idx.begin(), idx.end(), Index{0});
    }
    std::vector<Index> cols = features;
    if (n_cols < F) {
      for (Index j = 0; j < n_cols; ++j) {
        std::uniform_int_distribution<Index> pick(j, F - 1);
        std::swap(cols[static_cast<size_t>(j)], cols[static_cast<size_t>(pick(rng))]);
      }
      cols.resize(static_cast<size_t>(n_cols));
      std::sort(cols.begin(), cols.end());
    }
    const std::vector<TreeNode> tree = builder.grow(idx, gh, cols, leaves);
    // Training predictions: sampled rows by leaf range, the others by a walk over bins.
    // (Leaves hold disjoint rows: across the threads for a large set.)
    const auto n_leaves = static_cast<Index>(leaves.size());
    const Workers& by_leaf =
        static_cast<Index>(idx.size()) >= kParallelRowsPerRound ? pool : serial;
    by_leaf.run(n_leaves, [&](Index j) {
      const auto& [node, range] = leaves[static_cast<size_t>(j)];
      const double v = tree[static_cast<size_t>(node)].value;
      for (Index k = range.first; k < range.second; ++k)
        pred[static_cast<size_t>(idx[static_cast<size_t>(k)])] += v;
    });
    for (const Index r : unsampled) {
      int i = 0;
      while (tree[static_cast<size_t>(i)].feature >= 0) {
        const TreeNode& t = tree[static_cast<size_t>(i)];
        const std::uint8_t v = bins.bins[static_cast<size_t>(r * F + t.feature)];
        const bool go_left = v == static_cast<std::uint8_t>(bins.n_bins(t.feature) - 1)
                                 ? t.default_left
                                 : v <= t.bin;
        i = t.left + (go_left ? 0 : 1);
      }
      pred[static_cast<size_t>(r)] += tree[static_cast<size_t>(i)].value;
    }
    // Append the tree to the model state.
    const auto base = static_cast<std::int64_t>(state.feature.size());
    state.roots.push_back(base);
    for (const TreeNode& t : tree) {
      state.feature.push_back(t.feature);
      state.value.push_back(t.feature >= 0 ? t.threshold : t.value);
      state.left.push_back(t.feature >= 0 ? base + t.left : -1);
      state.default_left.push_back(t.feature >= 0 && t.default_left ? 1 : 0);
      state.gain.push_back(t.gain);
      state.cover.push_back(t.cover);
    }
    if (valid) {
      const Index vf = valid->n_features;
      for (Index i = 0; i < valid->n_rows; ++i)
        vpred[static_cast<size_t>(i)] += walk(tree, valid->X + i * vf);
      const double m = metric(p, *valid, vpred);
      if (valid_curve) valid_curve->push_back(m);
      if (m < best_metric) {
        best_metric = m;
        best_nodes = state.feature.size();
        best_trees = state.roots.size();
        since_best = 0;
      } else if (p.early_stopping_rounds > 0 && ++since_best >= p.early_stopping_rounds) {
        break;
      }
    }
  }
  if (valid && p.early_stopping_rounds > 0 && best_trees > 0) {
    state.roots.resize(best_trees);
    state.feature.resize(best_nodes);
    state.value.resize(best_nodes);
    state.left.resize(best_nodes);
    state.default_left.resize(best_nodes);
    state.gain.resize(best_nodes);
    state.cover.resize(best_nodes);
  }
  return Model(state);
}

}  // namespace energycore::gbdt
