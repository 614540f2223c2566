// The declaration in include/LibFuzzerDriver.h is all this module provides; libFuzzer defines the function.
#include "LibFuzzerDriver.h"
