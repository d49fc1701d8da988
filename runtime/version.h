#ifndef STARINFER_RUNTIME_VERSION_H
#define STARINFER_RUNTIME_VERSION_H
const char *starinfer_version(void);
#endif
