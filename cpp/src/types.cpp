#include "energycore/types.hpp"

#include <thread>

namespace energycore {

int resolve_threads(int requested) noexcept {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace energycore
