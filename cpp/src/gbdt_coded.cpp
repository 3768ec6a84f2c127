// Prediction over a coded row set (gbdt.hpp: CodedRows, Model::predict_coded).
//
// Each tree of at most 64 leaves becomes, for every feature it splits on, a table of 64-bit
// leaf masks indexed by the row's code of that feature: the leaves that stay possible given that
// feature's value. A split of node n on feature f at threshold t sends codes c < c*(t) left
// (c* = number of distinct values <= t) and clears the right subtree's leaves from their masks,
// and clears the left subtree's leaves from the masks of the other codes. ANDing the row's
// masks over the tree's features leaves exactly one bit, the leaf its walk reaches: any other
// leaf differs from it at some node, whose outcome for this row cleared it. Trees with more
// leaves are walked on the codes (thresholds turned into code thresholds).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "energycore/gbdt.hpp"
#include "energycore/parallel.hpp"

namespace energycore::gbdt {

CodedRows::CodedRows(const double* X, Index n_rows, Index n_features)
    : n_rows_(n_rows), n_features_(n_features) {
  if (n_rows < 1 || n_features < 1)
    throw std::invalid_argument("coded rows: need at least one row and one feature");
  if (n_features > kMaxFeatures) throw std::invalid_argument("coded rows: too many features");
  const auto n = static_cast<size_t>(n_rows), p = static_cast<size_t>(n_features);
  codes_.resize(n * p);
  values_.resize(p);
  has_nan_.assign(p, 0);
  std::vector<double> col;
  for (size_t f = 0; f < p; ++f) {
    col.clear();
    for (size_t r = 0; r < n; ++r) {
      const double v = X[r * p + f];
      if (std::isnan(v)) has_nan_[f] = 1;
      else col.push_back(v);
    }
    std::sort(col.begin(), col.end());
    col.erase(std::unique(col.begin(), col.end()), col.end());
    if (static_cast<Index>(col.size()) + has_nan_[f] > kMaxCodes)
      throw std::invalid_argument("coded rows: column " + std::to_string(f) + " has " +
                                  std::to_string(col.size()) + " distinct values (at most " +
                                  std::to_string(kMaxCodes) + " codes per column)");
    const auto nan_code = static_cast<std::uint8_t>(col.size() & 0xff);
    for (size_t r = 0; r < n; ++r) {
      const double v = X[r * p + f];
      codes_[r * p + f] =
          std::isnan(v) ? nan_code
                        : static_cast<std::uint8_t>(std::lower_bound(col.begin(), col.end(), v) -
                                                    col.begin());
    }
    values_[f] = col;
  }
  group_of_.resize(p);
  mult_.resize(p);
  for (size_t f = 0; f < p; ++f) {
    const Index c = n_codes(static_cast<Index>(f));
    if (group_size_.empty() || group_size_.back() * c > kMaxCodes) group_size_.push_back(1);
    group_of_[f] = static_cast<Index>(group_size_.size()) - 1;
    mult_[f] = group_size_.back();
    group_size_.back() *= c;
  }
  const size_t g_n = group_size_.size();
  packed_.assign(n * g_n, 0);
  for (size_t r = 0; r < n; ++r)
    for (size_t f = 0; f < p; ++f)
      packed_[r * g_n + static_cast<size_t>(group_of_[f])] = static_cast<std::uint8_t>(
          packed_[r * g_n + static_cast<size_t>(group_of_[f])] + codes_[r * p + f] * mult_[f]);
}

namespace {

struct CodedTree {
  bool masked = false;      ///< leaf masks (else walked on codes)
  std::uint32_t first = 0;  ///< masked: first entry in feats/offsets; walked: first node
  std::uint32_t count = 0;  ///< masked: features used; walked: depth
  std::uint32_t leaf0 = 0;  ///< masked: first leaf value
  std::uint32_t gfirst = 0;  ///< masked: first entry in gfeats/goffsets (column groups)
  std::uint32_t gcount = 0;
  double constant = 0.0;    ///< a tree without splits
  bool is_constant = false;
};

struct CodedNode {  ///< a node for walking on codes: code < cut goes left, NaN code by flag
  std::uint32_t left = 0;  ///< leaf: itself
  std::uint32_t feature = 0;
  std::uint32_t cut = 0;  ///< leaf: 256 (every code goes "left", i.e. stays)
  std::uint32_t nan_left = 1;
};

}  // namespace

void Model::predict_coded(const CodedRows& rows, double* out, int n_threads) const {
  if (rows.n_features() != n_features_)
    throw std::invalid_argument("coded rows: " + std::to_string(rows.n_features()) +
                                " features, the model has " + std::to_string(n_features_));
  const Index p = n_features_;
  const auto nfeat = static_cast<size_t>(p);
  auto cut_of = [&](const Node& nd) {
    const auto& vals = rows.values(nd.feature & ~Node::kDefaultLeft);
    return static_cast<std::uint32_t>(std::upper_bound(vals.begin(), vals.end(), nd.value) -
                                      vals.begin());
  };
  std::vector<CodedTree> trees(roots_.size());
  std::vector<std::uint32_t> feats, offsets;
  std::vector<std::uint64_t> masks;
  std::vector<std::uint32_t> gfeats, goffsets;
  std::vector<std::uint64_t> gmasks;
  std::vector<double> leaves;
  std::vector<CodedNode> walk;
  std::vector<int> slot(nfeat, -1);
  std::vector<std::uint32_t> lo(nodes_.size()), hi(nodes_.size());  // leaf ordinals [lo, hi)
  std::vector<std::uint32_t> stack;
  for (size_t t = 0; t < roots_.size(); ++t) {
    const std::uint32_t root = roots_[t];
    CodedTree& ct = trees[t];
    if (nodes_[root].left == 0) {
      ct.is_constant = true;
      ct.constant = leaf_value_[root];
      continue;
    }
    // Leaf ordinals left to right (depth-first, left child first), and the leaf values in order.
    std::uint32_t n_leaves = 0;
    stack.assign(1, root);
    std::vector<std::uint32_t> post;  // internal nodes, children before parents
    while (!stack.empty()) {
      const std::uint32_t i = stack.back();
      stack.pop_back();
      if (nodes_[i].left == 0) {
        lo[i] = n_leaves;
        hi[i] = ++n_leaves;
      } else {
        post.push_back(i);
        stack.push_back(nodes_[i].left + 1);  // right after left
        stack.push_back(nodes_[i].left);
      }
    }
    for (auto it = post.rbegin(); it != post.rend(); ++it) {  // children first
      const std::uint32_t i = *it, l = nodes_[i].left;
      lo[i] = lo[l];
      hi[i] = hi[l + 1];
    }
    if (n_leaves <= 64) {
      ct.masked = true;
      ct.first = static_cast<std::uint32_t>(feats.size());
      ct.leaf0 = static_cast<std::uint32_t>(leaves.size());
      leaves.resize(leaves.size() + n_leaves);
      for (std::uint32_t i : post) {
        for (std::uint32_t c = nodes_[i].left; c <= nodes_[i].left + 1; ++c)
          if (nodes_[c].left == 0) leaves[ct.leaf0 + lo[c]] = leaf_value_[c];
        const std::uint32_t f = nodes_[i].feature & ~Node::kDefaultLeft;
        if (slot[f] < 0) {
          slot[f] = static_cast<int>(feats.size() - ct.first);
          feats.push_back(f);
          offsets.push_back(static_cast<std::uint32_t>(masks.size()));
          const size_t n_codes = rows.values(f).size() + (rows.has_nan(f) ? 1 : 0);
          const std::uint64_t all = n_leaves == 64 ? ~0ull : ((1ull << n_leaves) - 1);
          masks.resize(masks.size() + n_codes, all);
        }
      }
      ct.count = static_cast<std::uint32_t>(feats.size() - ct.first);
      auto bits = [](std::uint32_t a, std::uint32_t b) {  // bits a..b-1, b - a in [1, 64]
        const std::uint32_t w = b - a;
        return (w == 64 ? ~0ull : ((1ull << w) - 1)) << a;
      };
      for (std::uint32_t i : post) {
        const Node& nd = nodes_[i];
        const std::uint32_t f = nd.feature & ~Node::kDefaultLeft;
        std::uint64_t* m = masks.data() + offsets[ct.first + static_cast<std::uint32_t>(slot[f])];
        const std::uint64_t left = bits(lo[nd.left], hi[nd.left]);
        const std::uint64_t right = bits(lo[nd.left + 1], hi[nd.left + 1]);
        const std::uint32_t cut = cut_of(nd);
        const auto n_vals = static_cast<std::uint32_t>(rows.values(f).size());
        for (std::uint32_t c = 0; c < cut; ++c) m[c] &= ~right;
        for (std::uint32_t c = cut; c < n_vals; ++c) m[c] &= ~left;
        if (rows.has_nan(f)) m[n_vals] &= (nd.feature & Node::kDefaultLeft) ? ~right : ~left;
      }
      for (std::uint32_t k = ct.first; k < feats.size(); ++k) slot[feats[k]] = -1;
      // Combine the columns' masks into one table per group the tree uses.
      const std::uint32_t n_used = ct.count;
      std::vector<std::uint32_t> gs;  // groups used, in order of first use
      for (std::uint32_t k = 0; k < n_used; ++k) {
        const auto g = static_cast<std::uint32_t>(rows.group_of(feats[ct.first + k]));
        if (std::find(gs.begin(), gs.end(), g) == gs.end()) gs.push_back(g);
      }
      ct.gfirst = static_cast<std::uint32_t>(gfeats.size());
      ct.gcount = static_cast<std::uint32_t>(gs.size());
      for (std::uint32_t g : gs) {
        const Index size = rows.group_codes(g);
        gfeats.push_back(g);
        goffsets.push_back(static_cast<std::uint32_t>(gmasks.size()));
        gmasks.resize(gmasks.size() + static_cast<size_t>(size), ~0ull);
        std::uint64_t* gm = gmasks.data() + goffsets.back();
        for (std::uint32_t k = 0; k < n_used; ++k) {
          const std::uint32_t f = feats[ct.first + k];
          if (static_cast<std::uint32_t>(rows.group_of(f)) != g) continue;
          const Index mult = rows.multiplier(f), nc = rows.n_codes(f);
          const std::uint64_t* fm = masks.data() + offsets[ct.first + k];
          for (Index gc = 0; gc < size; ++gc) gm[gc] &= fm[(gc / mult) % nc];
        }
      }
    } else {
      // Walked on codes: copy the tree with code thresholds; leaves loop to themselves.
      ct.first = static_cast<std::uint32_t>(walk.size());
      const std::uint32_t base = root;
      const size_t end = t + 1 < roots_.size() ? roots_[t + 1] : nodes_.size();
      std::vector<int> depth(end - base, 0);
      int max_depth = 0;
      for (size_t i = base; i < end; ++i) {
        const Node& nd = nodes_[i];
        CodedNode cn;
        const auto self = static_cast<std::uint32_t>(walk.size());
        if (nd.left == 0) {
          cn.left = self;
          cn.cut = 256;
          max_depth = std::max(max_depth, depth[i - base]);
        } else {
          cn.left = ct.first + (nd.left - base);
          cn.feature = nd.feature & ~Node::kDefaultLeft;
          cn.cut = cut_of(nd);
          cn.nan_left = (nd.feature & Node::kDefaultLeft) ? 1u : 0u;
          depth[nd.left - base] = depth[nd.left + 1 - base] = depth[i - base] + 1;
        }
        walk.push_back(cn);
      }
      ct.count = static_cast<std::uint32_t>(max_depth);
      ct.leaf0 = static_cast<std::uint32_t>(leaves.size());
      for (size_t i = base; i < end; ++i) leaves.push_back(leaf_value_[i]);
    }
  }
  // NaN code of each feature (only read where the column holds NaN).
  std::vector<std::uint32_t> nan_code(nfeat);
  for (size_t f = 0; f < nfeat; ++f)
    nan_code[f] = rows.has_nan(static_cast<Index>(f))
                      ? static_cast<std::uint32_t>(rows.values(static_cast<Index>(f)).size())
                      : 1000u;  // no code equals it
  const std::uint8_t* codes = rows.codes();
  const std::uint8_t* packed = rows.packed();
  const Index n_groups = rows.n_groups();
  const Index n = rows.n_rows();
  constexpr Index kChunk = 512;
  const Index n_chunks = (n + kChunk - 1) / kChunk;
  parallel_for(n_chunks, n_chunks > 1 ? resolve_threads(n_threads) : 1, [&](Index ch) {
    const Index r0 = ch * kChunk, r1 = std::min(n, r0 + kChunk);
    for (Index r = r0; r < r1; ++r) out[r] = base_score_;
    for (const CodedTree& ct : trees) {
      if (ct.is_constant) {
        for (Index r = r0; r < r1; ++r) out[r] += ct.constant;
      } else if (ct.masked) {
        const std::uint32_t* fs = gfeats.data() + ct.gfirst;
        const std::uint32_t* os = goffsets.data() + ct.gfirst;
        const std::uint64_t* mk = gmasks.data();
        const double* lv = leaves.data() + ct.leaf0;
        const std::uint32_t k = ct.gcount;
        for (Index r = r0; r < r1; ++r) {
          const std::uint8_t* c = packed + r * n_groups;
          std::uint64_t m = mk[os[0] + c[fs[0]]];
          for (std::uint32_t j = 1; j < k; ++j) m &= mk[os[j] + c[fs[j]]];
          out[r] += lv[__builtin_ctzll(m)];
        }
      } else {
        const CodedNode* w = walk.data();
        const double* lv = leaves.data() + ct.leaf0;  // by position in the tree
        for (Index r = r0; r < r1; ++r) {
          const std::uint8_t* c = codes + r * p;
          std::uint32_t at = ct.first;
          for (std::uint32_t d = 0; d < ct.count; ++d) {
            const CodedNode& cn = w[at];
            const std::uint32_t code = c[cn.feature];
            const std::uint32_t go_left =
                code == nan_code[cn.feature] ? cn.nan_left : static_cast<std::uint32_t>(code < cn.cut);
            at = go_left ? cn.left : cn.left + 1;
          }
          out[r] += lv[at - ct.first];
        }
      }
    }
  });
}

}  // namespace energycore::gbdt
