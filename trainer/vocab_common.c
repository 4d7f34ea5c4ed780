/* vocab_common.c - what the BPE and Unigram trainers share: special pieces
 * at their ids, character coverage, the pre-token budget under
 * --max-memory, and writing the ModelProto. */
#include <stdio.h>
#include <stdlib.h>

#include "trainer_internal.h"
#include "uwords.h"

/* ---- the pre-token budget under --max-memory ----
 * What the trainer holds per unique pre-token grows with their number,
 * which counting bounds only while they are counted (count_spill.c). When
 * the trainer's estimate for all of them is over its budget, the rare ones
 * are a threshold sample (below) whose expected estimate fits the budget.
 * The estimate, by pre-token: BPE's
 * merge loop (bpe_train.c's merge_bytes), the Unigram words at their peak
 * (uwords.c's tkmi_uwords_peak). The histogram is built from the table, or
 * while a spill's runs are merged so that only what is kept is loaded. */
uint64_t tkmi_mb_budget(const struct tkm_trainer *t, int model)
{
    /* TKM_BPE_MERGE_BUDGET, TKM_UNIGRAM_WORD_BUDGET: bytes instead (0:
     * none), for tests. Unigram's words get half of the limit: the other
     * half is for the seeds' counting, the pieces, the passes and the
     * lattice cache (which takes what is left, lat_budget). */
    const char *env = getenv(model == TKM_MODEL_BPE ? "TKM_BPE_MERGE_BUDGET" : "TKM_UNIGRAM_WORD_BUDGET");
    if (env) return strtoull(env, NULL, 10);
    return model == TKM_MODEL_BPE ? t->o.max_memory : t->o.max_memory / 2;
}

double tkmi_mb_cost(const tkmi_mb_hist *h, size_t len, size_t nchars)
{
    return h->model == TKM_MODEL_BPE ? tkmi_mb_bytes(nchars, h->narrow) : tkmi_uwords_peak(len);
}

/* A threshold sample, not a cut. Leaving out every pre-token counted once
 * loses the text they hold, and rare pre-tokens hold much of it where they
 * are long: on 89 MB of real text, those counted once are 2.5% of the
 * occurrences but most of the Japanese bytes, and leaving them out cost
 * 10% more tokens on held-out Japanese for Unigram, 3.9% for BPE
 * (bench/README.md). So a pre-token counted c < tau times is kept with probability c / tau (by a
 * hash of its bytes: the same set in any order, thread count or spill) and
 * then counted tau times: every count's expectation is unchanged, and so
 * are, in expectation, the substring counts the seeds and EM work from.
 * tau is the smallest (exact to TKMI_MB_EXACT, then powers of two) whose
 * expected estimate fits the budget. */
static double sample_estimate(const tkmi_mb_hist *h, int64_t tau, double *uniq)
{
    double est = 0, u = 0;
    for (int b = 1; b < TKMI_MB_NB; b++) {
        const tkmi_mb_bucket *x = &h->by[b];
        if (!x->uniq) continue;
        /* a bucket's mean count (exact below TKMI_MB_EXACT; above, tau is a
         * power of two and a bucket lies wholly on one side of it) */
        double c = b < TKMI_MB_EXACT ? (double)b : (double)x->occ / (double)x->uniq;
        double p = c >= (double)tau ? 1.0 : c / (double)tau;
        est += x->bytes * p;
        u += (double)x->uniq * p;
    }
    *uniq = u;
    return est;
}

