/* The tokenizer against the `tokenizers` library: the ids and texts that
 * tests/fixtures/make_tokenizer.py recorded from it for hard strings, round trips, both forms of
 * merges, a GPT-2 style pre-tokenizer, regex anchors, and the errors for bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "model/tokenizer.h"
#include "test_util.h"

typedef struct {
    char *text;
    size_t len;
    int add_special, skip_special;
    int *ids;
    int n;
} tcase;

typedef struct {
    tcase *cases;
    int n;
} case_list;

/* The row's text: "text_hex" when present (a text holding NUL), else "text". */
static char *case_text(const cJSON *row, size_t *len)
{
    const cJSON *hex = cJSON_GetObjectItem(row, "text_hex");
    if (cJSON_IsString(hex)) {
        size_t n = strlen(hex->valuestring) / 2;
        char *text = malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            unsigned byte;
            sscanf(hex->valuestring + 2 * i, "%2x", &byte);
            text[i] = (char)byte;
        }
        text[n] = 0;
        *len = n;
        return text;
    }
    const cJSON *text = cJSON_GetObjectItem(row, "text");
    assert_true(cJSON_IsString(text));
    *len = strlen(text->valuestring);
    return strdup(text->valuestring);
}

static int optional_int(const cJSON *row, const char *key)
{
    const cJSON *item = cJSON_GetObjectItem(row, key);
    return cJSON_IsNumber(item) ? item->valueint : 0;
}

/* A JSONL file of {"text", "ids"} rows, with "add_special" or "skip_special" where they apply. */
static case_list load_cases(const char *name)
{
    char *data = read_file(fixture_path(name), NULL);
    assert_non_null(data);
    case_list list = {calloc(1, sizeof(tcase)), 0};
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *row = cJSON_Parse(line);
        assert_non_null(row);
        list.cases = realloc(list.cases, (size_t)(list.n + 1) * sizeof(tcase));
        tcase *c = &list.cases[list.n++];
        c->text = case_text(row, &c->len);
        c->add_special = optional_int(row, "add_special");
        c->skip_special = optional_int(row, "skip_special");
        const cJSON *ids = cJSON_GetObjectItem(row, "ids");
        c->n = cJSON_GetArraySize(ids);
        c->ids = malloc((size_t)(c->n + 1) * sizeof(int));
        for (int i = 0; i < c->n; i++)
            c->ids[i] = cJSON_GetArrayItem(ids, i)->valueint;
        cJSON_Delete(row);
    }
    free(data);
    return list;
}

static void free_cases(case_list list)
{
    for (int i = 0; i < list.n; i++) {
        free(list.cases[i].text);
        free(list.cases[i].ids);
    }
    free(list.cases);
}

