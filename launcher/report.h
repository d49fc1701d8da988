/* A request's result as JSON: the answer, the sizes, timings per phase and per rank, memory per
 * rank. */
#ifndef STARINFER_LAUNCHER_REPORT_H
#define STARINFER_LAUNCHER_REPORT_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "runtime/request.h"

cJSON *report_json(const request_result *res);
void report_print_json(FILE *f, const request_result *res, const char *model_dir);

#endif