int64_t tkmi_mb_decide_sample(struct tkm_trainer *t, const tkmi_mb_hist *h, uint64_t budget, uint64_t *kept_uniq)
{
    double u = 0, est = h->all;
    int64_t tau = 0;
    if (budget && h->all > (double)budget) {
        tau = 2;
        est = sample_estimate(h, tau, &u);
        while (est > (double)budget && tau < ((int64_t)1 << 62)) {
            tau = tau < TKMI_MB_EXACT ? tau + 1 : tau * 2;
            est = sample_estimate(h, tau, &u);
        }
    }
    t->stats.merge_bytes_estimate = (uint64_t)est;
    t->stats.merge_drop_below = tau;
    *kept_uniq = (uint64_t)u;
    if (getenv(h->model == TKM_MODEL_BPE ? "TKM_DEBUG_BPE" : "TKM_DEBUG_UNIGRAM"))
        fprintf(stderr, "debug: %s estimate %.3f MB for all pre-tokens, %.3f MB expected kept (sampled below %lld, "
                "about %.0f unique kept)\n", h->model == TKM_MODEL_BPE ? "merge loop" : "Unigram words", h->all / 1e6,
                est / 1e6, (long long)tau, u);
    return tau;
}

int tkmi_mb_none_kept(const struct tkm_trainer *t, int model, uint64_t budget)
{
    return tkmi_error(TKM_ENOMEM,
                      "%s: --max-memory %.1f MB is too small: the sample that fits its %s budget (%.1f MB) kept "
                      "no pre-token; raise --max-memory",
                      model == TKM_MODEL_BPE ? "BPE" : "Unigram", t->o.max_memory / 1048576.0,
                      model == TKM_MODEL_BPE ? "merge loop's" : "words'", budget / 1048576.0);
}

void tkmi_mb_add(tkmi_mb_hist *h, const char *key, size_t len, int64_t c)
{
    size_t ns = tkmi_utf8_chars((const uint8_t *)key, len);
    double b = tkmi_mb_cost(h, len, ns);
    tkmi_mb_bucket *u = &h->by[c < TKMI_MB_EXACT ? c : TKMI_MB_EXACT + (63 - __builtin_clzll((uint64_t)c))];
    u->bytes += b;
    u->uniq++;
    u->occ += (uint64_t)c;
    h->all += b;
    if (ns > h->longest) h->longest = ns;
}


/* ---- characters and coverage ---- */

static int cmp_chcount(const void *x, const void *y)
{
    const tkmi_chcount *a = x, *b = y;
    if (a->req != b->req) return a->req > b->req ? -1 : 1; /* required characters first */
    if (a->cnt != b->cnt) return a->cnt > b->cnt ? -1 : 1;
    return a->cp < b->cp ? -1 : a->cp > b->cp;
}


size_t tkmi_cpmap_slot(tkmi_cpmap *m, uint32_t cp)
{
    size_t i = tkmi_hash_u64(cp + 1) & (m->cap - 1);
    while (m->key[i] && m->key[i] != cp + 1) i = (i + 1) & (m->cap - 1);
    return i;
}

int tkmi_cpmap_add(tkmi_cpmap *m, uint32_t cp, int64_t n)
{
    if ((m->n + 1) * 2 > m->cap) {
        tkmi_cpmap nm = {0};
        nm.cap = m->cap ? m->cap * 2 : 4096;
        nm.key = tkmi_calloc(nm.cap, sizeof *nm.key);
        nm.cnt = tkmi_calloc(nm.cap, sizeof *nm.cnt);
        nm.sym = tkmi_malloc(nm.cap * sizeof *nm.sym);
        if (!nm.key || !nm.cnt || !nm.sym) {
            tkmi_cpmap_free(&nm);
            return tkmi_error(TKM_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->key[i]) continue;
            size_t j = tkmi_cpmap_slot(&nm, m->key[i] - 1);
            nm.key[j] = m->key[i];
            nm.cnt[j] = m->cnt[i];
            nm.sym[j] = m->sym[i];
        }
        nm.n = m->n;
        tkmi_free(m->key); tkmi_free(m->cnt); tkmi_free(m->sym);
        *m = nm;
    }
    size_t i = tkmi_cpmap_slot(m, cp);
    if (!m->key[i]) { m->key[i] = cp + 1; m->cnt[i] = 0; m->sym[i] = -1; m->n++; }
    m->cnt[i] += n;
    return 0;
}

