// A fitted gradient-boosting model: validation of its state, prediction, importance; the
// pairwise ranking accuracy (gbdt.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "energycore/gbdt.hpp"
#include "energycore/lm.hpp"
#include "energycore/parallel.hpp"

namespace energycore::gbdt {

namespace {
constexpr const char* kObjectives[] = {"squared_error", "huber", "logistic", "pairwise"};
constexpr const char* kGrowths[] = {"depthwise", "leafwise"};
}  // namespace

Objective parse_objective(const std::string& name) {
  for (int i = 0; i < 4; ++i)
    if (name == kObjectives[i]) return static_cast<Objective>(i);
  throw std::invalid_argument(
      "objective: expected one of squared_error, huber, logistic, "
      "pairwise, got '" +
      name + "'");
}

const char* objective_name(Objective o) noexcept { return kObjectives[static_cast<int>(o)]; }

Growth parse_growth(const std::string& name) {
  for (int i = 0; i < 2; ++i)
    if (name == kGrowths[i]) return static_cast<Growth>(i);
  throw std::invalid_argument("growth: expected depthwise or leafwise, got '" + name + "'");
}

const char* growth_name(Growth g) noexcept { return kGrowths[static_cast<int>(g)]; }

Model::Model(const ModelState& s) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("model: " + what); };
  if (static_cast<int>(s.objective) < 0 || static_cast<int>(s.objective) > 3) bad("bad objective");
  if (s.n_features < 1 || s.n_features > kMaxFeatures)
    bad("n_features must be in [1, " + std::to_string(kMaxFeatures) + "], got " +
        std::to_string(s.n_features));
  if (!std::isfinite(s.base_score)) bad("base_score is not finite");
  const size_t n = s.feature.size();
  if (s.value.size() != n || s.left.size() != n || s.default_left.size() != n ||
      s.gain.size() != n || s.cover.size() != n)
    bad("node arrays differ in length");
  if (n >= 0x7fffffffu) bad("too many nodes");
  if (s.roots.empty() && n != 0) bad("nodes without trees");
  for (size_t t = 0; t < s.roots.size(); ++t) {
    const std::int64_t begin = s.roots[t];
    const std::int64_t end = t + 1 < s.roots.size() ? s.roots[t + 1] : static_cast<std::int64_t>(n);
    if (t == 0 && begin != 0) bad("tree 0 must start at node 0");
    if (begin < 0 || end <= begin || end > static_cast<std::int64_t>(n))
      bad("tree " + std::to_string(t) + " has a bad node range");
    // Every node of the tree is reached exactly once: children lie after their parent, inside
    // the tree, and are claimed once.
    std::vector<char> reached(static_cast<size_t>(end - begin), 0);
    reached[0] = 1;
    for (std::int64_t i = begin; i < end; ++i) {
      const auto k = static_cast<size_t>(i);
      if (!reached[static_cast<size_t>(i - begin)])
        bad("node " + std::to_string(i) + " is unreachable");
      if (!std::isfinite(s.value[k]) || !std::isfinite(s.gain[k]) || !std::isfinite(s.cover[k]))
        bad("node " + std::to_string(i) + " has a non-finite value");
      if (s.feature[k] < 0) {
        if (s.left[k] != -1) bad("leaf " + std::to_string(i) + " has children");
        continue;
      }
      if (s.feature[k] >= s.n_features) bad("node " + std::to_string(i) + " has a bad feature");
      const std::int64_t l = s.left[k];
      if (l <= i || l + 1 >= end) bad("node " + std::to_string(i) + " has bad children");
      for (std::int64_t c = l; c <= l + 1; ++c) {
        char& r = reached[static_cast<size_t>(c - begin)];
        if (r) bad("node " + std::to_string(c) + " has two parents");
        r = 1;
      }
    }
  }
  objective_ = s.objective;
  n_features_ = s.n_features;
  base_score_ = s.base_score;
  roots_.assign(s.roots.begin(), s.roots.end());
  nodes_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Node& d = nodes_[i];
    d.value = s.value[i];
    if (s.feature[i] >= 0) {
      d.left = static_cast<std::uint32_t>(s.left[i]);
      d.feature =
          static_cast<std::uint32_t>(s.feature[i]) | (s.default_left[i] ? Node::kDefaultLeft : 0u);
    }
  }
  gain_ = s.gain;
  cover_ = s.cover;
  walk_ = nodes_;
  leaf_value_.assign(n, 0.0);
  std::vector<int> depth(n, 0);
  trees_.reserve(roots_.size());
  for (size_t t = 0; t < roots_.size(); ++t) {
    const size_t end = t + 1 < roots_.size() ? roots_[t + 1] : n;
    int max_depth = 0;
    for (size_t i = roots_[t]; i < end; ++i) {  // parents come before their children
      Node& w = walk_[i];
      if (w.left == 0) {
        leaf_value_[i] = w.value;
        w.left = static_cast<std::uint32_t>(i);
        w.feature = Node::kDefaultLeft;
        w.value = std::numeric_limits<double>::infinity();
        max_depth = std::max(max_depth, depth[i]);
      } else {
        depth[w.left] = depth[w.left + 1] = depth[i] + 1;
      }
    }
    trees_.push_back(Tree{roots_[t], max_depth});
    if (t % kLanes == 0) lane_depth_.push_back(0);
    lane_depth_.back() = std::max(lane_depth_.back(), max_depth);
  }
}

