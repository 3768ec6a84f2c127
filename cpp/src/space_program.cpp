// The expression bytecode of the configuration space (space.hpp): validation and evaluation,
// and the limits of constrained selection.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "energycore/space.hpp"

namespace energycore::space {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// How many operands an instruction pops (Min/Max: its arg).
int pops(const Instr& in) noexcept {
  switch (in.op) {
    case Op::Const:
    case Op::Load:
    case Op::Lookup:
      return 0;
    case Op::Neg:
    case Op::Not:
    case Op::Abs:
      return 1;
    case Op::Min:
    case Op::Max:
      return in.arg;
    default:
      return 2;
  }
}

/// Python's float modulo: the sign of the divisor (a zero result too). Integral operands take an
/// exact int64 path, several times faster than fmod.
double py_mod(double a, double b) noexcept {
  if (b == 0.0) return kNaN;
  constexpr double kExact = 9007199254740992.0;  // 2^53: doubles below it are exact integers
  if (std::fabs(a) < kExact && std::fabs(b) < kExact) {
    const auto ia = static_cast<std::int64_t>(a);
    const auto ib = static_cast<std::int64_t>(b);
    if (static_cast<double>(ia) == a && static_cast<double>(ib) == b) {
      std::int64_t r = ia % ib;
      if (r != 0 && ((r < 0) != (ib < 0))) r += ib;
      return r == 0 ? std::copysign(0.0, b) : static_cast<double>(r);
    }
  }
  double r = std::fmod(a, b);
  if (r == 0.0) return std::copysign(0.0, b);
  if ((r < 0.0) != (b < 0.0)) r += b;
  return r;
}

/// Python's float floor division (floatobject.c): exact where floor(a / b) is not.
double py_floordiv(double a, double b) noexcept {
  if (b == 0.0) return kNaN;
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0.0) != (mod < 0.0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, a / b);
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

}  // namespace

Program::Program(std::vector<Instr> code, int n_slots) : code_(std::move(code)) {
  int depth = 0;
  for (size_t k = 0; k < code_.size(); ++k) {
    const Instr& in = code_[k];
    const int op = static_cast<int>(in.op);
    if (op < static_cast<int>(Op::Const) || op > static_cast<int>(Op::Lookup))
      throw std::invalid_argument("program: unknown op " + std::to_string(op) + " at " +
                                  std::to_string(k));
    if (in.op == Op::Lookup) {
      const double n = in.value;
      if (!(n >= 1 && n == std::floor(n) && static_cast<double>(code_.size() - k - 1) >= n))
        throw std::invalid_argument("program: lookup table at " + std::to_string(k) +
                                    " is missing or has a bad size");
      for (size_t j = k + 1; j <= k + static_cast<size_t>(n); ++j)
        if (code_[j].op != Op::Const)
          throw std::invalid_argument("program: lookup entries must be constants");
    }
    if ((in.op == Op::Load || in.op == Op::Lookup) && (in.arg < 0 || in.arg >= n_slots))
      throw std::invalid_argument("program: slot " + std::to_string(in.arg) + " out of range at " +
                                  std::to_string(k));
    if ((in.op == Op::Min || in.op == Op::Max) && in.arg < 1)
      throw std::invalid_argument("program: min/max needs at least one operand");
    const int p = pops(in);
    if (depth < p) throw std::invalid_argument("program: stack underflow at " + std::to_string(k));
    depth += 1 - p;
    if (depth > kMaxStack)
      throw std::invalid_argument("program: expression nests deeper than " +
                                  std::to_string(kMaxStack));
    if (in.op == Op::Lookup) k += static_cast<size_t>(in.value);  // skip the table
  }
  if (!code_.empty() && depth != 1)
    throw std::invalid_argument("program: leaves " + std::to_string(depth) + " values, not 1");
}

std::vector<int> Program::reads() const {
  std::vector<int> out;
  for (size_t k = 0; k < code_.size(); ++k) {
    const Instr& in = code_[k];
    if (in.op == Op::Load || in.op == Op::Lookup) out.push_back(in.arg);
    if (in.op == Op::Lookup) k += static_cast<size_t>(in.value);
  }
  return out;
}

