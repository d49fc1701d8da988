/* Byte-level BPE from a Hugging Face tokenizer.json, step for step as the `tokenizers` library
 * runs it: added tokens are cut out of the raw text first (leftmost-longest, non-normalized
 * tokens before normalized ones), the rest goes through the pre-tokenizer's regex splits, each
 * piece becomes one symbol per byte and the BPE merges run lowest rank first. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "model/tokenizer.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/json_file.h"

#define HINT_BYTE_LEVEL                                                                            \
    "\n  HINT: starinfer reads byte-level BPE tokenizers such as Llama 3's; use the "              \
    "tokenizer.json that came with a supported model"
#define MAX_TOKEN_ID (1 << 24) /* far above any real vocabulary; guards the id-indexed tables */
#define N_BYTE_CHARS 324       /* the byte-level alphabet is U+0021..U+0143 */

/* GPT-2's regex, which a ByteLevel pre-tokenizer with use_regex runs. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* String -> id, open addressing over an array of entries. */
typedef struct {
    const char *key;
    uint32_t len;
    int id;
} str_entry;

typedef struct {
    str_entry *entries;
    uint32_t n;
    uint32_t *slots; /* entry index + 1; 0 is empty */
    uint32_t mask;
} str_map;

/* (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t key;
    int rank; /* -1: empty slot */
    int new_id;
} merge_entry;

typedef struct {
    merge_entry *slots;
    uint32_t mask;
} merge_map;

typedef struct {
    char *content;
    size_t len;
    int id;
    int special, lstrip, rstrip, normalized;
} added_token;

/* One set of added tokens matched together, bucketed by first byte, longest first. */
typedef struct {
    const added_token **tokens;
    uint32_t start[257];
} added_set;

/* One pre-tokenizer step: optionally prepend a space, then split on a regex. */
typedef struct {
    int byte_level; /* a ByteLevel step, the last one */
    int prefix_space;
    pcre2_code *re; /* NULL: no split */
    int jit;
} pretok_step;

struct tokenizer {
    int n_ids; /* largest id + 1 */
    str_map vocab;
    char *vocab_keys;
    merge_map merges;
    int ignore_merges;
    int unk_id; /* -1: none */
    int fuse_unk;
    int byte_ids[256]; /* id of each single-byte token, -1 when the vocabulary lacks it */

    added_token *added;
    int n_added;
    added_set added_sets[2]; /* [0]: non-normalized tokens, [1]: normalized */

    pretok_step *steps;
    int n_steps;

    int *prefix_ids, n_prefix; /* the post-processor's template around $A */
    int *suffix_ids, n_suffix;

    char byte_utf8[256][3];      /* byte -> byte-level character, UTF-8, NUL-padded */
    int char_byte[N_BYTE_CHARS]; /* byte-level character -> byte, -1 when not in the alphabet */
    char *dec_bytes;             /* what each id decodes to, before the UTF-8 repair */
    size_t *dec_start;           /* per id, into dec_bytes */
    uint32_t *dec_len;           /* per id; 0 for ids that no token has */
    unsigned char *id_special;
};

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 character at S (N bytes available), or 0 when S does not
 * start one; then *BAD is the length of the maximal ill-formed prefix, the bytes that one
 * U+FFFD replaces (the rule of Rust's from_utf8_lossy and Python's errors="replace"). */
static size_t utf8_char_len(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < need && i < n; i++) {
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (s[i] < l || s[i] > h)
            break;
    }
    if (i == need)
        return need;
    *bad = i;
    return 0;
}

/* The code point of the well-formed character of LEN bytes at S. */
static uint32_t utf8_code_point(const unsigned char *s, size_t len)
{
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = s[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++)
        cp = (cp << 6) | (s[i] & 0x3F);
    return cp;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, bad;
    while (i < len) {
        size_t n = utf8_char_len(u + i, len - i, &bad);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

/* A malloc'd, NUL-terminated copy of S with every ill-formed sequence replaced by U+FFFD. */
static char *utf8_lossy(const char *s, size_t len, size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)s;
    char *out = mallocCheck(len * 3 + 1, "UTF-8 repair"); /* a 1-byte sequence can become 3 */
    size_t i = 0, o = 0, bad;
    while (i < len) {
        size_t n = utf8_char_len(u + i, len - i, &bad);
        if (n) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            o += utf8_put(out + o, 0xFFFD);
            i += bad;
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* Unicode White_Space, what Rust's \s matches (for the lstrip and rstrip of added tokens). */
static int is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Start of the run of white space that ends at END in S (valid UTF-8). */
static size_t white_space_run_start(const char *s, size_t end)
{
    const unsigned char *u = (const unsigned char *)s;
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && (u[start] & 0xC0) == 0x80)
            start--;
        if (!is_white_space(utf8_code_point(u + start, end - start)))
            break;
        end = start;
    }
    return end;
}

/* End of the run of white space that starts at START in S (LEN bytes, valid UTF-8). */
static size_t white_space_run_end(const char *s, size_t start, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t bad;
    while (start < len) {
        size_t n = utf8_char_len(u + start, len - start, &bad);
        if (!is_white_space(utf8_code_point(u + start, n)))
            break;
        start += n;
    }
    return start;
}

/* ---- Hash tables ---- */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33; /* splitmix64's finaliser */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint32_t table_mask(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return (uint32_t)(cap - 1);
}

/* The slot that holds KEY, or the empty slot where it would go. */
static uint32_t *str_map_slot(const str_map *m, const char *key, size_t len)
{
    uint32_t i = (uint32_t)hash_bytes(key, len) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        uint32_t e = m->slots[i];
        if (!e)
            return &m->slots[i];
        const str_entry *se = &m->entries[e - 1];
        if (se->len == len && memcmp(se->key, key, len) == 0)
            return &m->slots[i];
    }
}

