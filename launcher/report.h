/* A request's result as JSON: the answer, the sizes, timings per phase and per rank, memory per
 * rank. */
#ifndef STARINFER_LAUNCHER_REPORT_H
#define STARINFER_LAUNCHER_REPORT_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "runtime/request.h"

cJSON *report_json(const request_result *res);
/* The same with the model and LOAD_S (the weights' loading, seconds) in the timings: run's. */
void report_print_json(FILE *f, const request_result *res, const char *model_dir, double load_s);

#endif