void tkmi_cpmap_free(tkmi_cpmap *m)
{
    tkmi_free(m->key); tkmi_free(m->cnt); tkmi_free(m->sym);
}

/* The characters of the pre-tokens in part `part` of `parts` of a table, each
 * times its pre-token's count: the BMP ones summed in a direct table (no
 * hashing per character), the others (astral, and an invalid byte of an
 * imported key) in a map. One part per counting thread. */
typedef struct {
    const tkmi_counts *counts;
    int part, parts;
    tkmi_chars ch;
    int64_t sum;
    int rc;
} chars_part;

static void *count_chars_part(void *arg)
{
    chars_part *p = arg;
    int64_t sum = 0;
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(p->counts, p->part, p->parts, &it);
    while (tkmi_counts_next(&it, &e)) {
        int64_t c = e.count;
        int64_t n = tkmi_chars_key(&p->ch, (const uint8_t *)e.key, e.len, c);
        if (n < 0) {
            p->rc = (int)n;
            return NULL;
        }
        sum += c * n;
    }
    p->sum = sum;
    return NULL;
}

int tkmi_chars_init(tkmi_chars *p)
{
    memset(p, 0, sizeof *p);
    p->bmp = tkmi_calloc(65536, sizeof *p->bmp);
    p->seen = tkmi_calloc(65536 / 64, sizeof *p->seen);
    return p->bmp && p->seen ? 0 : tkmi_error(TKM_ENOMEM, "out of memory (characters)");
}

void tkmi_chars_free(tkmi_chars *p)
{
    tkmi_free(p->bmp);
    tkmi_free(p->seen);
    tkmi_cpmap_free(&p->other);
    memset(p, 0, sizeof *p);
}

/* Adds every character of every pre-token of counts (times its count) to
 * cm and their total to *all, in up to `threads` parts (at 1 GB this step
 * was ~1 s of serial hashing). The BMP characters enter cm at the end in
 * code point order, the others after; the sums do not depend on the parts,
 * only cm's slot layout does, which nothing reads in order. */
static int count_chars(const tkmi_counts *counts, int threads, const tkmi_chars *extra, int64_t extra_sum,
                       tkmi_cpmap *cm, int64_t *all)
{
    int np = threads < 1 ? 1 : threads > 16 ? 16 : threads;
    if (counts->n < ((size_t)1 << 19)) np = 1; /* small: not worth a thread */
    chars_part part[16];
    pthread_t th[16];
    int started[16] = {0}, rc = 0;
    memset(part, 0, sizeof part);
    for (int i = 0; i < np; i++) {
        part[i] = (chars_part){counts, i, np, {0}, 0, 0};
        if (tkmi_chars_init(&part[i].ch) < 0) rc = TKM_ENOMEM;
    }
    for (int i = 1; rc == 0 && i < np; i++) started[i] = pthread_create(&th[i], NULL, count_chars_part, &part[i]) == 0;
    if (rc == 0) count_chars_part(&part[0]);
    for (int i = 1; rc == 0 && i < np; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        else count_chars_part(&part[i]); /* no thread: here */
    }
    int64_t sum = 0;
    for (int i = 0; rc == 0 && i < np; i++) {
        if (part[i].rc < 0) rc = tkmi_error(part[i].rc, "out of memory (characters)");
        sum += part[i].sum;
        for (size_t k = 0; i > 0 && k < 65536 / 64; k++) part[0].ch.seen[k] |= part[i].ch.seen[k];
        for (size_t cp = 0; i > 0 && cp < 65536; cp++) part[0].ch.bmp[cp] += part[i].ch.bmp[cp];
    }
    /* the pre-tokens a spill left out of the table (count_spill.c) */
    for (size_t k = 0; rc == 0 && extra && k < 65536 / 64; k++) part[0].ch.seen[k] |= extra->seen[k];
    for (size_t cp = 0; rc == 0 && extra && cp < 65536; cp++) part[0].ch.bmp[cp] += extra->bmp[cp];
    for (uint32_t cp = 0; rc == 0 && cp < 65536; cp++)
        if (part[0].ch.seen[cp >> 6] >> (cp & 63) & 1) rc = tkmi_cpmap_add(cm, cp, part[0].ch.bmp[cp]);
    for (int i = 0; i < np; i++) {
        for (size_t k = 0; rc == 0 && k < part[i].ch.other.cap; k++)
            if (part[i].ch.other.key[k]) rc = tkmi_cpmap_add(cm, part[i].ch.other.key[k] - 1, part[i].ch.other.cnt[k]);
        tkmi_chars_free(&part[i].ch);
    }
    for (size_t k = 0; rc == 0 && extra && k < extra->other.cap; k++)
        if (extra->other.key[k]) rc = tkmi_cpmap_add(cm, extra->other.key[k] - 1, extra->other.cnt[k]);
    *all += sum + extra_sum;
    return rc < 0 ? rc : 0;
}