static void print_ids(const char *what, const int *ids, int n)
{
    fprintf(stderr, "  %s (%d):", what, n);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Encodes every case and counts the ones whose ids differ, printing the first few. */
static int count_mismatches(const tokenizer *tok, case_list list)
{
    int bad = 0;
    for (int i = 0; i < list.n; i++) {
        const tcase *c = &list.cases[i];
        int *ids, n;
        si_error err;
        assert_int_equal(tokenizer_encode(tok, c->text, c->len, c->add_special, &ids, &n, &err), 0);
        if (n != c->n || memcmp(ids, c->ids, (size_t)n * sizeof(int)) != 0) {
            if (bad++ < 5) {
                fprintf(stderr, "encode mismatch, case %d (add_special %d): \"%s\"\n", i,
                        c->add_special, c->text);
                print_ids("expected", c->ids, c->n);
                print_ids("got", ids, n);
            }
        }
        free(ids);
    }
    return bad;
}

static tokenizer *load_fixture(const char *name)
{
    tokenizer *tok;
    si_error err;
    if (tokenizer_load(&tok, fixture_path(name), &err) != 0)
        fail_msg("%s", err.msg);
    return tok;
}

static void test_encode_cases(void **state)
{
    (void)state;
    tokenizer *tok = load_fixture("tokenizer/tokenizer.json");
    case_list list = load_cases("tokenizer/encode_cases.jsonl");
    assert_true(list.n >= 150);
    assert_int_equal(count_mismatches(tok, list), 0);
    free_cases(list);
    tokenizer_free(tok);
}

/* decode(encode(s)) == s. Not for texts with <tool>: that token's lstrip and rstrip swallow the
 * white space around it, as they do in the library. */
static void test_round_trip(void **state)
{
    (void)state;
    tokenizer *tok = load_fixture("tokenizer/tokenizer.json");
    case_list list = load_cases("tokenizer/encode_cases.jsonl");
    int checked = 0;
    for (int i = 0; i < list.n; i++) {
        const tcase *c = &list.cases[i];
        if (c->add_special || strstr(c->text, "<tool>"))
            continue;
        int *ids, n;
        si_error err;
        assert_int_equal(tokenizer_encode(tok, c->text, c->len, 0, &ids, &n, &err), 0);
        size_t len;
        char *text = tokenizer_decode_len(tok, ids, n, 0, &len);
        if (len != c->len || memcmp(text, c->text, len) != 0)
            fail_msg("round trip of case %d: \"%s\" came back as \"%s\"", i, c->text, text);
        free(text);
        free(ids);
        checked++;
    }
    assert_true(checked >= 150);
    free_cases(list);
    tokenizer_free(tok);
}

static void test_decode_cases(void **state)
{
    (void)state;
    tokenizer *tok = load_fixture("tokenizer/tokenizer.json");
    case_list list = load_cases("tokenizer/decode_cases.jsonl");
    assert_true(list.n >= 100);
    for (int i = 0; i < list.n; i++) {
        const tcase *c = &list.cases[i];
        size_t len;
        char *text = tokenizer_decode_len(tok, c->ids, c->n, c->skip_special, &len);
        if (len != c->len || memcmp(text, c->text, len) != 0) {
            print_ids("ids", c->ids, c->n);
            fail_msg("decode case %d (skip_special %d): expected \"%s\", got \"%s\"", i,
                     c->skip_special, c->text, text);
        }
        free(text);
    }
    free_cases(list);
    tokenizer_free(tok);
}

/* Loads the fixture's tokenizer.json after EDIT has changed it, through a temporary file. */
static tokenizer *load_edited(void (*edit)(cJSON *root))
{
    char *json = read_file(fixture_path("tokenizer/tokenizer.json"), NULL);
    cJSON *root = cJSON_Parse(json);
    edit(root);
    char *edited = cJSON_PrintUnformatted(root);
    char *dir = make_temp_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(write_file(path, edited, strlen(edited)), 0);
    tokenizer *tok;
    si_error err;
    if (tokenizer_load(&tok, path, &err) != 0)
        fail_msg("%s", err.msg);
    remove_dir(dir);
    free(dir);
    free(edited);
    cJSON_Delete(root);
    free(json);
    return tok;
}

/* The regex of make_tokenizer.py's ANCHORED_PATTERN: ^ and $ must match at line breaks. */
static void anchor_the_regex(cJSON *root)
{
    cJSON *split = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "pre_tokenizer"), "pretokenizers"), 0);
    cJSON *pattern = cJSON_GetObjectItem(split, "pattern");
    const char *llama3 = cJSON_GetObjectItem(pattern, "Regex")->valuestring;
    char anchored[1024];
    snprintf(anchored, sizeof anchored, "^\\p{L}{1,2}|\\p{L}$|\\s$|%s", llama3);
    cJSON_ReplaceItemInObject(pattern, "Regex", cJSON_CreateString(anchored));
}

