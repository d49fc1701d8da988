#ifndef STARINFER_RUNTIME_VERSION_H
#define STARINFER_RUNTIME_VERSION_H
const char *starinfer_version(void);
/* The short hash of the commit this binary was built from ("unknown" outside a git checkout). */
const char *starinfer_git_commit(void);
#endif
