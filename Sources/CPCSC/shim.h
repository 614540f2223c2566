// pcsc-lite: pkg-config adds -I/usr/include/PCSC.
#include <winscard.h>