bool Program::uses(int slot) const noexcept {
  for (size_t k = 0; k < code_.size(); ++k) {
    const Instr& in = code_[k];
    if ((in.op == Op::Load || in.op == Op::Lookup) && in.arg == slot) return true;
    if (in.op == Op::Lookup) k += static_cast<size_t>(in.value);
  }
  return false;
}

double Program::eval(const double* slots) const noexcept {
  if (code_.empty()) return 1.0;
  double st[kMaxStack];
  int sp = 0;  // number of values on the stack
  const size_t n_code = code_.size();
  for (size_t pc = 0; pc < n_code; ++pc) {
    const Instr& in = code_[pc];
    switch (in.op) {
      case Op::Lookup: {
        const double x = slots[in.arg];
        const double n = in.value;
        st[sp++] = (x >= 0.0 && x < n && x == std::floor(x))
                       ? code_[pc + 1 + static_cast<size_t>(x)].value
                       : kNaN;
        pc += static_cast<size_t>(n);
        break;
      }
      case Op::Const:
        st[sp++] = in.value;
        break;
      case Op::Load:
        st[sp++] = slots[in.arg];
        break;
      case Op::Neg:
        st[sp - 1] = -st[sp - 1];
        break;
      case Op::Not:
        st[sp - 1] = st[sp - 1] != 0.0 ? 0.0 : 1.0;
        break;
      case Op::Abs:
        st[sp - 1] = std::fabs(st[sp - 1]);
        break;
      case Op::Min:
      case Op::Max: {
        const int n = in.arg;
        double v = st[sp - n];
        for (int j = sp - n + 1; j < sp; ++j) {
          const double w = st[j];
          // NaN propagates, so that an undefined operand never wins a comparison.
          if (std::isnan(w) || std::isnan(v)) {
            v = kNaN;
          } else {
            v = in.op == Op::Min ? std::min(v, w) : std::max(v, w);
          }
        }
        sp -= n;
        st[sp++] = v;
        break;
      }
      default: {
        const double b = st[--sp];
        const double a = st[sp - 1];
        double r = 0.0;
        switch (in.op) {
          case Op::Add:
            r = a + b;
            break;
          case Op::Sub:
            r = a - b;
            break;
          case Op::Mul:
            r = a * b;
            break;
          case Op::Div:
            r = b == 0.0 ? kNaN : a / b;
            break;
          case Op::FloorDiv:
            r = py_floordiv(a, b);
            break;
          case Op::Mod:
            r = py_mod(a, b);
            break;
          case Op::Pow:
            r = std::pow(a, b);
            break;
          case Op::Lt:
            r = a < b ? 1.0 : 0.0;
            break;
          case Op::Le:
            r = a <= b ? 1.0 : 0.0;
            break;
          case Op::Gt:
            r = a > b ? 1.0 : 0.0;
            break;
          case Op::Ge:
            r = a >= b ? 1.0 : 0.0;
            break;
          case Op::Eq:
            r = a == b ? 1.0 : 0.0;
            break;
          case Op::Ne:
            r = a != b ? 1.0 : 0.0;
            break;
          case Op::And:
            r = (a != 0.0 && b != 0.0) ? 1.0 : 0.0;
            break;
          case Op::Or:
            r = (a != 0.0 || b != 0.0) ? 1.0 : 0.0;
            break;
          default:
            r = kNaN;
            break;
        }
        st[sp - 1] = r;
        break;
      }
    }
  }
  return st[0];
}

bool Limit::holds(double v) const noexcept {
  switch (op) {
    case 0:
      return v <= value;
    case 1:
      return v < value;
    case 2:
      return v >= value;
    case 3:
      return v > value;
    case 4:
      return v == value;
    default:
      return false;
  }
}

double Limit::violation(double v) const noexcept {
  if (std::isnan(v)) return kInf;
  const double scale = std::max(std::fabs(value), 1e-12);
  switch (op) {
    case 0:
    case 1:
      return std::max(0.0, v - value) / scale;
    case 2:
    case 3:
      return std::max(0.0, value - v) / scale;
    default:
      return std::fabs(v - value) / scale;
  }
}

}  // namespace energycore::space