static int str_map_get(const str_map *m, const char *key, size_t len)
{
    uint32_t e = *str_map_slot(m, key, len);
    return e ? m->entries[e - 1].id : -1;
}

static uint64_t pair_key(int a, int b)
{
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

static const merge_entry *merge_get(const merge_map *m, int a, int b)
{
    uint64_t key = pair_key(a, b);
    for (uint32_t i = (uint32_t)hash_u64(key) & m->mask;; i = (i + 1) & m->mask) {
        const merge_entry *e = &m->slots[i];
        if (e->rank < 0)
            return NULL;
        if (e->key == key)
            return e;
    }
}

/* Adds or overwrites: like the library, a repeated merge keeps its last rank. */
static void merge_put(merge_map *m, int a, int b, int rank, int new_id)
{
    uint64_t key = pair_key(a, b);
    uint32_t i = (uint32_t)hash_u64(key) & m->mask;
    while (m->slots[i].rank >= 0 && m->slots[i].key != key)
        i = (i + 1) & m->mask;
    m->slots[i] = (merge_entry){key, rank, new_id};
}

/* ---- Byte-level alphabet ---- */

/* GPT-2's map: printable Latin-1 bytes stand for themselves, the 68 others become U+0100.. in
 * order, so that every byte is a visible character. */
static void byte_level_alphabet(tokenizer *tok)
{
    int next = 256;
    for (int i = 0; i < N_BYTE_CHARS; i++)
        tok->char_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int c = printable ? b : next++;
        memset(tok->byte_utf8[b], 0, 3);
        utf8_put(tok->byte_utf8[b], (uint32_t)c);
        tok->char_byte[c] = b;
    }
}

/* Writes the byte-level spelling of S into OUT (room for 2 * LEN bytes); returns its length. */
static size_t to_byte_level(const tokenizer *tok, const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *c = tok->byte_utf8[(unsigned char)s[i]];
        out[o++] = c[0];
        if (c[1])
            out[o++] = c[1];
    }
    return o;
}

/* What the ByteLevel decoder makes of one token: its bytes when every character is in the
 * byte-level alphabet, else the token's own UTF-8. Appends to *BUF. */
static void append_decoded(const tokenizer *tok, const char *s, size_t len, char **buf,
                           size_t *used, size_t *cap)
{
    if (*used + len > *cap) {
        *cap = 2 * (*used + len);
        *buf = realloc(*buf, *cap);
        if (!*buf)
            si_fatal("out of host memory for the tokenizer's decode table");
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t o = *used, bad;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char_len(u + i, len - i, &bad);
        uint32_t cp = n ? utf8_code_point(u + i, n) : N_BYTE_CHARS;
        if (cp >= N_BYTE_CHARS || tok->char_byte[cp] < 0) {
            memcpy(*buf + *used, s, len);
            *used += len;
            return;
        }
        (*buf)[o++] = (char)tok->char_byte[cp];
        i += n;
    }
    *used = o;
}

/* ---- Loading ---- */

static const char *json_type(const cJSON *obj)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int json_flag(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static int json_is_null_or_empty_string(const cJSON *item)
{
    return !item || cJSON_IsNull(item) || (cJSON_IsString(item) && !item->valuestring[0]);
}

static int read_token_id(const cJSON *item, int *id)
{
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble >= MAX_TOKEN_ID ||
        item->valuedouble != (double)(int)item->valuedouble)
        return -1;
    *id = (int)item->valuedouble;
    return 0;
}

static void note_id(tokenizer *tok, int id)
{
    if (id + 1 > tok->n_ids)
        tok->n_ids = id + 1;
}

