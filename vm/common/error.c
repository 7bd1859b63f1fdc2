#include "error.h"

#include <stdarg.h>
#include <string.h>

static const char *const messages[CPVM_E_COUNT] = {
#define ERR(name, msg) [CPVM_E_##name] = msg,
#include "errors.def"
#undef ERR
};

const char *cpvm_status_message(cpvm_status code)
{
    if ((unsigned)code >= CPVM_E_COUNT) return "unknown error";
    return messages[code];
}

cpvm_status cpvm_fail(struct cpvm_error *err, cpvm_status code, uint64_t offset, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->offset = offset;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->detail, sizeof err->detail, fmt, ap);
        va_end(ap);
    }
    return code;
}
