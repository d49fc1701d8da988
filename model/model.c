#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/rope_freqs.h"

static int load_tokenizer(model *m, const char *dir, si_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (tokenizer_load(&m->tok, path, err) != 0)
        return -1;
    if (tokenizer_vocab_size(m->tok) > m->cfg.vocab_size)
        return si_error_set(err,
                            "%s has %d tokens but config.json's vocab_size is %d\n"
                            "  HINT: the tokenizer and the weights come from different models",
                            path, tokenizer_vocab_size(m->tok), m->cfg.vocab_size);
    return chat_format_detect(&m->chat, dir, err);
}

static int load(model *m, const char *dir, int host_weights, si_error *err)
{
    memset(m, 0, sizeof *m);
    if (model_config_load(&m->cfg, dir, err) != 0)
        return -1;
    if (st_open_dir(&m->set, dir, err) != 0)
        return -1;
    const char *first;
    m->n_unused = model_weights_unused(&m->cfg, &m->set, &first);
    if (first)
        snprintf(m->first_unused, sizeof m->first_unused, "%s", first);
    int rc;
    if (host_weights) {
        rc = model_weights_load(&m->w, &m->cfg, &m->set, err);
        st_close(&m->set); /* weights are converted into their own allocation */
        memset(&m->set, 0, sizeof m->set);
    } else {
        rc = model_weights_each(&m->cfg, &m->set, NULL, NULL, err);
    }
    if (rc != 0 || load_tokenizer(m, dir, err) != 0) {
        model_free(m);
        return -1;
    }
    m->inv_freq = mallocCheck(sizeof(float) * (m->cfg.head_dim / 2), "RoPE frequencies");
    rope_inv_freq(m->inv_freq, &m->cfg);
    return 0;
}

int model_load(model *m, const char *dir, si_error *err)
{
    return load(m, dir, 1, err);
}

int model_load_mapped(model *m, const char *dir, si_error *err)
{
    return load(m, dir, 0, err);
}

void model_warn_unused(const model *m)
{
    if (m->n_unused)
        si_warn("%d tensor(s) of the safetensors files are not used by the model config.json "
                "describes (%s%s): they are ignored\n"
                "  HINT: check num_hidden_layers and tie_word_embeddings in config.json against "
                "the checkpoint",
                m->n_unused, m->first_unused, m->n_unused > 1 ? ", ..." : "");
}

void model_free(model *m)
{
    model_weights_free(&m->w);
    if (m->set.n_files)
        st_close(&m->set);
    if (m->tok)
        tokenizer_free(m->tok);
    free(m->inv_freq);
    memset(m, 0, sizeof *m);
}
