/* tokenizer_agree TOKENIZER_JSON CASES_JSONL: encodes every case's text and counts how many
 * give exactly the recorded ids. Each line of CASES_JSONL is {"text": ..., "ids": [...]}, with
 * "text_hex" (the text's bytes in hex) for texts holding NUL and an optional "add_special"
 * (default 0). Prints "agree K/N", the first disagreements, and the load time and encode
 * speed; exits 0 unless a file cannot be read. Used with tests/fixtures/tiktoken_check.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "model/tokenizer.h"

#define SHOW_DISAGREEMENTS 5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The case's text as malloc'd bytes, or NULL when the row has none. */
static char *case_text(const cJSON *row, size_t *len)
{
    const cJSON *hex = cJSON_GetObjectItemCaseSensitive(row, "text_hex");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(row, "text");
    if (cJSON_IsString(hex)) {
        *len = strlen(hex->valuestring) / 2;
        char *out = malloc(*len + 1);
        for (size_t i = 0; i < *len; i++) {
            unsigned byte = 0;
            sscanf(hex->valuestring + 2 * i, "%2x", &byte);
            out[i] = (char)byte;
        }
        return out;
    }
    if (!cJSON_IsString(text))
        return NULL;
    *len = strlen(text->valuestring);
    return strdup(text->valuestring);
}

static void print_ids(const char *what, const cJSON *expected, const int *ids, int n)
{
    printf("  %s:", what);
    if (expected)
        for (const cJSON *e = expected->child; e; e = e->next)
            printf(" %d", e->valueint);
    for (int i = 0; ids && i < n; i++)
        printf(" %d", ids[i]);
    printf("\n");
}

/* The text with control characters escaped, cut at 200 bytes. */
static void print_text(const char *text, size_t len)
{
    printf("  text (%zu bytes): \"", len);
    for (size_t i = 0; i < len && i < 200; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n')
            printf("\\n");
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    printf(len > 200 ? "\"...\n" : "\"\n");
}

static int same_ids(const cJSON *expected, const int *ids, int n)
{
    if (cJSON_GetArraySize(expected) != n)
        return 0;
    int i = 0;
    for (const cJSON *e = expected->child; e; e = e->next, i++)
        if (e->valueint != ids[i])
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON CASES_JSONL\n", argv[0]);
        return 2;
    }
    si_error err;
    tokenizer *tok;
    double t0 = now();
    if (tokenizer_load(&tok, argv[1], &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double load_s = now() - t0;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, bytes = 0;
    int n_cases = 0, agree = 0, shown = 0;
    double encode_s = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *row = cJSON_Parse(line);
        size_t len;
        char *text = row ? case_text(row, &len) : NULL;
        const cJSON *expected = cJSON_GetObjectItemCaseSensitive(row, "ids");
        if (!text || !cJSON_IsArray(expected)) {
            fprintf(stderr, "%s: line %d is not a {\"text\", \"ids\"} object\n", argv[2],
                    n_cases + 1);
            return 1;
        }
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(row, "add_special");
        int *ids = NULL, n = 0;
        double t = now();
        int rc =
            tokenizer_encode(tok, text, len, cJSON_IsNumber(add) && add->valueint, &ids, &n, &err);
        encode_s += now() - t;
        bytes += len;
        n_cases++;
        if (rc == 0 && same_ids(expected, ids, n)) {
            agree++;
        } else if (shown++ < SHOW_DISAGREEMENTS) {
            printf("disagreement on case %d%s%s\n", n_cases, rc ? ": " : "", rc ? err.msg : "");
            print_text(text, len);
            print_ids("expected", expected, NULL, 0);
            print_ids("got     ", NULL, ids, n);
        }
        free(ids);
        free(text);
        cJSON_Delete(row);
    }
    free(line);
    fclose(f);
    printf("agree %d/%d\n", agree, n_cases);
    printf("loaded %d tokens in %.3f s; encoded %zu bytes in %.3f s (%.2f MB/s)\n",
           tokenizer_vocab_size(tok), load_s, bytes, encode_s,
           encode_s > 0 ? (double)bytes / encode_s / 1e6 : 0.0);
    tokenizer_free(tok);
    return 0;
}
