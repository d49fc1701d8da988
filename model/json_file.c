#include "model/json_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HINT_REDOWNLOAD "\n  HINT: the file is damaged or incomplete; download it again"

char *json_file_read_text(const char *path, size_t *len, int *missing, si_error *err)
{
    FILE *f = fopen(path, "rb");
    int e = errno;
    if (missing)
        *missing = !f && e == ENOENT;
    if (!f) {
        if (e != ENOENT)
            si_error_set(err, "cannot open %s: %s\n  HINT: check its permissions", path,
                         strerror(e));
        else if (!missing)
            si_error_set(err,
                         "cannot open %s: %s\n  HINT: the model folder needs this file of its "
                         "Hugging Face checkpoint",
                         path, strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        si_error_set(err,
                     "%s is a directory\n  HINT: the model folder needs this file of its Hugging "
                     "Face checkpoint in its place",
                     path);
        return NULL;
    }
    char *text = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        text = mallocCheck((size_t)size + 1, path);
        if (fread(text, 1, (size_t)size, f) != (size_t)size) {
            free(text);
            text = NULL;
        }
    }
    fclose(f);
    if (!text) {
        si_error_set(err, "cannot read %s\n  HINT: check the file and its permissions", path);
        return NULL;
    }
    text[size] = 0;
    if (len)
        *len = (size_t)size;
    return text;
}

/* JSON's whitespace (strchr would also match the terminating NUL). */
static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

cJSON *json_file_parse(const char *text, size_t len, size_t *error_at)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    size_t at = end ? (size_t)(end - text) : 0;
    while (root && at < len && is_json_space(text[at]))
        at++;
    if (root && at == len)
        return root;
    cJSON_Delete(root);
    *error_at = at;
    return NULL;
}

cJSON *json_file_load(const char *path, int *missing, si_error *err)
{
    size_t len, at = 0;
    char *text = json_file_read_text(path, &len, missing, err);
    if (!text)
        return NULL;
    cJSON *root = json_file_parse(text, len, &at);
    free(text);
    if (!root)
        si_error_set(err, "%s is not valid JSON (error near byte %zu)" HINT_REDOWNLOAD, path, at);
    else if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        root = NULL;
        si_error_set(err, "%s: expected a JSON object" HINT_REDOWNLOAD, path);
    }
    return root;
}
