/* The tokenizer of a Hugging Face tokenizer.json: byte-level BPE with its merges, the
 * pre-tokenizer's split regex (run by PCRE2 as written), added and special tokens, and the
 * post-processor's template (BOS). Encode and decode agree with the `tokenizers` library. */
#ifndef STARINFER_MODEL_TOKENIZER_H
#define STARINFER_MODEL_TOKENIZER_H

#include <stddef.h>

#include "kernels/check.h"

typedef struct tokenizer tokenizer;

/* PATH is a tokenizer.json. */
int tokenizer_load(tokenizer **out, const char *path, si_error *err);
void tokenizer_free(tokenizer *tok);

/* Encodes LEN bytes of TEXT. Special tokens written in the text are recognised as such.
 * Ill-formed UTF-8 in TEXT is read as U+FFFD, as Python's errors="replace" decoding does.
 * ADD_SPECIAL applies the post-processor's template (BOS for Llama 3), like the library's
 * add_special_tokens. On success *IDS is malloc'd and holds *N ids. */
int tokenizer_encode(const tokenizer *tok, const char *text, size_t len, int add_special, int **ids,
                     int *n, si_error *err);

/* Decodes IDS to a malloc'd, NUL-terminated string, as the library's decode does (invalid UTF-8
 * becomes U+FFFD). SKIP_SPECIAL drops special tokens. */
char *tokenizer_decode(const tokenizer *tok, const int *ids, int n, int skip_special);
/* The same, with the length in *LEN (when LEN is not NULL): decoded text may hold NUL bytes. */
char *tokenizer_decode_len(const tokenizer *tok, const int *ids, int n, int skip_special,
                           size_t *len);

int tokenizer_vocab_size(const tokenizer *tok); /* largest id + 1, added tokens included */
int tokenizer_token_id(const tokenizer *tok, const char *token); /* -1 when unknown */

#endif
