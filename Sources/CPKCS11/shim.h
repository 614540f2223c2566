// PKCS#11 (OASIS Cryptoki 2.40) as Debian's libp11-kit-dev ships it. CardDesk does not link p11-kit: it loads the
// HSM vendor's module with dlopen and calls it through the function list the module returns.
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