/* ---- model serialization ---- */

static void write_trainer_spec(tkmi_pb *pb, const struct tkm_trainer *t, int vocab)
{
    const tkm_train_options *o = &t->o;
    tkmi_pb sub = {0};
    for (int i = 0; i < t->n_inputs; i++) tkmi_pb_str(&sub, 1, t->inputs[i]);
    tkmi_pb_int(&sub, 3, o->model_type);
    tkmi_pb_int(&sub, 4, vocab);
    tkmi_pb_float(&sub, 10, o->character_coverage);
    if (o->model_type == TKM_MODEL_UNIGRAM) {
        tkmi_pb_int(&sub, 14, o->seed_size);
        tkmi_pb_float(&sub, 15, o->shrinking_factor);
        tkmi_pb_int(&sub, 17, o->num_sub_iterations);
    }
    tkmi_pb_int(&sub, 20, o->max_piece_length);
    tkmi_pb_int(&sub, 21, o->split_by_unicode_script);
    tkmi_pb_int(&sub, 22, o->split_by_whitespace);
    tkmi_pb_int(&sub, 23, o->split_by_number);
    tkmi_pb_int(&sub, 24, o->treat_whitespace_as_suffix != 0);
    tkmi_pb_int(&sub, 25, o->split_digits);
    tkmi_pb_int(&sub, 26, o->allow_whitespace_only_pieces);
    for (int i = 0; i < o->n_control; i++) tkmi_pb_str(&sub, 30, o->control_symbols[i]);
    for (int i = 0; i < o->n_user_defined; i++) tkmi_pb_str(&sub, 31, o->user_defined_symbols[i]);
    tkmi_pb_int(&sub, 32, 1);
    tkmi_pb_int(&sub, 33, o->hard_vocab_limit);
    tkmi_pb_int(&sub, 35, o->byte_fallback);
    if (o->required_chars && *o->required_chars) tkmi_pb_str(&sub, 36, o->required_chars);
    tkmi_pb_int(&sub, 40, o->unk_id);
    tkmi_pb_int(&sub, 41, o->bos_id);
    tkmi_pb_int(&sub, 42, o->eos_id);
    tkmi_pb_int(&sub, 43, o->pad_id);
    tkmi_pb_str(&sub, 44, o->unk_surface);
    tkmi_pb_str(&sub, 45, o->unk_piece);
    tkmi_pb_str(&sub, 46, o->bos_piece);
    tkmi_pb_str(&sub, 47, o->eos_piece);
    tkmi_pb_str(&sub, 48, o->pad_piece);
    if (o->pretokenization_delimiter && *o->pretokenization_delimiter) tkmi_pb_str(&sub, 53, o->pretokenization_delimiter);
    if (o->seed_sentencepieces_file) tkmi_pb_str(&sub, 54, o->seed_sentencepieces_file);
    if (o->enable_differential_privacy) { /* as sentencepiece records them */
        tkmi_pb_int(&sub, 50, 1);
        tkmi_pb_float(&sub, 51, (float)o->differential_privacy_noise_level);
        tkmi_pb_int(&sub, 52, (int64_t)o->differential_privacy_clipping_threshold);
    }
    if (sub.err) pb->err = 1;
    tkmi_pb_bytes(pb, 2, sub.p, sub.n);
    tkmi_free(sub.p);
}

