// Common numeric types of the energycore core: double precision, int64 indices, row-major
// feature tables (one configuration per row), so that numpy C-contiguous arrays map without copies.
#pragma once

#include <Eigen/Core>
#include <cstdint>

namespace energycore {

using Index = Eigen::Index;
using Vector = Eigen::VectorXd;
using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Number of model feature columns, in this order: tp, pp, batch, input_len, output_len.
inline constexpr int kFeatures = 5;
enum Feature : int { kTp = 0, kPp = 1, kBatch = 2, kInputLen = 3, kOutputLen = 4 };

/// A table of configurations, one row each, columns in the `Feature` order.
using FeatureTable = Eigen::Matrix<double, Eigen::Dynamic, kFeatures, Eigen::RowMajor>;
using FeatureRef = Eigen::Ref<const FeatureTable>;

}  // namespace energycore
