/* charword_train.c - sentencepiece's char and word model trainers
 * (char_model_trainer.cc, word_model_trainer.cc): the kept characters, or
 * the whitespace-delimited words, by frequency, scored log(count / total)
 * in float as sentencepiece computes it. Words are the pre-tokens counted
 * with every cut but the one before U+2581 switched off (pretok_count.c). */
#include <math.h>
#include <stdlib.h>

#include "trainer_internal.h"

typedef struct { const char *s; uint32_t len; int64_t cnt; } witem;

/* sentencepiece's Sorted(): count descending, then the key ascending. */
static int cmp_witem(const void *x, const void *y)
{
    const witem *a = x, *b = y;
    if (a->cnt != b->cnt) return a->cnt > b->cnt ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Pieces past the special ones, up to the vocabulary (all with use_all_vocab),
 * then the model: the size is checked as sentencepiece's Serialize does. */
static int finish(struct tkm_trainer *t, tkmi_vbase *vb, witem *w, size_t nw, int64_t sum, tkm_model **out)
{
    const tkm_train_options *o = &t->o;
    size_t room = (size_t)(vb->V - vb->n_meta);
    size_t n = o->use_all_vocab || nw < room ? nw : room;
    const char **strs = tkmi_malloc((n + 1) * sizeof *strs);
    uint32_t *lens = tkmi_malloc((n + 1) * sizeof *lens);
    float *scores = tkmi_malloc((n + 1) * sizeof *scores);
    int rc = (!strs || !lens || !scores) ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    const float logsum = logf((float)sum);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        strs[i] = w[i].s;
        lens[i] = w[i].len;
        scores[i] = logf((float)w[i].cnt) - logsum;
    }
    int total = vb->n_meta + (int)n;
    if (rc == 0 && o->use_all_vocab && total > vb->V) {
        /* sentencepiece raises vocab_size to fit every piece */
        tkmi_metap *ns = tkmi_realloc(vb->slots, (size_t)total * sizeof *ns);
        if (!ns) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        else {
            memset(ns + vb->V, 0, (size_t)(total - vb->V) * sizeof *ns);
            vb->slots = ns;
            vb->V = total;
        }
    }
    if (rc == 0 && o->model_type == TKM_MODEL_WORD && o->hard_vocab_limit && !o->use_all_vocab && total != vb->V)
        rc = tkmi_error(TKM_EVOCAB, "vocabulary size too high (%d): please set it to a value <= %d (or use "
                        "hard_vocab_limit=false)", vb->V, total);
    if (rc == 0) {
        t->stats.pieces_normal = (int)n;
        rc = tkmi_vbase_write(t, vb, total < vb->V ? total : vb->V, strs, lens, scores, n, out);
    }
    tkmi_free((void *)strs);
    tkmi_free(lens);
    tkmi_free(scores);
    return rc;
}

int tkmi_char_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out)
{
    tkmi_vbase vb;
    int rc = tkmi_vbase_init(t, counts, &vb);
    size_t n = t->o.use_all_vocab ? vb.nch : vb.nreq;
    witem *w = rc == 0 ? tkmi_malloc((n + 1) * sizeof *w) : NULL;
    char *buf = rc == 0 ? tkmi_malloc(n * 4 + 1) : NULL;
    if (rc == 0 && (!w || !buf)) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    int64_t sum = 0;
    size_t off = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* vb.chars is sorted by count, then code point: Sorted() order */
        int k = tkmi_utf8_encode(vb.chars[i].cp, buf + off);
        w[i] = (witem){buf + off, (uint32_t)k, vb.chars[i].cnt};
        off += (size_t)k;
        sum += vb.chars[i].cnt;
    }
    if (rc == 0) rc = finish(t, &vb, w, n, sum, out);
    tkmi_free(w);
    tkmi_free(buf);
    tkmi_vbase_free(&vb);
    return rc;
}

int tkmi_word_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out)
{
    tkmi_vbase vb;
    int rc = tkmi_vbase_init(t, counts, &vb);
    witem *w = rc == 0 ? tkmi_malloc((counts->n + 1) * sizeof *w) : NULL;
    if (rc == 0 && !w) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    size_t nw = 0;
    int64_t sum = 0;
    /* sentencepiece turns characters outside the coverage into U+2047
     * before counting words, so a word holding one is never a piece */
    size_t nkeep = t->o.use_all_vocab ? vb.nch : vb.nreq;
    for (size_t i = 0; rc == 0 && i < nkeep; i++) vb.cm.sym[tkmi_cpmap_slot(&vb.cm, vb.chars[i].cp)] = 1;
    tkmi_citer it;
    tkmi_centry e;
    const tkmi_centry *c = &e;
    tkmi_counts_iter(counts, 0, 1, &it);
    while (rc == 0 && tkmi_counts_next(&it, &e)) {
        const char *s = c->key;
        sum += c->count;
        /* words holding sentencepiece's unknown mark U+2047 are never pieces */
        int unk = 0;
        for (size_t i = 0; i < c->len && !unk;) {
            int mb;
            int32_t cp = tkmi_utf8_decode((const uint8_t *)s + i, c->len - i, &mb);
            unk = cp == 0x2047 || vb.cm.sym[tkmi_cpmap_slot(&vb.cm, (uint32_t)cp)] != 1;
            i += (size_t)mb;
        }
        /* a special piece's string is not a word piece (it would be a duplicate) */
        if (!unk && tkmi_strmap_get(&vb.meta, s, c->len) < 0) w[nw++] = (witem){s, (uint32_t)c->len, c->count};
    }
    if (rc == 0) {
        qsort(w, nw, sizeof *w, cmp_witem);
        rc = sum > 0 ? finish(t, &vb, w, nw, sum, out) : tkmi_error(TKM_EEMPTY, "no input: the corpus has no words");
    }
    tkmi_free(w);
    tkmi_vbase_free(&vb);
    return rc;
}
