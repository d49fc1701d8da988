#include "runtime/version.h"

#include "git_commit.h" /* generated at build time: cmake/git_commit.cmake */

const char *starinfer_version(void)
{
    return "0.1.0";
}

const char *starinfer_git_commit(void)
{
    return STARINFER_GIT_COMMIT;
}
