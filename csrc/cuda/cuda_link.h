// The CUDA runtime's torchnp_link (core/link.h): one per device, created on first ask and kept
// for the life of the process, each with its own lazily created non-blocking copy stream.
//
// Nothing here touches CUDA until a function is called: importing the module that holds it
// must work on a machine without a driver.
#pragma once

#include <string>

#include "core/link.h"

namespace torchnp::cuda {

// The number of visible devices; 0 when there is no driver or device (never fails), with the
// runtime's cause in *cause (left empty when devices were found).
int device_count(std::string* cause);

// The link of `device`, which the caller has checked to be in [0, device_count()). Never
// destroyed: the transfer pipeline and any capsule handed out may use it until exit, and a copy
// stream destroyed during interpreter teardown could race the driver's own.
const torchnp_link* link_for(int device);

}  // namespace torchnp::cuda