static void write_normalizer_spec(tkmi_pb *pb, const struct tkm_trainer *t)
{
    const tkm_train_options *o = &t->o;
    tkmi_pb sub = {0};
    tkmi_pb_str(&sub, 1, t->norm_name ? t->norm_name : "identity");
    if (t->charsmap) tkmi_pb_bytes(&sub, 2, t->charsmap, t->charsmap_len);
    tkmi_pb_int(&sub, 3, o->add_dummy_prefix);
    tkmi_pb_int(&sub, 4, o->remove_extra_whitespaces);
    tkmi_pb_int(&sub, 5, 1);
    if (t->norm_tsv) tkmi_pb_str(&sub, 6, t->norm_tsv);
    if (sub.err) pb->err = 1;
    tkmi_pb_bytes(pb, 3, sub.p, sub.n);
    tkmi_free(sub.p);
}

static void write_piece(tkmi_pb *pb, const char *s, size_t len, float score, int type)
{
    tkmi_pb sub = {0};
    tkmi_pb_bytes(&sub, 1, s, len);
    tkmi_pb_float(&sub, 2, score);
    if (type != TKM_PIECE_NORMAL) tkmi_pb_int(&sub, 3, type);
    if (sub.err) pb->err = 1;
    tkmi_pb_bytes(pb, 1, sub.p, sub.n);
    tkmi_free(sub.p);
}

static int place_meta(tkmi_metap *slots, int cap, int id, const char *s, int type, const char *what)
{
    TKM_RETURN_ERROR_IF(id >= cap, TKM_EINVAL, "%s id %d is outside the vocabulary (size %d)", what, id, cap);
    TKM_RETURN_ERROR_IF(slots[id].s, TKM_EINVAL, "%s id %d is already taken by %s", what, id, slots[id].s);
    slots[id] = (tkmi_metap){s, strlen(s), type};
    return 0;
}

static int next_free(tkmi_metap *slots, int cap, const char *s, int type)
{
    for (int id = 0; id < cap; id++)
        if (!slots[id].s) { slots[id] = (tkmi_metap){s, strlen(s), type}; return id; }
    return tkmi_error(TKM_EVOCAB, "vocab size %d is too small for the special pieces (at %s)", cap, s);
}