static int load_vocab(tokenizer *tok, const cJSON *vocab, const char *path, si_error *err)
{
    if (!cJSON_IsObject(vocab))
        return si_error_set(err, "%s: model.vocab is missing or not an object" HINT_BYTE_LEVEL,
                            path);
    size_t n = 0, key_bytes = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, n++)
        key_bytes += strlen(e->string) + 1;
    tok->vocab.entries = mallocCheck(n * sizeof(str_entry), "tokenizer vocabulary");
    tok->vocab.mask = table_mask(n);
    tok->vocab.slots = callocCheck((size_t)tok->vocab.mask + 1, sizeof(uint32_t), "vocab table");
    tok->vocab_keys = mallocCheck(key_bytes, "tokenizer vocabulary");
    char *key = tok->vocab_keys;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int id;
        if (read_token_id(e, &id) < 0)
            return si_error_set(err,
                                "%s: model.vocab[\"%s\"] is not a valid token id" HINT_BYTE_LEVEL,
                                path, e->string);
        size_t len = strlen(e->string);
        memcpy(key, e->string, len + 1);
        uint32_t *slot = str_map_slot(&tok->vocab, key, len);
        if (*slot) { /* a repeated key: the last one wins, as in serde's map */
            tok->vocab.entries[*slot - 1].id = id;
        } else {
            tok->vocab.entries[tok->vocab.n] = (str_entry){key, (uint32_t)len, id};
            *slot = ++tok->vocab.n;
        }
        key += len + 1;
        note_id(tok, id);
    }
    for (int b = 0; b < 256; b++)
        tok->byte_ids[b] = str_map_get(&tok->vocab, tok->byte_utf8[b], strlen(tok->byte_utf8[b]));
    return 0;
}

/* A merge is "a b" (older files) or ["a", "b"] (tokenizers >= 0.20). */
static int read_merge(const cJSON *m, const char **a, size_t *a_len, const char **b, size_t *b_len)
{
    if (cJSON_IsString(m)) {
        const char *space = strchr(m->valuestring, ' ');
        if (!space || strchr(space + 1, ' '))
            return -1;
        *a = m->valuestring;
        *a_len = (size_t)(space - m->valuestring);
        *b = space + 1;
        *b_len = strlen(*b);
        return 0;
    }
    const cJSON *l = cJSON_GetArrayItem(m, 0), *r = cJSON_GetArrayItem(m, 1);
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsString(l) || !cJSON_IsString(r))
        return -1;
    *a = l->valuestring;
    *a_len = strlen(*a);
    *b = r->valuestring;
    *b_len = strlen(*b);
    return 0;
}

static int load_merges(tokenizer *tok, const cJSON *merges, const char *path, si_error *err)
{
    if (!cJSON_IsArray(merges))
        return si_error_set(err, "%s: model.merges is missing or not a list" HINT_BYTE_LEVEL, path);
    int n = cJSON_GetArraySize(merges);
    tok->merges.mask = table_mask((size_t)n);
    tok->merges.slots = mallocCheck(((size_t)tok->merges.mask + 1) * sizeof(merge_entry), "merges");
    for (uint32_t i = 0; i <= tok->merges.mask; i++)
        tok->merges.slots[i].rank = -1;
    char *joined = NULL;
    size_t joined_cap = 0;
    int rank = 0, rc = 0;
    for (const cJSON *m = merges->child; m && rc == 0; m = m->next, rank++) {
        const char *a, *b;
        size_t a_len, b_len;
        if (read_merge(m, &a, &a_len, &b, &b_len) < 0) {
            rc = si_error_set(
                err, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]" HINT_BYTE_LEVEL,
                path, rank);
            break;
        }
        if (a_len + b_len > joined_cap) {
            joined_cap = 2 * (a_len + b_len);
            free(joined);
            joined = mallocCheck(joined_cap, "merges");
        }
        memcpy(joined, a, a_len);
        memcpy(joined + a_len, b, b_len);
        int a_id = str_map_get(&tok->vocab, a, a_len), b_id = str_map_get(&tok->vocab, b, b_len);
        int new_id = str_map_get(&tok->vocab, joined, a_len + b_len);
        if (a_id < 0 || b_id < 0 || new_id < 0)
            rc = si_error_set(err,
                              "%s: model.merges[%d] (\"%.*s\" + \"%.*s\") names a token "
                              "missing from model.vocab" HINT_BYTE_LEVEL,
                              path, rank, (int)a_len, a, (int)b_len, b);
        else
            merge_put(&tok->merges, a_id, b_id, rank, new_id);
    }
    free(joined);
    return rc;
}

static int load_model(tokenizer *tok, const cJSON *root, const char *path, si_error *err)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *type = json_type(model);
    if (!cJSON_IsObject(model) || (type && strcmp(type, "BPE") != 0))
        return si_error_set(err, "%s: the model is %s, not BPE" HINT_BYTE_LEVEL, path,
                            type ? type : "missing");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (json_flag(model, "byte_fallback") ||
        !json_is_null_or_empty_string(
            cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix")) ||
        !json_is_null_or_empty_string(
            cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix")) ||
        (cJSON_IsNumber(dropout) && dropout->valuedouble != 0))
        return si_error_set(err,
                            "%s: the BPE model uses byte_fallback, a subword prefix or suffix, "
                            "or dropout, which starinfer does not support" HINT_BYTE_LEVEL,
                            path);
    tok->ignore_merges = json_flag(model, "ignore_merges");
    tok->fuse_unk = json_flag(model, "fuse_unk");
    if (load_vocab(tok, cJSON_GetObjectItemCaseSensitive(model, "vocab"), path, err) < 0 ||
        load_merges(tok, cJSON_GetObjectItemCaseSensitive(model, "merges"), path, err) < 0)
        return -1;
    tok->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk) &&
        (tok->unk_id = str_map_get(&tok->vocab, unk->valuestring, strlen(unk->valuestring))) < 0)
        return si_error_set(err, "%s: model.unk_token \"%s\" is not in model.vocab" HINT_BYTE_LEVEL,
                            path, unk->valuestring);
    return 0;
}

