/* Chat formats: which one a checkpoint uses, read from its chat template, and the prompt text
 * for one user turn. The Llama 3 text is what Meta's Jinja template renders: BOS, an optional
 * system turn, the user turn, then the assistant header, each message stripped as the
 * template's `| trim` does. */
#include "model/chat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/json_file.h"

#define LLAMA3_MARK "<|start_header_id|>"

/* The template text: a string, or the "default" entry of a list of named templates. */
static const char *template_of(const cJSON *config)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(config, "chat_template");
    if (cJSON_IsString(t))
        return t->valuestring;
    for (const cJSON *e = cJSON_IsArray(t) ? t->child : NULL; e; e = e->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(e, "template");
        if (cJSON_IsString(name) && strcmp(name->valuestring, "default") == 0 &&
            cJSON_IsString(text))
            return text->valuestring;
    }
    return NULL;
}

/* Newer checkpoints keep the template beside the config, in chat_template.jinja. */
static int detect_from_jinja(chat_format *fmt, const char *dir, si_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    int missing;
    char *text = json_file_read_text(path, NULL, &missing, err);
    if (!text)
        return missing ? 0 : -1;
    *fmt = strstr(text, LLAMA3_MARK) ? CHAT_FORMAT_LLAMA3 : CHAT_FORMAT_RAW;
    free(text);
    return 0;
}

int chat_format_detect(chat_format *fmt, const char *dir, si_error *err)
{
    *fmt = CHAT_FORMAT_RAW;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    int missing;
    cJSON *config = json_file_load(path, &missing, err);
    if (!config)
        return missing ? detect_from_jinja(fmt, dir, err) : -1;
    const char *tmpl = template_of(config);
    int rc = 0;
    if (tmpl)
        *fmt = strstr(tmpl, LLAMA3_MARK) ? CHAT_FORMAT_LLAMA3 : CHAT_FORMAT_RAW;
    else
        rc = detect_from_jinja(fmt, dir, err);
    cJSON_Delete(config);
    return rc;
}

/* What Python's str.isspace() accepts, which Jinja's trim strips. */
static int is_py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Decodes the character at S (well-formed or not: a stray byte counts as one character that is
 * not a space) and returns its length. */
static size_t char_at(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
    if (len > n)
        len = 1;
    *cp = len == 1 ? s[0] : s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return len;
}

/* The bounds of S without leading and trailing white space. */
static void trim(const char *s, size_t *start, size_t *end)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, last = 0;
    uint32_t cp;
    while (i < n) {
        size_t len = char_at(u + i, n - i, &cp);
        if (!is_py_space(cp))
            break;
        i += len;
    }
    *start = i;
    for (last = i; i < n;) {
        size_t len = char_at(u + i, n - i, &cp);
        i += len;
        if (!is_py_space(cp))
            last = i;
    }
    *end = last;
}

/* Appends one Llama 3 message: header, trimmed content, end of turn. */
static size_t put_turn(char *out, const char *role, const char *content)
{
    size_t start, end;
    trim(content, &start, &end);
    return (size_t)sprintf(out, LLAMA3_MARK "%s<|end_header_id|>\n\n%.*s<|eot_id|>", role,
                           (int)(end - start), content + start);
}

char *chat_render(chat_format fmt, const char *system, const char *user)
{
    if (fmt == CHAT_FORMAT_RAW) {
        char *copy = mallocCheck(strlen(user) + 1, "prompt");
        return strcpy(copy, user);
    }
    static const char assistant[] = LLAMA3_MARK "assistant<|end_header_id|>\n\n";
    size_t room = strlen(user) + (system ? strlen(system) : 0) + 256;
    char *out = mallocCheck(room, "chat prompt");
    size_t o = (size_t)sprintf(out, "<|begin_of_text|>");
    if (system)
        o += put_turn(out + o, "system", system);
    o += put_turn(out + o, "user", user);
    memcpy(out + o, assistant, sizeof assistant);
    return out;
}
