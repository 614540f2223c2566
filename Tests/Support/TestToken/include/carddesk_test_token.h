// A PKCS#11 module for tests: it forwards every call to a real module (SoftHSMv2 by default) and, while a flag file
// exists, behaves as if the token had been pulled out. See test_token.c.
#pragma once