/* The fixture has merges as ["a", "b"] pairs; older files spell them "a b". */
static void merges_as_strings(cJSON *root)
{
    cJSON *model = cJSON_GetObjectItem(root, "model");
    cJSON *strings = cJSON_CreateArray();
    for (cJSON *m = cJSON_GetObjectItem(model, "merges")->child; m; m = m->next) {
        assert_true(cJSON_IsArray(m));
        char buf[512];
        snprintf(buf, sizeof buf, "%s %s", cJSON_GetArrayItem(m, 0)->valuestring,
                 cJSON_GetArrayItem(m, 1)->valuestring);
        cJSON_AddItemToArray(strings, cJSON_CreateString(buf));
    }
    assert_true(cJSON_GetArraySize(strings) > 500);
    cJSON_ReplaceItemInObject(model, "merges", strings);
}

static void test_merges_as_strings(void **state)
{
    (void)state;
    tokenizer *tok = load_edited(merges_as_strings);
    case_list list = load_cases("tokenizer/encode_cases.jsonl");
    assert_int_equal(count_mismatches(tok, list), 0);
    free_cases(list);
    tokenizer_free(tok);
}

static void test_anchors(void **state)
{
    (void)state;
    tokenizer *tok = load_edited(anchor_the_regex);
    case_list list = load_cases("tokenizer/anchored_cases.jsonl");
    assert_true(list.n >= 40);
    assert_int_equal(count_mismatches(tok, list), 0);
    free_cases(list);
    tokenizer_free(tok);
}

/* A lone ByteLevel pre-tokenizer with GPT-2's regex and add_prefix_space, "a b" merges. */
static void test_byte_level_regex(void **state)
{
    (void)state;
    tokenizer *tok = load_fixture("tokenizer/tokenizer_bytelevel.json");
    case_list list = load_cases("tokenizer/bytelevel_cases.jsonl");
    assert_true(list.n >= 100);
    assert_int_equal(count_mismatches(tok, list), 0);
    free_cases(list);
    tokenizer_free(tok);
}

static void test_vocab(void **state)
{
    (void)state;
    tokenizer *tok = load_fixture("tokenizer/tokenizer.json");
    assert_int_equal(tokenizer_vocab_size(tok), 1000);
    assert_int_equal(tokenizer_token_id(tok, "<|begin_of_text|>"), 991);
    assert_int_equal(tokenizer_token_id(tok, "<|eot_id|>"), 995);
    assert_int_equal(tokenizer_token_id(tok, "<|reserved_special_token_3|>"), 999);
    assert_int_equal(tokenizer_token_id(tok, "lorem ipsum"), 989);
    assert_int_equal(tokenizer_token_id(tok, "a"), 64); /* byte tokens come in byte order */
    assert_int_equal(tokenizer_token_id(tok, "no such token"), -1);
    tokenizer_free(tok);
}