static int load_added_tokens(tokenizer *tok, const cJSON *root, const char *path, si_error *err)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!list || cJSON_IsNull(list))
        return 0;
    if (!cJSON_IsArray(list))
        return si_error_set(err, "%s: added_tokens is not a list" HINT_BYTE_LEVEL, path);
    tok->added = callocCheck((size_t)cJSON_GetArraySize(list), sizeof(added_token), "added tokens");
    int i = 0;
    for (const cJSON *t = list->child; t; t = t->next, i++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(t, "content");
        int id;
        if (!cJSON_IsString(content) ||
            read_token_id(cJSON_GetObjectItemCaseSensitive(t, "id"), &id) < 0)
            return si_error_set(
                err, "%s: added_tokens[%d] lacks a content string or a valid id" HINT_BYTE_LEVEL,
                path, i);
        if (json_flag(t, "single_word"))
            return si_error_set(err,
                                "%s: added token \"%s\" is single_word, which starinfer does "
                                "not support" HINT_BYTE_LEVEL,
                                path, content->valuestring);
        if (!content->valuestring[0])
            continue; /* the library ignores empty tokens */
        added_token *a = &tok->added[tok->n_added++];
        a->content = strdup(content->valuestring);
        if (!a->content)
            si_fatal("out of host memory for the added tokens");
        a->len = strlen(a->content);
        a->id = id;
        a->special = json_flag(t, "special");
        a->lstrip = json_flag(t, "lstrip");
        a->rstrip = json_flag(t, "rstrip");
        a->normalized = json_flag(t, "normalized");
        note_id(tok, id);
    }
    return 0;
}

/* Longer first within a first byte, so the first hit at a position is the longest. */
static int added_order(const void *pa, const void *pb)
{
    const added_token *a = *(const added_token *const *)pa, *b = *(const added_token *const *)pb;
    unsigned char fa = (unsigned char)a->content[0], fb = (unsigned char)b->content[0];
    if (fa != fb)
        return fa < fb ? -1 : 1;
    return a->len > b->len ? -1 : a->len < b->len;
}

static void build_added_sets(tokenizer *tok)
{
    for (int s = 0; s < 2; s++) {
        added_set *set = &tok->added_sets[s];
        set->tokens = mallocCheck((size_t)tok->n_added * sizeof(*set->tokens), "added tokens");
        int n = 0;
        for (int i = 0; i < tok->n_added; i++)
            if (tok->added[i].normalized == s)
                set->tokens[n++] = &tok->added[i];
        qsort(set->tokens, (size_t)n, sizeof(*set->tokens), added_order);
        int k = 0;
        for (int b = 0; b <= 256; b++) {
            while (k < n && (unsigned char)set->tokens[k]->content[0] < b)
                k++;
            set->start[b] = (uint32_t)k;
        }
        set->start[256] = (uint32_t)n;
    }
}

