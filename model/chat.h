/* Chat formats. The Llama 3 instruct format is used when tokenizer_config.json's chat_template
 * carries it; otherwise, or with raw mode, the prompt is used as written (BOS added). */
#ifndef STARINFER_MODEL_CHAT_H
#define STARINFER_MODEL_CHAT_H

#include "kernels/check.h"

typedef enum { CHAT_FORMAT_RAW = 0, CHAT_FORMAT_LLAMA3 } chat_format;

/* Reads DIR/tokenizer_config.json (absent: raw) and tells which format its template is. */
int chat_format_detect(chat_format *fmt, const char *dir, si_error *err);

/* Returns the malloc'd text for one user turn followed by the assistant header, special tokens
 * spelled out (they are recognised by tokenizer_encode); for RAW, a copy of USER. SYSTEM may be
 * NULL. The caller encodes it with add_special = 0 for LLAMA3 (the text carries
 * <|begin_of_text|>) and add_special = 1 for RAW. */
char *chat_render(chat_format fmt, const char *system, const char *user);

#endif
