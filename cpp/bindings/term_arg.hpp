// Conversion of a term-sum model from Python (term_sum.hpp), shared by the model and space
// bindings: ([[(variable, exponent, free_index), ...] per term], n_free).
#pragma once

#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "energycore/term_sum.hpp"
#include "energycore/types.hpp"

namespace energycore::bindings {

using TermArg = std::pair<std::vector<std::vector<std::tuple<int, double, int>>>, int>;

/// The template of a term-sum argument; std::invalid_argument (ValueError) on bad input.
std::shared_ptr<const model::ModelTemplate> term_sum_of(const TermArg& arg,
                                                        const std::string& quantity);

/// Throws unless theta has the template's size, is finite and its coefficients are >= 0.
void check_term_theta(const model::ModelTemplate& t, const Vector& theta, const std::string& what);

}  // namespace energycore::bindings