/* Ill-formed UTF-8 reads as U+FFFD, as Python's errors="replace" would make it. */
static void test_ill_formed_input(void **state)
{
    (void)state;
    tokenizer *tok = load_fixture("tokenizer/tokenizer.json");
    const char bad[] = "ab\xff\xe2\x82 cd\xc3";
    const char fixed[] = "ab\xef\xbf\xbd\xef\xbf\xbd cd\xef\xbf\xbd";
    int *a, *b, na, nb;
    si_error err;
    assert_int_equal(tokenizer_encode(tok, bad, sizeof bad - 1, 0, &a, &na, &err), 0);
    assert_int_equal(tokenizer_encode(tok, fixed, sizeof fixed - 1, 0, &b, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof(int));
    free(a);
    free(b);
    tokenizer_free(tok);
}

/* Megabyte runs of one character class: the regex and the merges must cope. */
static void test_long_runs(void **state)
{
    (void)state;
    tokenizer *tok = load_fixture("tokenizer/tokenizer.json");
    const char fill[] = {' ', '\n', 'a', '7', '!'};
    size_t len = 1 << 20;
    char *text = malloc(len + 2);
    for (size_t k = 0; k < sizeof fill; k++) {
        memset(text, fill[k], len);
        text[len] = 'x'; /* something after the run, for the lookahead */
        int *ids, n;
        si_error err;
        if (tokenizer_encode(tok, text, len + 1, 0, &ids, &n, &err) != 0)
            fail_msg("%s", err.msg);
        size_t out_len;
        char *back = tokenizer_decode_len(tok, ids, n, 0, &out_len);
        assert_int_equal(out_len, len + 1);
        assert_memory_equal(back, text, len + 1);
        free(back);
        free(ids);
    }
    free(text);
    tokenizer_free(tok);
}

static void test_empty(void **state)
{
    (void)state;
    tokenizer *tok = load_fixture("tokenizer/tokenizer.json");
    int *ids, n;
    si_error err;
    assert_int_equal(tokenizer_encode(tok, "", 0, 0, &ids, &n, &err), 0);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(tokenizer_encode(tok, "", 0, 1, &ids, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 991);
    char *text = tokenizer_decode(tok, ids, n, 1);
    assert_string_equal(text, "");
    free(text);
    free(ids);
    tokenizer_free(tok);
}

static void assert_load_fails(const char *path, const char *what)
{
    tokenizer *tok = NULL;
    si_error err = {{0}};
    assert_int_equal(tokenizer_load(&tok, path, &err), -1);
    assert_null(tok);
    if (!strstr(err.msg, path) || !strstr(err.msg, what) || !strstr(err.msg, "HINT"))
        fail_msg("the error should name %s, say \"%s\" and give a hint: %s", path, what, err.msg);
}

static void test_missing_file(void **state)
{
    (void)state;
    char *dir = make_temp_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_load_fails(path, "No such file");
    remove_dir(dir);
    free(dir);
}

/* Writes the fixture's tokenizer.json cut to LEN bytes, or with FROM replaced by TO, into a
 * temporary folder and checks that loading it fails with WHAT in the message. */
static void check_bad_copy(size_t len, const char *from, const char *to, const char *what)
{
    size_t size;
    char *json = read_file(fixture_path("tokenizer/tokenizer.json"), &size);
    char *dir = make_temp_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (from) {
        char *at = strstr(json, from);
        assert_non_null(at);
        size_t head = (size_t)(at - json), tail = size - head - strlen(from);
        char *edited = malloc(size + strlen(to) + 1);
        memcpy(edited, json, head);
        memcpy(edited + head, to, strlen(to));
        memcpy(edited + head + strlen(to), at + strlen(from), tail);
        assert_int_equal(write_file(path, edited, head + strlen(to) + tail), 0);
        free(edited);
    } else {
        assert_int_equal(write_file(path, json, len), 0);
    }
    assert_load_fails(path, what);
    remove_dir(dir);
    free(dir);
    free(json);
}

static void test_malformed_json(void **state)
{
    (void)state;
    check_bad_copy(1000, NULL, NULL, "not valid JSON");
    check_bad_copy(0, NULL, NULL, "not valid JSON");
}

static void test_unsupported_parts(void **state)
{
    (void)state;
    check_bad_copy(0, "\"normalizer\": null", "\"normalizer\": {\"type\": \"NFC\"}", "NFC");
    check_bad_copy(0, "\"type\": \"BPE\"", "\"type\": \"Unigram\"", "not BPE");
    check_bad_copy(0, "\"decoder\": {\n    \"type\": \"ByteLevel\"",
                   "\"decoder\": {\n    \"type\": \"Metaspace\"", "decoder Metaspace");
    check_bad_copy(0, "\"Ġ\",\n        \"s\"", "\"Ġ\",\n        \"no-such-token\"", "merges[0]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_cases),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_cases),
        cmocka_unit_test(test_merges_as_strings),
        cmocka_unit_test(test_byte_level_regex),
        cmocka_unit_test(test_vocab),
        cmocka_unit_test(test_ill_formed_input),
        cmocka_unit_test(test_long_runs),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_anchors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_unsupported_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