static int compile_regex(pretok_step *step, const char *pattern, const char *path, si_error *err)
{
    int code;
    PCRE2_SIZE at;
    /* The library runs its regexes with Oniguruma's Ruby syntax, where ^ and $ match at every
     * line break: PCRE2's MULTILINE. UCP gives \s, \w and \d their Unicode meaning. */
    pcre2_compile_context *ctx = pcre2_compile_context_create(NULL);
    if (!ctx)
        si_fatal("out of host memory compiling the pre-tokenizer's regex");
    pcre2_set_newline(ctx, PCRE2_NEWLINE_LF); /* Ruby's line break; PCRE2 builds may differ */
    step->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &code, &at, ctx);
    pcre2_compile_context_free(ctx);
    if (!step->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return si_error_set(
            err, "%s: the pre-tokenizer's regex does not compile at offset %zu: %s" HINT_BYTE_LEVEL,
            path, (size_t)at, (const char *)msg);
    }
    step->jit = pcre2_jit_compile(step->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

static int load_pre_tokenizer_step(tokenizer *tok, const cJSON *pt, const char *path, si_error *err)
{
    const char *type = json_type(pt);
    pretok_step *step = &tok->steps[tok->n_steps];
    if (type && strcmp(type, "Split") == 0) {
        const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
        const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(pt, "behavior");
        if (!cJSON_IsString(regex) || !cJSON_IsString(behavior) ||
            strcmp(behavior->valuestring, "Isolated") != 0 || json_flag(pt, "invert"))
            return si_error_set(err,
                                "%s: only Split pre-tokenizers with a Regex pattern, behavior "
                                "Isolated and no invert are supported" HINT_BYTE_LEVEL,
                                path);
        tok->n_steps++;
        return compile_regex(step, regex->valuestring, path, err);
    }
    if (type && strcmp(type, "ByteLevel") == 0) {
        tok->n_steps++;
        step->byte_level = 1;
        step->prefix_space = json_flag(pt, "add_prefix_space");
        return json_flag(pt, "use_regex") ? compile_regex(step, GPT2_PATTERN, path, err) : 0;
    }
    return si_error_set(err, "%s: pre-tokenizer %s is not supported" HINT_BYTE_LEVEL, path,
                        type ? type : "without a type");
}

/* A Split/ByteLevel sequence that ends in ByteLevel, or a lone ByteLevel. */
static int load_pre_tokenizer(tokenizer *tok, const cJSON *root, const char *path, si_error *err)
{
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *type = json_type(pt);
    const cJSON *seq = type && strcmp(type, "Sequence") == 0
                           ? cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers")
                           : NULL;
    tok->steps = callocCheck((size_t)(seq ? cJSON_GetArraySize(seq) : 1), sizeof(pretok_step),
                             "pre-tokenizer");
    if (seq) {
        for (const cJSON *s = seq->child; s; s = s->next)
            if (load_pre_tokenizer_step(tok, s, path, err) < 0)
                return -1;
    } else if (pt && !cJSON_IsNull(pt) && load_pre_tokenizer_step(tok, pt, path, err) < 0) {
        return -1;
    }
    /* BPE works on the bytes once ByteLevel has spelled them; nothing may come after it. */
    int ok = tok->n_steps > 0 && tok->steps[tok->n_steps - 1].byte_level;
    for (int i = 0; i + 1 < tok->n_steps; i++)
        ok = ok && !tok->steps[i].byte_level;
    if (!ok)
        return si_error_set(
            err, "%s: the pre-tokenizer must end in ByteLevel, and only there" HINT_BYTE_LEVEL,
            path);
    return 0;
}

static int load_normalizer(const cJSON *root, const char *path, si_error *err)
{
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const char *type = json_type(norm);
    if (!norm || cJSON_IsNull(norm) ||
        (type && strcmp(type, "Sequence") == 0 &&
         cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(norm, "normalizers")) == 0))
        return 0;
    return si_error_set(
        err, "%s: normalizer %s is not supported (Llama 3 tokenizers have none)" HINT_BYTE_LEVEL,
        path, type ? type : "without a type");
}

static int append_ids(int **ids, int *n, const cJSON *list)
{
    *ids = realloc(*ids, (size_t)(*n + cJSON_GetArraySize(list) + 1) * sizeof(int));
    if (!*ids)
        si_fatal("out of host memory for the post-processor");
    for (const cJSON *e = list->child; e; e = e->next)
        if (read_token_id(e, &(*ids)[(*n)++]) < 0)
            return -1;
    return 0;
}

/* TemplateProcessing's "single": the special tokens before and after $A. */
static int load_template(tokenizer *tok, const cJSON *pp, const char *path, si_error *err)
{
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    int seen_a = 0;
    for (const cJSON *item = single ? single->child : NULL; item; item = item->next) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(item, "Sequence");
        if (seq) {
            seen_a++;
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
        const cJSON *spec = cJSON_IsString(name)
                                ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring)
                                : NULL;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(spec, "ids");
        if (!cJSON_IsArray(ids) || (seen_a ? append_ids(&tok->suffix_ids, &tok->n_suffix, ids)
                                           : append_ids(&tok->prefix_ids, &tok->n_prefix, ids)) < 0)
            return si_error_set(err,
                                "%s: post_processor.single names a special token without "
                                "valid ids in post_processor.special_tokens" HINT_BYTE_LEVEL,
                                path);
    }
    if (seen_a != 1)
        return si_error_set(err, "%s: post_processor.single must hold $A once" HINT_BYTE_LEVEL,
                            path);
    return 0;
}

/* TemplateProcessing adds the template; ByteLevel only moves offsets; a Sequence runs both. */
static int load_post_processor(tokenizer *tok, const cJSON *pp, const char *path, si_error *err)
{
    const char *type = json_type(pp);
    if (!pp || cJSON_IsNull(pp) || (type && strcmp(type, "ByteLevel") == 0))
        return 0;
    if (type && strcmp(type, "TemplateProcessing") == 0)
        return load_template(tok, pp, path, err);
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pp, "processors");
        for (const cJSON *p = list ? list->child : NULL; p; p = p->next)
            if (load_post_processor(tok, p, path, err) < 0)
                return -1;
        return 0;
    }
    return si_error_set(err, "%s: post-processor %s is not supported" HINT_BYTE_LEVEL, path,
                        type ? type : "without a type");
}

static int load_decoder(const cJSON *root, const char *path, si_error *err)
{
    const char *type = json_type(cJSON_GetObjectItemCaseSensitive(root, "decoder"));
    if (type && strcmp(type, "ByteLevel") == 0)
        return 0;
    return si_error_set(
        err, "%s: decoder %s is not supported (byte-level BPE needs ByteLevel)" HINT_BYTE_LEVEL,
        path, type ? type : "missing");
}

/* What each id decodes to. Added tokens win over the model's entry for the same id, as in the
 * library's id_to_token. */
