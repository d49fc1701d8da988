#include "runtime/version.h"

const char *starinfer_version(void)
{
    return "0.1.0";
}
