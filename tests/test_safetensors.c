/* safetensors files: well-formed single files and sharded sets open, and every malformed header
 * is refused with a message naming the file and the tensor at fault. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"
#include "test_util.h"

/* N data bytes, byte i being i (mod 256). */
static unsigned char *counting_bytes(size_t n)
{
    unsigned char *data = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)i;
    return data;
}

/* Writes NAME as: the header's length (u64, little-endian), HEADER, then DATA_LEN bytes. */
static void write_raw(temp_dir *f, const char *name, const char *header, size_t data_len)
{
    unsigned char *data = counting_bytes(data_len);
    write_safetensors_raw(file_in(f, name), header, data, data_len);
    free(data);
}

typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[4];
    size_t nbytes;
} tensor_spec;

/* Writes a well-formed file the way the reference writer does: contiguous data, and the header
 * padded with spaces to a multiple of 8 bytes. Data byte i of the file's data section is i. */
static void write_st(temp_dir *f, const char *name, const tensor_spec *ts, int n)
{
    cJSON *header = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(header, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        safetensors_add_tensor(header, ts[i].name, ts[i].dtype, ts[i].ndim, ts[i].shape, offset,
                               offset + ts[i].nbytes);
        offset += ts[i].nbytes;
    }
    unsigned char *data = counting_bytes(offset);
    write_safetensors(file_in(f, name), header, data, offset);
    free(data);
    cJSON_Delete(header);
}

static const tensor_spec three_dtypes[] = {
    {"a.bf16", "BF16", 2, {2, 3}, 12},
    {"b.f16", "F16", 1, {4}, 8},
    {"c.f32", "F32", 2, {2, 2}, 16},
};

/* Opening the folder fails; the message names FILE (in the temporary folder) and WHAT. */
static void assert_open_fails(temp_dir *f, const char *file, const char *what)
{
    st_set set;
    si_error err = {0};
    assert_int_equal(st_open_dir(&set, f->dir, &err), -1);
    assert_int_equal(set.n_files, 0); /* nothing left open */
    assert_has(err.msg, file_in(f, file));
    assert_has(err.msg, what);
}

/* One tensor in model.safetensors, described by the header text ENTRY. */
static void write_one(temp_dir *f, const char *entry, size_t data_len)
{
    char header[512];
    snprintf(header, sizeof header, "{\"w\": %s}", entry);
    write_raw(f, "model.safetensors", header, data_len);
}

