// Compatibility header: the closed-form templates (templates.hpp) and their fit (fit.hpp).
// New code includes the one it needs.
#pragma once

#include "energycore/fit.hpp"        // IWYU pragma: export
#include "energycore/templates.hpp"  // IWYU pragma: export