int tkmi_vbase_init(struct tkm_trainer *t, const tkmi_counts *counts, tkmi_vbase *vb)
{
    const tkm_train_options *o = &t->o;
    int rc = 0;
    memset(vb, 0, sizeof *vb);
    for (int k = 0; k < TKMI_N_CLASSES; k++) { /* set by balancing (BPE) */
        t->stats.class_target[k] = -1;
        t->stats.balance_short[k] = t->stats.balance_gained[k] = 0;
    }
    TKM_RETURN_ERROR_IF(o->enable_differential_privacy && o->model_type != TKM_MODEL_UNIGRAM, TKM_EINVAL,
                        "differential privacy is for Unigram models only (as sentencepiece documents it)");
    int V = vb->V = o->vocab_size;
    tkmi_metap *slots = vb->slots = tkmi_calloc((size_t)V, sizeof *slots);
    TKM_RETURN_ERROR_IF(!slots, TKM_ENOMEM, "out of memory");
    if ((rc = place_meta(slots, V, o->unk_id, o->unk_piece, TKM_PIECE_UNKNOWN, "unk")) < 0) return rc;
    if (o->bos_id >= 0 && (rc = place_meta(slots, V, o->bos_id, o->bos_piece, TKM_PIECE_CONTROL, "bos")) < 0) return rc;
    if (o->eos_id >= 0 && (rc = place_meta(slots, V, o->eos_id, o->eos_piece, TKM_PIECE_CONTROL, "eos")) < 0) return rc;
    if (o->pad_id >= 0 && (rc = place_meta(slots, V, o->pad_id, o->pad_piece, TKM_PIECE_CONTROL, "pad")) < 0) return rc;
    for (int i = 0; i < o->n_control; i++)
        if ((rc = next_free(slots, V, o->control_symbols[i], TKM_PIECE_CONTROL)) < 0) return rc;
    for (int i = 0; i < o->n_user_defined; i++)
        if ((rc = next_free(slots, V, o->user_defined_symbols[i], TKM_PIECE_USER_DEFINED)) < 0) return rc;
    if (o->byte_fallback)
        for (int i = 0; i < 256; i++) {
            snprintf(vb->byte_names[i], sizeof vb->byte_names[i], "<0x%02X>", i);
            if ((rc = next_free(slots, V, vb->byte_names[i], TKM_PIECE_BYTE)) < 0) return rc;
        }
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&vb->meta, 512));
    for (int id = 0; id < V; id++)
        if (slots[id].s) {
            vb->n_meta++;
            rc = tkmi_strmap_put(&vb->meta, slots[id].s, slots[id].len, id);
            if (rc < 0) return rc;
            TKM_RETURN_ERROR_IF(rc == 0, TKM_EINVAL, "special piece %s is given twice", slots[id].s);
        }
    /* characters: sort by count desc, keep them until the covered share
     * reaches the target (sentencepiece's rule) */
    int64_t all = 0;
    rc = count_chars(counts, o->threads, t->chars_extra, t->chars_extra_sum, &vb->cm, &all);
    if (t->chars_extra) { /* used once */
        tkmi_chars_free(t->chars_extra);
        tkmi_free(t->chars_extra);
        t->chars_extra = NULL;
    }
    if (rc < 0) return rc;
    TKM_RETURN_ERROR_IF(all == 0, TKM_EEMPTY, "no input: the corpus has no characters to learn from");
    /* required_chars (sentencepiece's): sorted before all others, so the
     * coverage keeps them first, even with a count of 0 */
    const uint8_t *rq = (const uint8_t *)(o->required_chars ? o->required_chars : "");
    size_t rql = strlen((const char *)rq);
    for (size_t i = 0; i < rql;) {
        int mb;
        int32_t cp = tkmi_utf8_decode(rq + i, rql - i, &mb);
        TKM_RETURN_ERROR_IF(cp < 0, TKM_EINVAL, "required_chars: invalid UTF-8 at byte %zu", i);
        TKM_FORWARD_IF_ERROR(tkmi_cpmap_add(&vb->cm, (uint32_t)cp, 0));
        i += (size_t)mb;
    }
    vb->chars = tkmi_malloc((vb->cm.n + 1) * sizeof *vb->chars);
    TKM_RETURN_ERROR_IF(!vb->chars, TKM_ENOMEM, "out of memory");
    size_t nch = 0;
    for (size_t i = 0; i < vb->cm.cap; i++)
        if (vb->cm.key[i]) vb->chars[nch++] = (tkmi_chcount){.cp = vb->cm.key[i] - 1, .cnt = vb->cm.cnt[i]};
    for (size_t i = 0; i < nch; i++)
        for (size_t k = 0; k < rql;) {
            int mb;
            int32_t cp = tkmi_utf8_decode(rq + k, rql - k, &mb);
            if ((uint32_t)cp == vb->chars[i].cp) { vb->chars[i].req = 1; break; }
            k += (size_t)mb;
        }
    qsort(vb->chars, nch, sizeof *vb->chars, cmp_chcount);
    int64_t acc = 0;
    size_t nreq = 0;
    for (size_t i = 0; i < nch; i++) {
        if ((double)acc / (double)all >= (double)o->character_coverage) break;
        acc += vb->chars[i].cnt;
        nreq++;
    }
    /* U+001F is sentencepiece 0.2.x's boundary mark (meta pieces and the
     * pretokenization delimiter become it): it counts towards the coverage
     * but is never a piece */
    for (size_t i = 0; i < nreq; i++)
        if (vb->chars[i].cp == 0x1F) {
            tkmi_chcount b = vb->chars[i];
            memmove(vb->chars + i, vb->chars + i + 1, (nch - i - 1) * sizeof *vb->chars);
            vb->chars[nch - 1] = b;
            nreq--;
            break;
        }
    /* the kept characters in count order again (sentencepiece's Sorted()) */
    for (size_t i = 0; i < nch; i++) vb->chars[i].req = 0;
    qsort(vb->chars, nreq, sizeof *vb->chars, cmp_chcount);
    vb->nch = nch;
    vb->nreq = nreq;
    vb->all = all;
    vb->acc = acc;
    t->stats.chars_total = (uint64_t)all;
    t->stats.chars_unique = nch;
    t->stats.chars_required = nreq;
    t->stats.chars_dropped_occurrences = (uint64_t)(all - acc);
    return 0;
}

