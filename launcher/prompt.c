#include "launcher/prompt.h"

#include <stdlib.h>
#include <string.h>

/* Stands for the user's text while the template is rendered: a control character that no
 * template uses and that its `trim` keeps, so the text around it is the template's own. */
#define USER_SLOT "\x01"

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

static char *concat(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = mallocCheck(la + lb + lc + 1, "prompt text");
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

int prompt_encode_request(const model *m, int use_chat, const char *context, const char *query,
                          request_ids *r, si_error *err)
{
    if (!query[strspn(query, " \t\n\v\f\r")])
        return si_error_set(err,
                            "the query is empty%s: give a question with --query TEXT or "
                            "--query-file FILE",
                            *query ? " (whitespace only)" : "");
    chat_format fmt = use_chat ? m->chat : CHAT_FORMAT_RAW;
    char *ctx_text, *query_text;
    if (fmt == CHAT_FORMAT_RAW) {
        ctx_text = concat(context, "", "");
        query_text = concat(query, "", "");
    } else {
        char *rendered = chat_render(fmt, NULL, USER_SLOT);
        char *slot = strstr(rendered, USER_SLOT);
        if (!slot)
            si_fatal("the chat template lost the user's text while rendering");
        *slot = 0;
        ctx_text = concat(rendered, context, "");
        query_text = concat("\n\n", query, slot + 1);
        free(rendered);
    }
    int rc = tokenizer_encode(m->tok, ctx_text, strlen(ctx_text), fmt == CHAT_FORMAT_RAW, &r->ctx,
                              &r->n_ctx, err);
    if (rc == 0)
        rc = tokenizer_encode(m->tok, query_text, strlen(query_text), 0, &r->query, &r->n_query,
                              err);
    free(ctx_text);
    free(query_text);
    return rc;
}
