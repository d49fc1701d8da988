/* The JSON files of a model folder (config.json, tokenizer.json, the shard index ...): read
 * whole and parsed in one call, with errors that name the file and say what to do. */
#ifndef STARINFER_MODEL_JSON_FILE_H
#define STARINFER_MODEL_JSON_FILE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "kernels/check.h"

/* Reads the whole of PATH into a malloc'd, NUL-terminated buffer of *LEN bytes (LEN may be
 * NULL). Returns NULL with ERR set when it cannot (a directory at PATH included). With MISSING not
 * NULL, a file that does not exist is no error: NULL comes back with *MISSING = 1 and ERR untouched
 * (the caller decides). */
char *json_file_read_text(const char *path, size_t *len, int *missing, si_error *err);

/* Parses LEN bytes of TEXT as one JSON value followed by nothing but whitespace. Returns NULL
 * on failure, with *ERROR_AT the byte where parsing stopped. */
cJSON *json_file_parse(const char *text, size_t len, size_t *error_at);

/* Reads and parses PATH, which must hold one JSON object. Returns the tree (free it with
 * cJSON_Delete), or NULL with ERR set; MISSING as for json_file_read_text. */
cJSON *json_file_load(const char *path, int *missing, si_error *err);

#endif