ModelState Model::state() const {
  ModelState s;
  s.objective = objective_;
  s.n_features = n_features_;
  s.base_score = base_score_;
  s.roots.assign(roots_.begin(), roots_.end());
  const size_t n = nodes_.size();
  s.feature.resize(n);
  s.value.resize(n);
  s.left.resize(n);
  s.default_left.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Node& d = nodes_[i];
    const bool leaf = d.left == 0;
    s.feature[i] = leaf ? -1 : static_cast<std::int64_t>(d.feature & ~Node::kDefaultLeft);
    s.value[i] = d.value;
    s.left[i] = leaf ? -1 : static_cast<std::int64_t>(d.left);
    s.default_left[i] = (!leaf && (d.feature & Node::kDefaultLeft)) ? 1 : 0;
  }
  s.gain = gain_;
  s.cover = cover_;
  return s;
}

void Model::predict_raw(const double* X, Index n, double* out, int n_threads) const {
  // Chunks of rows across threads; inside a chunk, blocks of rows walk one tree after the other,
  // so that the tree stays in L1 and the walks of different rows overlap in the pipeline.
  constexpr Index kChunk = 512, kBlock = 64;
  const Index n_chunks = (n + kChunk - 1) / kChunk;
  const Index p = n_features_;
  const Node* walk = walk_.data();
  parallel_for(n_chunks, n_chunks > 1 ? resolve_threads(n_threads) : 1, [&](Index c) {
    const Index end = std::min(n, (c + 1) * kChunk);
    for (Index b0 = c * kChunk; b0 < end; b0 += kBlock) {
      const Index b1 = std::min(end, b0 + kBlock);
      const Index m = b1 - b0;
      std::uint32_t at[kBlock];
      for (Index i = 0; i < m; ++i) out[b0 + i] = base_score_;
      for (const Tree& t : trees_) {
        for (Index i = 0; i < m; ++i) at[i] = t.root;
        for (int d = 0; d < t.depth; ++d) {
          for (Index i = 0; i < m; ++i) {  // independent walks: they overlap in the pipeline
            const Node& nd = walk[at[i]];
            at[i] =
                nd.left + 1u - nd.goes_left(X[(b0 + i) * p + (nd.feature & ~Node::kDefaultLeft)]);
          }
        }
        for (Index i = 0; i < m; ++i) out[b0 + i] += leaf_value_[at[i]];
      }
    }
  });
}

