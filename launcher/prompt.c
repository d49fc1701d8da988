#include "launcher/prompt.h"

#include <stdlib.h>
#include <string.h>

int prompt_encode(const model *m, int use_chat, const char *text, int **ids, int *n,
                  si_error *err)
{
    chat_format fmt = use_chat ? m->chat : CHAT_FORMAT_RAW;
    char *rendered = chat_render(fmt, NULL, text);
    int rc = tokenizer_encode(m->tok, rendered, strlen(rendered), fmt == CHAT_FORMAT_RAW, ids, n,
                              err);
    free(rendered);
    return rc;
}
