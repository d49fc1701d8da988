#include "runtime/generation.h"

#include <stdlib.h>
#include <string.h>

#include "model/sampler.h"
#include "runtime/timer.h"

enum { GEN_GOING = 0, GEN_EOS, GEN_STOP, GEN_LENGTH, GEN_NOT_FINITE };

/* Position of the first stop string in TEXT, or -1. */
static long find_stop(const gen_params *p, const char *text)
{
    long first = -1;
    for (int i = 0; i < p->n_stop; i++) {
        const char *hit = strstr(text, p->stop[i]);
        if (hit && (first < 0 || hit - text < first))
            first = hit - text;
    }
    return first;
}

static size_t longest_stop(const gen_params *p)
{
    size_t n = 0;
    for (int i = 0; i < p->n_stop; i++)
        if (strlen(p->stop[i]) > n)
            n = strlen(p->stop[i]);
    return n;
}

/* Writes what became final since the last call: text that can no longer turn out to be the start
 * of a stop string, and not an unfinished UTF-8 character (shown as U+FFFD until complete). */
static void stream_text(FILE *f, const char *text, size_t *printed, size_t hold, int final)
{
    size_t len = strlen(text), upto = len;
    if (!final) {
        upto = len > hold ? len - hold : 0;
        while (upto > *printed && upto >= 3 && !memcmp(text + upto - 3, "\xEF\xBF\xBD", 3))
            upto -= 3;
    }
    if (upto > *printed) {
        fwrite(text + *printed, 1, upto - *printed, f);
        fflush(f);
        *printed = upto;
    }
}

/* The root's decision for the token just sampled. */
static int judge(const model *m, const gen_params *p, gen_result *out)
{
    if (!p->ignore_eos && model_config_is_eos(&m->cfg, out->tokens[out->n_tokens - 1]))
        return GEN_EOS;
    if (!m->tok) /* a model without a tokenizer (benchmarks): token ids only, no text */
        return out->n_tokens >= p->max_new_tokens ? GEN_LENGTH : GEN_GOING;
    free(out->text);
    out->text = tokenizer_decode(m->tok, out->tokens, out->n_tokens, 1);
    long cut = find_stop(p, out->text);
    if (cut >= 0) {
        out->text[cut] = 0;
        return GEN_STOP;
    }
    return out->n_tokens >= p->max_new_tokens ? GEN_LENGTH : GEN_GOING;
}

void generate_tokens(const model *m, const float *logits, int pos, const gen_params *p,
                     const gen_driver *d, gen_result *out)
{
    static const char *finish_names[] = {"", "eos", "stop", "length", "not-finite"};
    memset(out, 0, sizeof *out);
    out->tokens = mallocCheck(sizeof(int) * (p->max_new_tokens + 1), "generated tokens");
    sampler s;
    sampler_init(&s, m->cfg.vocab_size, p->temperature, p->top_p, p->seed);
    const backend *be = d->be ? d->be : backend_cpu();
    size_t printed = 0, hold = longest_stop(p);
    double t0 = timer_now();
    int state = p->max_new_tokens > 0 ? GEN_GOING : GEN_LENGTH;
    while (state == GEN_GOING) {
        int msg[2] = {0, 0};
        if (d->is_root) {
            int token = sampler_next(&s, be, logits);
            if (token >= 0)
                out->tokens[out->n_tokens++] = msg[0] = token;
            msg[1] = token >= 0 ? judge(m, p, out) : GEN_NOT_FINITE;
            if (d->stream && out->text)
                stream_text(d->stream, out->text, &printed, hold, msg[1] != GEN_GOING);
        }
        if (d->agree)
            d->agree(d->user, msg);
        state = msg[1];
        if (!d->is_root && state != GEN_NOT_FINITE)
            out->tokens[out->n_tokens++] = msg[0];
        if (state == GEN_GOING)
            logits = d->step(d->user, msg[0], pos++);
    }
    out->seconds = timer_now() - t0;
    out->finish = finish_names[state];
    out->not_finite = state == GEN_NOT_FINITE;
    if (m->tok && (!out->text || state == GEN_EOS)) {
        free(out->text);
        out->text = tokenizer_decode(m->tok, out->tokens, out->n_tokens, 1);
    }
    if (d->is_root && d->stream && out->text) {
        stream_text(d->stream, out->text, &printed, 0, 1);
        fputc('\n', d->stream);
        fflush(d->stream);
    }
}

void gen_not_finite_error(int n_tokens, si_error *err)
{
    si_error_set(
        err,
        "the model's logits are not finite (NaN or infinite) after %d generated "
        "token(s): no answer can be trusted\n"
        "  HINT: a weight of the checkpoint may be NaN or infinite (check each tensor, e.g. "
        "with torch.isfinite); on a GPU, --dtype fp32 shows whether bf16 overflowed",
        n_tokens);
}

void gen_result_free(gen_result *r)
{
    free(r->tokens);
    free(r->text);
    memset(r, 0, sizeof *r);
}