void tkmi_vbase_free(tkmi_vbase *vb)
{
    tkmi_free(vb->slots);
    tkmi_free(vb->chars);
    tkmi_strmap_free(&vb->meta);
    tkmi_cpmap_free(&vb->cm);
    memset(vb, 0, sizeof *vb);
}

int tkmi_vbase_write(struct tkm_trainer *t, tkmi_vbase *vb, int vocab, const char *const *strs, const uint32_t *lens,
                     const float *scores, size_t n, tkm_model **out)
{
    const tkmi_metap *slots = vb->slots;
    /* the summary's piece classes: specials count as other */
    for (int k = 0; k < TKMI_N_CLASSES; k++) t->stats.class_pieces[k] = 0;
    t->stats.class_pieces[TKMI_CLASS_OTHER] = vb->n_meta;
    for (size_t i = 0; i < n; i++) t->stats.class_pieces[tkmi_balance_class(strs[i], lens[i])]++;
    for (int id = vocab; id < vb->V; id++)
        TKM_RETURN_ERROR_IF(slots[id].s, TKM_EVOCAB, "special piece %s has id %d beyond the reachable vocab size %d",
                            slots[id].s, id, vocab);
    tkmi_pb pb = {0};
    size_t fi = 0;
    for (int id = 0; id < vocab; id++) {
        if (slots[id].s) {
            write_piece(&pb, slots[id].s, slots[id].len, 0.0f, slots[id].type);
            if (slots[id].type == TKM_PIECE_BYTE) t->stats.pieces_byte++;
            else if (slots[id].type == TKM_PIECE_USER_DEFINED) t->stats.pieces_user++;
            else t->stats.pieces_meta++;
        } else if (fi < n) {
            write_piece(&pb, strs[fi], lens[fi], scores[fi], TKM_PIECE_NORMAL);
            fi++;
        }
    }
    write_trainer_spec(&pb, t, vocab);
    write_normalizer_spec(&pb, t);
    if (t->denorm_map) { /* sentencepiece's denormalizer_spec (field 5) */
        tkmi_pb sub = {0};
        tkmi_pb_str(&sub, 1, "user_defined");
        tkmi_pb_bytes(&sub, 2, t->denorm_map, t->denorm_map_len);
        tkmi_pb_int(&sub, 3, 0);
        tkmi_pb_int(&sub, 4, 0);
        tkmi_pb_int(&sub, 5, 0);
        tkmi_pb_str(&sub, 6, t->denorm_tsv);
        if (sub.err) pb.err = 1;
        tkmi_pb_bytes(&pb, 5, sub.p, sub.n);
        tkmi_free(sub.p);
    }
    int rc = pb.err ? tkmi_error(TKM_ENOMEM, "out of memory (model)") : tkm_model_load_mem(pb.p, pb.n, "<trained model>", out);
    tkmi_free(pb.p);
    return rc;
}
