/* Chat formats: detection from tokenizer_config.json (and chat_template.jinja), and the Llama 3
 * prompt text and ids against what transformers' apply_chat_template renders with the fixture's
 * template (tests/fixtures/tokenizer/chat_cases.jsonl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "model/chat.h"
#include "model/tokenizer.h"
#include "test_util.h"

/* Checks every row of chat_cases.jsonl: the rendered text, and its ids when encoded as the
 * header says (add_special = 0: the text carries <|begin_of_text|>). */
static void test_llama3_render(void **state)
{
    (void)state;
    tokenizer *tok;
    si_error err;
    if (tokenizer_load(&tok, fixture_path("tokenizer/tokenizer.json"), &err) != 0)
        fail_msg("%s", err.msg);
    char *data = read_file(fixture_path("tokenizer/chat_cases.jsonl"), NULL);
    assert_non_null(data);
    int rows = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n"), rows++) {
        cJSON *row = cJSON_Parse(line);
        const cJSON *system = cJSON_GetObjectItem(row, "system");
        const char *user = cJSON_GetObjectItem(row, "user")->valuestring;
        const char *expected = cJSON_GetObjectItem(row, "text")->valuestring;
        char *text = chat_render(CHAT_FORMAT_LLAMA3,
                                 cJSON_IsString(system) ? system->valuestring : NULL, user);
        assert_string_equal(text, expected);

        const cJSON *want = cJSON_GetObjectItem(row, "ids");
        int *ids, n;
        assert_int_equal(tokenizer_encode(tok, text, strlen(text), 0, &ids, &n, &err), 0);
        assert_int_equal(n, cJSON_GetArraySize(want));
        for (int i = 0; i < n; i++)
            assert_int_equal(ids[i], cJSON_GetArrayItem(want, i)->valueint);
        free(ids);
        free(text);
        cJSON_Delete(row);
    }
    assert_true(rows >= 5);
    free(data);
    tokenizer_free(tok);
}

static void test_raw_render(void **state)
{
    (void)state;
    const char *prompt = "  Once upon a time\n";
    char *text = chat_render(CHAT_FORMAT_RAW, "ignored system prompt", prompt);
    assert_string_equal(text, prompt);
    free(text);
}

static void test_detect_fixture(void **state)
{
    (void)state;
    chat_format fmt = CHAT_FORMAT_RAW;
    si_error err;
    assert_int_equal(chat_format_detect(&fmt, fixture_path("tokenizer"), &err), 0);
    assert_int_equal(fmt, CHAT_FORMAT_LLAMA3);
}

/* Writes NAME with CONTENT into a fresh folder and runs detection there. */
static int detect_with(const char *name, const char *content, chat_format *fmt, si_error *err,
                       char **dir_out)
{
    char *dir = make_temp_dir();
    assert_non_null(dir);
    if (name) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        assert_int_equal(write_file(path, content, strlen(content)), 0);
    }
    *fmt = CHAT_FORMAT_LLAMA3;
    int rc = chat_format_detect(fmt, dir, err);
    if (dir_out)
        *dir_out = dir;
    else {
        remove_dir(dir);
        free(dir);
    }
    return rc;
}

static void test_detect_raw(void **state)
{
    (void)state;
    chat_format fmt;
    si_error err;
    assert_int_equal(detect_with(NULL, NULL, &fmt, &err, NULL), 0); /* no config at all */
    assert_int_equal(fmt, CHAT_FORMAT_RAW);
    assert_int_equal(
        detect_with("tokenizer_config.json", "{\"bos_token\": \"<s>\"}", &fmt, &err, NULL), 0);
    assert_int_equal(fmt, CHAT_FORMAT_RAW);
    assert_int_equal(detect_with("tokenizer_config.json",
                                 "{\"chat_template\": \"{% for m in messages %}[INST] {{ "
                                 "m['content'] }} [/INST]{% endfor %}\"}",
                                 &fmt, &err, NULL),
                     0);
    assert_int_equal(fmt, CHAT_FORMAT_RAW);
}

static void test_detect_other_places(void **state)
{
    (void)state;
    chat_format fmt;
    si_error err;
    /* a list of named templates */
    assert_int_equal(detect_with("tokenizer_config.json",
                                 "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": "
                                 "\"x\"}, {\"name\": \"default\", \"template\": "
                                 "\"<|start_header_id|>{{ role }}\"}]}",
                                 &fmt, &err, NULL),
                     0);
    assert_int_equal(fmt, CHAT_FORMAT_LLAMA3);
    /* chat_template.jinja beside the config */
    assert_int_equal(
        detect_with("chat_template.jinja", "{{ '<|start_header_id|>' }}", &fmt, &err, NULL), 0);
    assert_int_equal(fmt, CHAT_FORMAT_LLAMA3);
}

static void test_detect_malformed(void **state)
{
    (void)state;
    chat_format fmt;
    si_error err = {{0}};
    char *dir;
    assert_int_equal(
        detect_with("tokenizer_config.json", "{\"chat_template\": \"abc", &fmt, &err, &dir), -1);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (!strstr(err.msg, path) || !strstr(err.msg, "not valid JSON") || !strstr(err.msg, "HINT"))
        fail_msg("the error should name %s and give a hint: %s", path, err.msg);
    remove_dir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_render),       cmocka_unit_test(test_raw_render),
        cmocka_unit_test(test_detect_fixture),      cmocka_unit_test(test_detect_raw),
        cmocka_unit_test(test_detect_other_places), cmocka_unit_test(test_detect_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