static void single_file_opens(void **state)
{
    temp_dir *f = *state;
    write_st(f, "model.safetensors", three_dtypes, 3);
    st_set set;
    si_error err = {0};
    assert_int_equal(st_open_dir(&set, f->dir, &err), 0);
    assert_int_equal(set.n_files, 1);
    assert_int_equal(set.n_tensors, 3);
    const st_tensor *a = st_find(&set, "a.bf16"), *b = st_find(&set, "b.f16");
    const st_tensor *c = st_find(&set, "c.f32");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_null(st_find(&set, "__metadata__"));
    assert_null(st_find(&set, "d"));
    assert_int_equal(a->dtype, ST_BF16);
    assert_int_equal(b->dtype, ST_F16);
    assert_int_equal(c->dtype, ST_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(c->nbytes, 16);
    assert_string_equal(b->file, file_in(f, "model.safetensors"));
    /* Data byte i is i: each tensor starts where the previous one ended. */
    assert_int_equal(((const unsigned char *)a->data)[0], 0);
    assert_int_equal(((const unsigned char *)b->data)[0], 12);
    assert_int_equal(((const unsigned char *)c->data)[15], 35);
    assert_string_equal(st_dtype_name(ST_BF16), "BF16");
    assert_int_equal(st_dtype_size(ST_F32), 4);
    st_close(&set);
    assert_int_equal(set.n_tensors, 0);
}

static void empty_and_scalar_tensors_open(void **state)
{
    temp_dir *f = *state;
    const tensor_spec ts[] = {{"empty", "F32", 2, {0, 4}, 0}, {"scalar", "F32", 0, {0}, 4}};
    write_st(f, "model.safetensors", ts, 2);
    st_set set;
    si_error err = {0};
    assert_int_equal(st_open_dir(&set, f->dir, &err), 0);
    assert_int_equal(st_find(&set, "empty")->nbytes, 0);
    assert_int_equal(st_find(&set, "scalar")->nbytes, 4);
    st_close(&set);
}

static const char index_json[] = "{\"metadata\": {\"total_size\": 36}, \"weight_map\": {"
                                 "\"a.bf16\": \"model-00001-of-00002.safetensors\","
                                 "\"b.f16\": \"model-00001-of-00002.safetensors\","
                                 "\"c.f32\": \"model-00002-of-00002.safetensors\"}}";

static void write_sharded(temp_dir *f, const char *index)
{
    write_st(f, "model-00001-of-00002.safetensors", three_dtypes, 2);
    write_st(f, "model-00002-of-00002.safetensors", three_dtypes + 2, 1);
    write_text(f, "model.safetensors.index.json", index);
}

static void sharded_set_opens(void **state)
{
    temp_dir *f = *state;
    write_sharded(f, index_json);
    st_set set;
    si_error err = {0};
    assert_int_equal(st_open_dir(&set, f->dir, &err), 0);
    assert_int_equal(set.n_files, 2);
    assert_int_equal(set.n_tensors, 3);
    assert_string_equal(st_find(&set, "c.f32")->file,
                        file_in(f, "model-00002-of-00002.safetensors"));
    assert_string_equal(st_find(&set, "a.bf16")->file,
                        file_in(f, "model-00001-of-00002.safetensors"));
    st_close(&set);
}

static void no_weights_in_folder(void **state)
{
    temp_dir *f = *state;
    st_set set;
    si_error err = {0};
    assert_int_equal(st_open_dir(&set, f->dir, &err), -1);
    assert_has(err.msg, f->dir);
    assert_has(err.msg, "model.safetensors ");
    assert_has(err.msg, "model.safetensors.index.json");
}

static void file_shorter_than_header_length(void **state)
{
    temp_dir *f = *state;
    assert_int_equal(write_file(file_in(f, "model.safetensors"), "\x10\0\0", 3), 0);
    assert_open_fails(f, "model.safetensors", "too short");
}

static void truncated_file(void **state)
{
    temp_dir *f = *state;
    write_st(f, "model.safetensors", three_dtypes, 3);
    size_t len;
    char *data = read_file(file_in(f, "model.safetensors"), &len);
    assert_int_equal(write_file(f->path, data, len - 5), 0); /* the end of c.f32 is cut off */
    free(data);
    assert_open_fails(f, "model.safetensors", "\"c.f32\"");
    si_error err;
    st_set set;
    st_open_dir(&set, f->dir, &err);
    assert_has(err.msg, "past the end");
}

static void header_length_past_end(void **state)
{
    temp_dir *f = *state;
    unsigned char buf[64] = {0xe8, 0x03}; /* says 1000 header bytes; the file has 64 */
    assert_int_equal(write_file(file_in(f, "model.safetensors"), buf, sizeof buf), 0);
    assert_open_fails(f, "model.safetensors", "header length (1000 bytes)");
}

static void huge_header_length(void **state)
{
    temp_dir *f = *state;
    unsigned char buf[16] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    assert_int_equal(write_file(file_in(f, "model.safetensors"), buf, sizeof buf), 0);
    assert_open_fails(f, "model.safetensors", "header length");
}

static void offsets_past_end(void **state)
{
    temp_dir *f = *state;
    write_one(f, "{\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [0, 64]}", 8);
    assert_open_fails(f, "model.safetensors", "\"w\": data_offsets [0, 64] run past the end");
}

static void offsets_reversed(void **state)
{
    temp_dir *f = *state;
    write_one(f, "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}", 8);
    assert_open_fails(f, "model.safetensors", "\"w\"");
}

static void offsets_overlap(void **state)
{
    temp_dir *f = *state;
    write_raw(f, "model.safetensors",
              "{\"x\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
              " \"y\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
              12);
    assert_open_fails(f, "model.safetensors", "\"x\" and \"y\" overlap");
}

static void shape_does_not_match_byte_range(void **state)
{
    temp_dir *f = *state;
    write_one(f, "{\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 8]}", 8);
    assert_open_fails(f, "model.safetensors", "\"w\": shape [2, 2] of F32 is 16 bytes");
}

static void shape_overflows(void **state)
{
    temp_dir *f = *state;
    write_one(f,
              "{\"dtype\": \"BF16\", \"shape\": [4611686018427387904, 8], "
              "\"data_offsets\": [0, 0]}",
              8);
    assert_open_fails(f, "model.safetensors", "\"w\": shape [4611686018427387904, 8]");
}

static void shape_entry_negative(void **state)
{
    temp_dir *f = *state;
    write_one(f, "{\"dtype\": \"F32\", \"shape\": [-2, -2], \"data_offsets\": [0, 16]}", 16);
    assert_open_fails(f, "model.safetensors", "\"w\": shape entry 0");
}

static void too_many_dims(void **state)
{
    temp_dir *f = *state;
    write_one(f, "{\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1], \"data_offsets\": [0, 4]}", 4);
    assert_open_fails(f, "model.safetensors", "\"w\": \"shape\"");
}

static void unsupported_dtype(void **state)
{
    temp_dir *f = *state;
    write_one(f, "{\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}", 8);
    assert_open_fails(f, "model.safetensors", "\"w\" has dtype I64");
}

static void malformed_header(void **state)
{
    temp_dir *f = *state;
    write_raw(f, "model.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]", 4);
    assert_open_fails(f, "model.safetensors", "the header is not valid JSON");
    /* A valid value followed by anything but padding is not a header either. */
    write_one(f, "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}} x", 4);
    assert_open_fails(f, "model.safetensors", "the header is not valid JSON");
}

static void header_not_an_object(void **state)
{
    temp_dir *f = *state;
    write_raw(f, "model.safetensors", "[1, 2]", 0);
    assert_open_fails(f, "model.safetensors", "not a JSON object");
}

static void duplicate_name_in_header(void **state)
{
    temp_dir *f = *state;
    write_raw(f, "model.safetensors",
              "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
              " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
              8);
    assert_open_fails(f, "model.safetensors", "\"w\" appears twice");
}

static void duplicate_name_across_shards(void **state)
{
    temp_dir *f = *state;
    write_st(f, "model-00001-of-00002.safetensors", three_dtypes, 2);
    write_st(f, "model-00002-of-00002.safetensors", three_dtypes + 1, 2); /* b.f16 again */
    const char *index = "{\"weight_map\": {\"a.bf16\": \"model-00001-of-00002.safetensors\","
                        " \"c.f32\": \"model-00002-of-00002.safetensors\"}}";
    write_text(f, "model.safetensors.index.json", index);
    assert_open_fails(f, "model-00002-of-00002.safetensors", "\"b.f16\" appears twice");
}

static void malformed_index(void **state)
{
    temp_dir *f = *state;
    write_sharded(f, "{\"weight_map\": {\"a.bf16\": }");
    assert_open_fails(f, "model.safetensors.index.json", "not valid JSON");
}

static void index_without_weight_map(void **state)
{
    temp_dir *f = *state;
    write_sharded(f, "{\"metadata\": {}}");
    assert_open_fails(f, "model.safetensors.index.json", "\"weight_map\"");
}

static void shard_missing(void **state)
{
    temp_dir *f = *state;
    write_sharded(f, index_json);
    remove(file_in(f, "model-00002-of-00002.safetensors"));
    assert_open_fails(f, "model-00002-of-00002.safetensors", "is missing");
    assert_open_fails(f, "model.safetensors.index.json", "is missing");
}

static void tensor_not_in_its_shard(void **state)
{
    temp_dir *f = *state;
    write_sharded(f, "{\"weight_map\": {"
                     "\"a.bf16\": \"model-00001-of-00002.safetensors\","
                     "\"c.f32\": \"model-00001-of-00002.safetensors\","
                     "\"d\": \"model-00002-of-00002.safetensors\"}}");
    /* c.f32 is in the other shard; d is nowhere. */
    assert_open_fails(f, "model-00001-of-00002.safetensors", "\"c.f32\"");
    assert_open_fails(f, "model.safetensors.index.json", "it is in");
    write_sharded(f, "{\"weight_map\": {\"d\": \"model-00002-of-00002.safetensors\"}}");
    assert_open_fails(f, "model-00002-of-00002.safetensors", "tensor \"d\" is not in");
}

static void shard_path_outside_folder(void **state)
{
    temp_dir *f = *state;
    const char *bad[] = {"../model-00001-of-00002.safetensors", "sub/model.safetensors", ""};
    for (int i = 0; i < 3; i++) {
        char index[256];
        snprintf(index, sizeof index, "{\"weight_map\": {\"a.bf16\": \"%s\"}}", bad[i]);
        write_sharded(f, index);
        assert_open_fails(f, "model.safetensors.index.json", "\"a.bf16\"");
    }
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, temp_dir_setup, temp_dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(single_file_opens),
        TEST(empty_and_scalar_tensors_open),
        TEST(sharded_set_opens),
        TEST(no_weights_in_folder),
        TEST(file_shorter_than_header_length),
        TEST(truncated_file),
        TEST(header_length_past_end),
        TEST(huge_header_length),
        TEST(offsets_past_end),
        TEST(offsets_reversed),
        TEST(offsets_overlap),
        TEST(shape_does_not_match_byte_range),
        TEST(shape_overflows),
        TEST(shape_entry_negative),
        TEST(too_many_dims),
        TEST(unsupported_dtype),
        TEST(malformed_header),
        TEST(header_not_an_object),
        TEST(duplicate_name_in_header),
        TEST(duplicate_name_across_shards),
        TEST(malformed_index),
        TEST(index_without_weight_map),
        TEST(shard_missing),
        TEST(tensor_not_in_its_shard),
        TEST(shard_path_outside_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
