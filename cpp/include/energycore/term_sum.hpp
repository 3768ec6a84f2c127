// The generic "term-sum" model template: y = sum_j c_j * prod_f v_f(row)^e_f, a sum of
// products of powers of the model variables, as found by structure discovery
// (energycore.discover). Unlike the fixed templates of templates.hpp it is built at run time from
// its terms, so the space engine scores a discovered model like any fitted template (values,
// gradients for the confidence bounds, the model table, the Selector).
//
// Coefficients theta = [c_0 .. c_{k-1}, e_0 .. e_{q-1}]: one non-negative coefficient per term,
// then the q free exponents (a factor either has a fixed exponent or takes theta[k + i]).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "energycore/templates.hpp"

namespace energycore::model {

/// Variables a term may use, computed from a feature row (tp, pp, batch, input_len, output_len).
enum TermVariable : int {
  kVarTp = 0,
  kVarPp = 1,
  kVarBatch = 2,
  kVarInputLen = 3,
  kVarOutputLen = 4,
  kVarNGpus = 5,      ///< tp * pp
  kVarTpMinus1 = 6,   ///< tp - 1
  kVarPpMinus1 = 7,   ///< pp - 1
  kTermVariables = 8,
};

/// One factor v^e of a term: `variable` a TermVariable, `exponent` its fixed exponent, or
/// `free_index` >= 0 to take the exponent theta[n_terms + free_index] instead.
struct TermFactor {
  int variable = 0;
  double exponent = 1.0;
  int free_index = -1;
};

/// Builds a term-sum template; throws std::invalid_argument on a variable index outside
/// [0, kTermVariables), a non-finite fixed exponent, a free index outside [0, n_free), no
/// terms, or more than `kMaxTerms` terms / `kMaxFactors` factors per term.
std::shared_ptr<const ModelTemplate> make_term_sum(std::vector<std::vector<TermFactor>> terms,
                                                   int n_free, std::string quantity);

inline constexpr int kMaxTerms = 4096;
inline constexpr int kMaxFactors = 64;
inline constexpr int kMaxFree = 4096;

}  // namespace energycore::model