double Model::transform(double raw) const noexcept {
  return objective_ == Objective::logistic ? 1.0 / (1.0 + std::exp(-raw)) : raw;
}

std::vector<double> Model::importance(const std::string& kind) const {
  if (kind != "gain" && kind != "split")
    throw std::invalid_argument("importance: expected 'gain' or 'split', got '" + kind + "'");
  std::vector<double> out(static_cast<size_t>(n_features_), 0.0);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].left == 0) continue;
    const size_t f = nodes_[i].feature & ~Node::kDefaultLeft;
    out[f] += kind == "gain" ? gain_[i] : 1.0;
  }
  return out;
}

double pairwise_accuracy(const double* score, const double* y, const std::int64_t* group, Index n) {
  // A NaN would break the sort's ordering and the scan over blocks of equal score.
  for (Index i = 0; i < n; ++i) {
    if (std::isnan(score[i])) throw std::invalid_argument("score: NaN at row " + std::to_string(i));
    if (std::isnan(y[i])) throw std::invalid_argument("y: NaN at row " + std::to_string(i));
  }
  std::vector<Index> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  // Rows by group, then by score.
  std::sort(order.begin(), order.end(), [&](Index a, Index b) {
    const std::int64_t ga = group ? group[a] : 0, gb = group ? group[b] : 0;
    if (ga != gb) return ga < gb;
    return score[a] < score[b];
  });
  double good = 0.0, pairs = 0.0;
  std::vector<double> labels;
  std::vector<double> tree;  // Fenwick tree of label counts by label rank
  size_t g0 = 0;
  while (g0 < order.size()) {
    size_t g1 = g0;
    const std::int64_t gid = group ? group[order[g0]] : 0;
    while (g1 < order.size() && (group ? group[order[g1]] : 0) == gid) ++g1;
    labels.clear();
    for (size_t k = g0; k < g1; ++k) labels.push_back(y[order[k]]);
    std::sort(labels.begin(), labels.end());
    labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
    const size_t L = labels.size();
    tree.assign(L + 1, 0.0);
    auto rank = [&](double v) {
      return static_cast<size_t>(std::lower_bound(labels.begin(), labels.end(), v) -
                                 labels.begin());
    };
    auto add = [&](size_t r) {
      for (size_t i = r + 1; i <= L; i += i & (~i + 1)) tree[i] += 1.0;
    };
    auto below = [&](size_t r) {  // count of seen labels with rank < r
      double c = 0.0;
      for (size_t i = r; i > 0; i -= i & (~i + 1)) c += tree[i];
      return c;
    };
    double seen = 0.0;
    // Blocks of equal score: pairs inside a block are ties (one half if labels differ).
    size_t b0 = g0;
    while (b0 < g1) {
      size_t b1 = b0;
      while (b1 < g1 && score[order[b1]] == score[order[b0]]) ++b1;
      for (size_t k = b0; k < b1; ++k) {
        const size_t r = rank(y[order[k]]);
        const double lower = below(r);              // earlier, lower score, lower label
        const double equal = below(r + 1) - lower;  // earlier, same label
        good += lower;
        pairs += seen - equal;
      }
      // ties within the block
      std::vector<size_t> ranks;
      for (size_t k = b0; k < b1; ++k) ranks.push_back(rank(y[order[k]]));
      std::sort(ranks.begin(), ranks.end());
      const double m = static_cast<double>(b1 - b0);
      double same = 0.0;
      for (size_t a = 0; a < ranks.size();) {
        size_t c = a;
        while (c < ranks.size() && ranks[c] == ranks[a]) ++c;
        const double k = static_cast<double>(c - a);
        same += k * (k - 1) / 2;
        a = c;
      }
      const double tied = m * (m - 1) / 2 - same;
      good += 0.5 * tied;
      pairs += tied;
      for (size_t k = b0; k < b1; ++k) add(rank(y[order[k]]));
      seen += m;
      b0 = b1;
    }
    g0 = g1;
  }
  return pairs > 0 ? good / pairs : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace energycore::gbdt
