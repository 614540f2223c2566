// carddesk-test-token: a PKCS#11 module that stands for an HSM whose token can be taken away, for the tests of the
// server's behaviour when the HSM goes (503, then recovery without a restart). Test code only: no production target
// links it, and it only ever makes calls fail.
//
// It loads the real module named by CARDDESK_TEST_TOKEN_MODULE (default: SoftHSMv2) and returns its function list
// with a few entries wrapped. While the file named by CARDDESK_TEST_TOKEN_REMOVED_FLAG exists, the token is "out":
// C_GetSlotList with tokenPresent lists no slot, C_GetTokenInfo says CKR_TOKEN_NOT_PRESENT, and every session call
// the CA makes says CKR_DEVICE_REMOVED. When the file is gone, every call reaches the real module again.
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <p11-kit/pkcs11.h>
#include "carddesk_test_token.h"

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST wrapped;
static pthread_once_t loaded = PTHREAD_ONCE_INIT;
static CK_RV load_result = CKR_GENERAL_ERROR;

static int token_out(void) {
    const char *flag = getenv("CARDDESK_TEST_TOKEN_REMOVED_FLAG");
    return flag != NULL && access(flag, F_OK) == 0;
}

static CK_RV w_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
    if (token_out() && present) {
        if (count == NULL) return CKR_ARGUMENTS_BAD;
        *count = 0;
        return CKR_OK;
    }
    return real->C_GetSlotList(present, list, count);
}

static CK_RV w_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    if (token_out()) return CKR_TOKEN_NOT_PRESENT;
    return real->C_GetTokenInfo(slot, info);
}

static CK_RV w_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *application, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session) {
    if (token_out()) return CKR_TOKEN_NOT_PRESENT;
    return real->C_OpenSession(slot, flags, application, notify, session);
}

static CK_RV w_Login(CK_SESSION_HANDLE session, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG length) {
    if (token_out()) return CKR_DEVICE_REMOVED;
    return real->C_Login(session, type, pin, length);
}

static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR template, CK_ULONG count) {
    if (token_out()) return CKR_DEVICE_REMOVED;
    return real->C_FindObjectsInit(session, template, count);
}

static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR template, CK_ULONG count) {
    if (token_out()) return CKR_DEVICE_REMOVED;
    return real->C_GetAttributeValue(session, object, template, count);
}

static CK_RV w_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key) {
    if (token_out()) return CKR_DEVICE_REMOVED;
    return real->C_SignInit(session, mechanism, key);
}

static CK_RV w_Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG length, CK_BYTE_PTR signature, CK_ULONG_PTR signature_length) {
    if (token_out()) return CKR_DEVICE_REMOVED;
    return real->C_Sign(session, data, length, signature, signature_length);
}

static void load(void) {
    const char *path = getenv("CARDDESK_TEST_TOKEN_MODULE");
    void *library = dlopen(path != NULL ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return;
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(library, "C_GetFunctionList");
    if (get == NULL || get(&real) != CKR_OK || real == NULL) return;
    wrapped = *real;
    wrapped.C_GetSlotList = w_GetSlotList;
    wrapped.C_GetTokenInfo = w_GetTokenInfo;
    wrapped.C_OpenSession = w_OpenSession;
    wrapped.C_Login = w_Login;
    wrapped.C_FindObjectsInit = w_FindObjectsInit;
    wrapped.C_GetAttributeValue = w_GetAttributeValue;
    wrapped.C_SignInit = w_SignInit;
    wrapped.C_Sign = w_Sign;
    load_result = CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
    if (list == NULL) return CKR_ARGUMENTS_BAD;
    pthread_once(&loaded, load);
    if (load_result != CKR_OK) return load_result;
    *list = &wrapped;
    return CKR_OK;
}