static void build_decode_table(tokenizer *tok)
{
    size_t n = (size_t)tok->n_ids, used = 0, cap = 16 * n + 16;
    tok->dec_bytes = mallocCheck(cap, "decode table");
    tok->dec_start = callocCheck(n, sizeof(size_t), "decode table");
    tok->dec_len = callocCheck(n, sizeof(uint32_t), "decode table");
    tok->id_special = callocCheck(n, 1, "decode table");
    for (uint32_t i = 0; i < tok->vocab.n; i++) {
        const str_entry *e = &tok->vocab.entries[i];
        tok->dec_start[e->id] = used;
        append_decoded(tok, e->key, e->len, &tok->dec_bytes, &used, &cap);
        tok->dec_len[e->id] = (uint32_t)(used - tok->dec_start[e->id]);
    }
    for (int i = 0; i < tok->n_added; i++) {
        const added_token *a = &tok->added[i];
        tok->dec_start[a->id] = used;
        append_decoded(tok, a->content, a->len, &tok->dec_bytes, &used, &cap);
        tok->dec_len[a->id] = (uint32_t)(used - tok->dec_start[a->id]);
        tok->id_special[a->id] = (unsigned char)a->special;
    }
}

static int load_json(tokenizer *tok, const cJSON *root, const char *path, si_error *err)
{
    if (load_normalizer(root, path, err) < 0 || load_model(tok, root, path, err) < 0 ||
        load_added_tokens(tok, root, path, err) < 0 ||
        load_pre_tokenizer(tok, root, path, err) < 0 ||
        load_post_processor(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), path,
                            err) < 0 ||
        load_decoder(root, path, err) < 0)
        return -1;
    build_added_sets(tok);
    build_decode_table(tok);
    return 0;
}

int tokenizer_load(tokenizer **out, const char *path, si_error *err)
{
    *out = NULL;
    cJSON *root = json_file_load(path, NULL, err);
    if (!root)
        return -1;
    tokenizer *tok = callocCheck(1, sizeof(tokenizer), "tokenizer");
    byte_level_alphabet(tok);
    int rc = load_json(tok, root, path, err);
    cJSON_Delete(root);
    if (rc < 0) {
        tokenizer_free(tok);
        return -1;
    }
    *out = tok;
    return 0;
}

void tokenizer_free(tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->vocab.entries);
    free(tok->vocab.slots);
    free(tok->vocab_keys);
    free(tok->merges.slots);
    for (int i = 0; i < tok->n_added; i++)
        free(tok->added[i].content);
    free(tok->added);
    free(tok->added_sets[0].tokens);
    free(tok->added_sets[1].tokens);
    for (int i = 0; i < tok->n_steps; i++)
        pcre2_code_free(tok->steps[i].re);
    free(tok->steps);
    free(tok->prefix_ids);
    free(tok->suffix_ids);
    free(tok->dec_bytes);
    free(tok->dec_start);
    free(tok->dec_len);
    free(tok->id_special);
    free(tok);
}

/* ---- Encoding ---- */

typedef struct {
    int id;
    int prev, next; /* -1 at the ends */
    int len;        /* bytes covered; 0 once merged into its left neighbour */
} symbol;

typedef struct {
    int rank, pos, new_id;
} merge_cand;

/* The state of one encode call: the output and the scratch space, reused piece to piece. */
typedef struct {
    const tokenizer *tok;
    int *ids;
    size_t n, cap;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    char *spelled; /* a piece in byte-level spelling */
    symbol *syms;
    merge_cand *heap;
    size_t scratch_cap, heap_n;
    si_error *err;
} encoder;

static void push_id(encoder *enc, int id)
{
    if (enc->n == enc->cap) {
        enc->cap = enc->cap ? 2 * enc->cap : 256;
        enc->ids = realloc(enc->ids, enc->cap * sizeof(int));
        if (!enc->ids)
            si_fatal("out of host memory for %zu token ids", enc->cap);
    }
    enc->ids[enc->n++] = id;
}

static void reserve_scratch(encoder *enc, size_t len)
{
    if (len <= enc->scratch_cap)
        return;
    enc->scratch_cap = 2 * len;
    free(enc->spelled);
    free(enc->syms);
    free(enc->heap);
    enc->spelled = mallocCheck(2 * enc->scratch_cap, "BPE scratch");
    enc->syms = mallocCheck(enc->scratch_cap * sizeof(symbol), "BPE scratch");
    /* each merge pushes at most two candidates, on top of the initial pairs */
    enc->heap = mallocCheck(3 * enc->scratch_cap * sizeof(merge_cand), "BPE scratch");
}

/* Min-heap on (rank, pos), the order in which the library applies merges. */
static int cand_less(const merge_cand *a, const merge_cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(encoder *enc, merge_cand c)
{
    merge_cand *h = enc->heap;
    size_t i = enc->heap_n++;
    while (i > 0 && cand_less(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static merge_cand heap_pop(encoder *enc)
{
    merge_cand *h = enc->heap, top = h[0], last = h[--enc->heap_n];
    size_t i = 0, n = enc->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && cand_less(&h[c + 1], &h[c]))
            c++;
        if (!cand_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static void push_pair(encoder *enc, int pos)
{
    const symbol *s = enc->syms;
    const merge_entry *m = merge_get(&enc->tok->merges, s[pos].id, s[s[pos].next].id);
    if (m)
        heap_push(enc, (merge_cand){m->rank, pos, m->new_id});
}

/* One symbol per byte; a byte without a token becomes unk (fused if the model says so) or is
 * dropped, as the library does. Returns the number of symbols. */
static int init_symbols(encoder *enc, const char *s, size_t len)
{
    const tokenizer *tok = enc->tok;
    int n = 0, pending_unk = 0;
    for (size_t i = 0; i < len; i++) {
        int id = tok->byte_ids[(unsigned char)s[i]];
        if (id < 0 && tok->unk_id >= 0 && pending_unk && tok->fuse_unk) {
            enc->syms[n - 1].len++;
            continue;
        }
        if (id < 0 && tok->unk_id < 0)
            continue;
        pending_unk = id < 0;
        enc->syms[n] = (symbol){id < 0 ? tok->unk_id : id, n - 1, -1, 1};
        if (n > 0)
            enc->syms[n - 1].next = n;
        n++;
    }
    return n;
}

/* The library's merge loop (Word::merge_all): pop the lowest (rank, pos), skip it when stale,
 * merge, and queue the pairs the merged symbol forms with its neighbours. */
static void bpe_merge(encoder *enc, int n)
{
    symbol *s = enc->syms;
    enc->heap_n = 0;
    for (int i = 0; i + 1 < n; i++)
        push_pair(enc, i);
    while (enc->heap_n > 0) {
        merge_cand top = heap_pop(enc);
        symbol *cur = &s[top.pos];
        if (cur->len == 0 || cur->next < 0)
            continue;
        symbol *right = &s[cur->next];
        const merge_entry *m = merge_get(&enc->tok->merges, cur->id, right->id);
        if (!m || m->new_id != top.new_id)
            continue;
        cur->id = top.new_id;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0)
            s[cur->next].prev = top.pos;
        if (cur->prev >= 0)
            push_pair(enc, cur->prev);
        if (cur->next >= 0)
            push_pair(enc, top.pos);
    }
}

static void bpe_piece(encoder *enc, const char *s, size_t len)
{
    const tokenizer *tok = enc->tok;
    reserve_scratch(enc, len);
    if (tok->ignore_merges) {
        /* a piece that is a whole token is emitted as it is, merges or not */
        size_t n = to_byte_level(tok, s, len, enc->spelled);
        int id = str_map_get(&tok->vocab, enc->spelled, n);
        if (id >= 0) {
            push_id(enc, id);
            return;
        }
    }
    int n = init_symbols(enc, s, len);
    bpe_merge(enc, n);
    for (int i = 0; i < n; i++)
        if (enc->syms[i].len)
            push_id(enc, enc->syms[i].id);
}

static int pretokenize(encoder *enc, int step, const char *s, size_t len);

/* Length of the character at POS in the valid UTF-8 S, 1 at the end. */
static size_t next_char_len(const char *s, size_t pos, size_t len)
{
    size_t bad;
    return pos < len ? utf8_char_len((const unsigned char *)s + pos, len - pos, &bad) : 1;
}

/* Splits S on the step's regex, each match and each gap between matches its own piece
 * (behavior Isolated). Empty matches split too, except right after a match, as in the
 * library's find_iter. */
static int split_on_regex(encoder *enc, int step, const char *s, size_t len)
{
    const pretok_step *st = &enc->tok->steps[step];
    size_t pos = 0, prev = 0, last_end = (size_t)-1;
    while (pos <= len) {
        int rc = st->jit ? pcre2_jit_match(st->re, (PCRE2_SPTR)s, len, pos, 0, enc->md, enc->mctx)
                         : pcre2_match(st->re, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK, enc->md,
                                       enc->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return si_error_set(enc->err,
                                "the tokenizer's pre-tokenizer regex failed on the "
                                "input: %s\n  HINT: split the text into smaller parts",
                                (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(enc->md);
        size_t start = ov[0], end = ov[1];
        if (start == end && end == last_end) {
            pos = end + next_char_len(s, end, len);
            continue;
        }
        if (start > prev && pretokenize(enc, step + 1, s + prev, start - prev) < 0)
            return -1;
        if (end > start && pretokenize(enc, step + 1, s + start, end - start) < 0)
            return -1;
        prev = pos = last_end = end;
    }
    if (prev < len)
        return pretokenize(enc, step + 1, s + prev, len - prev);
    return 0;
}

/* Runs pre-tokenizer steps STEP.. on the non-empty piece S, then BPE on what comes out. */
static int pretokenize(encoder *enc, int step, const char *s, size_t len)
{
    const tokenizer *tok = enc->tok;
    if (step == tok->n_steps) {
        bpe_piece(enc, s, len);
        return 0;
    }
    const pretok_step *st = &tok->steps[step];
    if (st->prefix_space && s[0] != ' ') {
        char *spaced = mallocCheck(len + 1, "pre-tokenizer");
        spaced[0] = ' ';
        memcpy(spaced + 1, s, len);
        int rc = st->re ? split_on_regex(enc, step, spaced, len + 1)
                        : pretokenize(enc, step + 1, spaced, len + 1);
        free(spaced);
        return rc;
    }
    return st->re ? split_on_regex(enc, step, s, len) : pretokenize(enc, step + 1, s, len);
}

/* The leftmost added token of SET in S at or after FROM, longest at that position. */
static const added_token *find_added(const added_set *set, const char *s, size_t len, size_t from,
                                     size_t *at)
{
    for (size_t p = from; p < len; p++) {
        unsigned char b = (unsigned char)s[p];
        for (uint32_t k = set->start[b]; k < set->start[b + 1]; k++) {
            const added_token *t = set->tokens[k];
            if (t->len <= len - p && memcmp(s + p, t->content, t->len) == 0) {
                *at = p;
                return t;
            }
        }
    }
    return NULL;
}

/* Cuts the added tokens of set PASS out of S (the library's find_matches, lstrip and rstrip
 * included) and hands the text between them to the next pass, the last pass to the
 * pre-tokenizer. */
static int split_added(encoder *enc, int pass, const char *s, size_t len)
{
    if (pass == 2)
        return pretokenize(enc, 0, s, len);
    const added_set *set = &enc->tok->added_sets[pass];
    size_t done = 0, from = 0, at;
    const added_token *t;
    while ((t = find_added(set, s, len, from, &at))) {
        size_t start = at, stop = at + t->len;
        from = stop;
        if (t->lstrip) {
            size_t ws = white_space_run_start(s, start);
            start = ws > done ? ws : done;
        }
        if (t->rstrip)
            stop = white_space_run_end(s, stop, len);
        if (start > done && split_added(enc, pass + 1, s + done, start - done) < 0)
            return -1;
        push_id(enc, t->id);
        done = stop;
    }
    return done < len ? split_added(enc, pass + 1, s + done, len - done) : 0;
}

static void encoder_free(encoder *enc)
{
    pcre2_match_data_free(enc->md);
    pcre2_match_context_free(enc->mctx);
    pcre2_jit_stack_free(enc->jit_stack);
    free(enc->spelled);
    free(enc->syms);
    free(enc->heap);
}

int tokenizer_encode(const tokenizer *tok, const char *text, size_t len, int add_special, int **ids,
                     int *n, si_error *err)
{
    *ids = NULL;
    *n = 0;
    /* Text that is not UTF-8 is read as Python's errors="replace" would: the regexes need
     * well-formed UTF-8 and the library only ever sees str. */
    char *repaired = NULL;
    if (!utf8_valid(text, len))
        text = repaired = utf8_lossy(text, len, &len);
    encoder enc = {.tok = tok, .err = err};
    enc.md = pcre2_match_data_create(1, NULL);
    enc.mctx = pcre2_match_context_create(NULL);
    enc.jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
    if (!enc.md || !enc.mctx || !enc.jit_stack)
        si_fatal("out of host memory for the tokenizer's regex matcher");
    pcre2_jit_stack_assign(enc.mctx, NULL, enc.jit_stack);
    if (add_special)
        for (int i = 0; i < tok->n_prefix; i++)
            push_id(&enc, tok->prefix_ids[i]);
    int rc = len > 0 ? split_added(&enc, 0, text, len) : 0;
    if (add_special)
        for (int i = 0; i < tok->n_suffix; i++)
            push_id(&enc, tok->suffix_ids[i]);
    encoder_free(&enc);
    free(repaired);
    if (rc == 0 && enc.n > (size_t)INT32_MAX)
        rc = si_error_set(err, "the text is too long to encode in one call\n"
                               "  HINT: encode it in parts");
    if (rc < 0) {
        free(enc.ids);
        return -1;
    }
    *ids = enc.ids ? enc.ids : mallocCheck(sizeof(int), "token ids");
    *n = (int)enc.n;
    return 0;
}

/* ---- Decoding ---- */

char *tokenizer_decode_len(const tokenizer *tok, const int *ids, int n, int skip_special,
                           size_t *out_len)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < tok->n_ids)
            total += tok->dec_len[ids[i]];
    char *bytes = mallocCheck(total + 1, "decoded text");
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        /* ids outside the vocabulary decode to nothing, as the library drops them */
        if (id < 0 || id >= tok->n_ids || (skip_special && tok->id_special[id]))
            continue;
        memcpy(bytes + o, tok->dec_bytes + tok->dec_start[id], tok->dec_len[id]);
        o += tok->dec_len[id];
    }
    size_t len;
    char *text = utf8_lossy(bytes, o, &len);
    free(bytes);
    if (out_len)
        *out_len = len;
    return text;
}

char *tokenizer_decode(const tokenizer *tok, const int *ids, int n, int skip_special)
{
    return tokenizer_decode_len(tok, ids, n, skip_special, NULL);
}

int tokenizer_vocab_size(const tokenizer *tok)
{
    return tok->n_ids;
}

int tokenizer_token_id(const tokenizer *tok, const char *token)
{
    for (int i = 0; i < tok->n_added; i++)
        if (strcmp(tok->added[i].content, token) == 0)
            return tok->added[i].id;
    return str_map_get(&tok->vocab, token, strlen(token));
}
