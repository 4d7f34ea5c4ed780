/* balance.c - training from a kept count table: retraining for sweeps (one
 * counting pass, many models) and the count-weights balancing method, which
 * searches per-class count weights so that the merge loop itself reaches
 * the target shares (each trial is one merge loop over the counted table).
 *
 * The kept table is never changed: every run trains on a copy (same slots,
 * same arena, so the merge loop reads the words in the same order and the
 * model is byte-identical to a separate run), with the counts of each
 * pre-token multiplied by its class weight for the weights method. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unicode/uscript.h>

#include "trainer_internal.h"

/* Count weights are integers in units of 1/WEIGHT_ONE: a power of two, so
 * that equal weights scale every count (and the character coverage sums)
 * exactly and give the unweighted model. */
#define WEIGHT_ONE 1024
/* the search: log2 of the Japanese/Latin weight ratio within +-MAX_LOG2,
 * at most MAX_TRIALS merge loops, done when the share is within TOL or
 * the bracket narrower than MIN_BRACKET */
#define MAX_LOG2 8.0
#define MAX_TRIALS 10
#define TOL 0.002
#define MIN_BRACKET 0.02

int tkm_trainer_finish_counting(tkm_trainer *t)
{
    if (t->kept_ok) return 0;
    int rc = tkmi_cf_finish(t, &t->kept); /* text and count files */
    t->stats.seconds_count = tkmi_now() - t->t_start;
    if (rc < 0) {
        tkmi_counts_free(&t->kept);
        return rc;
    }
    t->kept_ok = 1;
    return 0;
}

/* Class of a pre-token for count weights: japanese if it holds a Han,
 * Hiragana or Katakana character (or U+30FC), else latin if it holds a
 * Latin-script letter, else other. */
static int pretok_class(const uint8_t *s, size_t n)
{
    const uint8_t *bmp = tkmi_script_bmp();
    int latin = 0;
    for (size_t i = 0; i < n;) {
        int mb = 1;
        int32_t cp = tkmi_utf8_decode(s + i, n - i, &mb);
        i += (size_t)(mb > 0 ? mb : 1);
        if (cp < 0) continue;
        int sc = cp < 0x10000 ? bmp[cp] : tkmi_script((uint32_t)cp);
        if (sc == USCRIPT_HAN) return TKMI_CLASS_JAPANESE;
        if (sc == USCRIPT_LATIN) latin = 1;
    }
    return latin ? TKMI_CLASS_LATIN : TKMI_CLASS_OTHER;
}

/* A copy of src whose counts are multiplied by w[cls[i]], i the entry's
 * place in the walk (cls NULL: a plain copy; a copy walks in src's order). */
static int counts_copy(const tkmi_counts *src, const uint8_t *cls, const int64_t *w, tkmi_counts *dst)
{
    TKM_FORWARD_IF_ERROR(tkmi_counts_copy(src, dst));
    if (cls) {
        tkmi_citer it;
        tkmi_centry e;
        size_t i = 0;
        tkmi_counts_iter(dst, 0, 1, &it);
        while (tkmi_counts_next(&it, &e)) tkmi_counts_set(dst, e.id, e.count * w[cls[i++]]);
    }
    return 0;
}

/* One model from a copy of the kept table. */
static int train_copy(struct tkm_trainer *c, const uint8_t *cls, const int64_t *w, tkm_model **out)
{
    tkmi_counts counts;
    c->stats.pieces_meta = c->stats.pieces_byte = c->stats.pieces_user = 0; /* counted up by the serializer */
    /* (so are the --max-memory sample's: each trial's own) */
    c->stats.merge_dropped_unique = c->stats.merge_dropped_occurrences = c->stats.sampled_unique = 0;
    c->stats.merge_drop_below = 0;
    c->stats.merge_bytes_estimate = 0;
    TKM_FORWARD_IF_ERROR(counts_copy(&c->kept, cls, w, &counts));
    int rc = c->o.model_type == TKM_MODEL_UNIGRAM ? tkmi_unigram_train(c, &counts, out)
             : c->o.model_type == TKM_MODEL_CHAR  ? tkmi_char_train(c, &counts, out)
             : c->o.model_type == TKM_MODEL_WORD  ? tkmi_word_train(c, &counts, out)
                                                  : tkmi_bpe_train(c, &counts, out);
    tkmi_counts_free(&counts);
    return rc;
}

static void weights_at(double x, int64_t w[TKMI_N_CLASSES])
{
    /* the ratio japanese/latin is 2^x, split evenly around 1 so that
     * "other" keeps about its natural place between them */
    w[TKMI_CLASS_LATIN] = llround(WEIGHT_ONE * exp2(-x / 2));
    w[TKMI_CLASS_JAPANESE] = llround(WEIGHT_ONE * exp2(x / 2));
    w[TKMI_CLASS_OTHER] = WEIGHT_ONE;
}

/* The quantity the weights steer and its goal: with both targets the
 * japanese part of latin + japanese, else the share of the one class. */
static double steer(const tkm_train_options *o, const int pieces[3], int V)
{
    if (o->balance_latin >= 0 && o->balance_japanese >= 0) {
        int lj = pieces[TKMI_CLASS_LATIN] + pieces[TKMI_CLASS_JAPANESE];
        return lj ? (double)pieces[TKMI_CLASS_JAPANESE] / lj : 0.5;
    }
    if (o->balance_japanese >= 0) return (double)pieces[TKMI_CLASS_JAPANESE] / V;
    return 1.0 - (double)pieces[TKMI_CLASS_LATIN] / V; /* latin only: rises with x too */
}

static double steer_goal(const tkm_train_options *o)
{
    if (o->balance_latin >= 0 && o->balance_japanese >= 0) {
        double s = (double)o->balance_latin + o->balance_japanese;
        return s > 0 ? o->balance_japanese / s : 0.5;
    }
    if (o->balance_japanese >= 0) return o->balance_japanese;
    return 1.0 - o->balance_latin;
}

/* balance_method weights: a search on x = log2(japanese/latin weight) by
 * bracketing then false position (Illinois), each trial an unbalanced merge
 * loop; the model is then trained with the best weights and the budgets on
 * top, which makes the shares exact (and share the surplus of a class that
 * cannot fill). Deterministic: the trials depend on the counts only. */
static int weights_train(struct tkm_trainer *c, tkm_model **out)
{
    const tkmi_counts *k = &c->kept;
    uint8_t *cls = tkmi_malloc(k->n ? k->n : 1);
    TKM_RETURN_ERROR_IF(!cls, TKM_ENOMEM, "out of memory (pre-token classes)");
    {
        tkmi_citer it;
        tkmi_centry e;
        size_t i = 0;
        tkmi_counts_iter(k, 0, 1, &it);
        while (i < k->n && tkmi_counts_next(&it, &e)) cls[i++] = (uint8_t)pretok_class((const uint8_t *)e.key, e.len);
    }
    tkm_train_options keep = c->o;
    double goal = steer_goal(&keep);
    int rc = 0, trials = 0;
    double bx = 0, bd = INFINITY;
    double xl = 0, fl = 0, xh = 0, fh = 0; /* bracket: f(xl) < 0 < f(xh) */
    int have_l = 0, have_h = 0, side = 0;
    double x = 0, step = 1;
    int64_t w[TKMI_N_CLASSES];
    c->o.balance_latin = c->o.balance_japanese = -1; /* trials: no budgets */
    while (trials < MAX_TRIALS) {
        weights_at(x, w);
        tkm_model *m = NULL;
        if ((rc = train_copy(c, cls, w, &m)) < 0) break;
        int V = tkm_model_size(m);
        tkm_model_free(m);
        trials++;
        double f = steer(&keep, c->stats.class_pieces, V) - goal;
        if (getenv("TKM_DEBUG_BALANCE"))
            fprintf(stderr, "debug: weights trial %d: x %.4f (latin %lld, japanese %lld /%d): pieces %d %d %d, off %+.4f\n",
                    trials, x, (long long)w[0], (long long)w[1], WEIGHT_ONE, c->stats.class_pieces[0],
                    c->stats.class_pieces[1], c->stats.class_pieces[2], f);
        if (fabs(f) < bd) { bd = fabs(f); bx = x; }
        if (fabs(f) <= TOL) break;
        if (f < 0) { xl = x; fl = f; have_l = 1; if (side == -1) fh /= 2; side = -1; }
        else { xh = x; fh = f; have_h = 1; if (side == 1) fl /= 2; side = 1; }
        /* counts are integers: the shares move in steps (a whole level of
         * pairs counted 2 or 3 crosses the cut at once), so stop when the
         * bracket is narrow */
        if (have_l && have_h && fabs(xh - xl) < MIN_BRACKET) break;
        if (have_l && have_h) {
            x = xl - fl * (xh - xl) / (fh - fl); /* false position, Illinois-modified */
        } else {
            x += f < 0 ? step : -step; /* widen until the goal is bracketed */
            step *= 2;
            if (fabs(x) > MAX_LOG2) {
                x = x > 0 ? MAX_LOG2 : -MAX_LOG2;
                if ((f < 0 && have_l && xl >= MAX_LOG2) || (f > 0 && have_h && xh <= -MAX_LOG2)) break;
            }
        }
        if (fabs(x - bx) < 1e-4 && trials > 1) break;
    }
    if (rc == 0) {
        c->o = keep;
        weights_at(bx, w);
        rc = train_copy(c, cls, w, out);
        for (int j = 0; j < TKMI_N_CLASSES; j++) c->stats.balance_weight[j] = (double)w[j] / WEIGHT_ONE;
        c->stats.balance_trials = trials;
    }
    c->o = keep;
    tkmi_free(cls);
    return rc;
}

static void clear_run_stats(tkm_train_stats *s)
{
    s->merges = s->pieces_normal = s->pieces_meta = s->pieces_byte = s->pieces_user = s->pieces_char = 0;
    s->seconds_merge = 0;
    s->seed_candidates = s->seeds = 0;
    s->seed_passes = 0;
    for (int k = 0; k < 3; k++) {
        s->class_pieces[k] = 0;
        s->class_target[k] = -1;
        s->balance_short[k] = s->balance_gained[k] = 0;
        s->balance_weight[k] = 0;
    }
    s->balance_trials = 0;
}

/* The checks of tkm_trainer_retrain's options. */
static int retrain_check(const tkm_trainer *t, const tkm_train_options *o)
{
    TKM_RETURN_ERROR_IF(!t->kept_ok, TKM_EINVAL, "tkm_trainer_retrain: the counting is not finished (tkm_trainer_finish_counting)");
    TKM_RETURN_ERROR_IF(o->model_type != TKM_MODEL_BPE && o->model_type != TKM_MODEL_UNIGRAM &&
                            o->model_type != TKM_MODEL_CHAR && o->model_type != TKM_MODEL_WORD,
                        TKM_ENOTSUP, "model type %d is not supported (BPE, Unigram, char, word)", o->model_type);
    TKM_RETURN_ERROR_IF(o->vocab_size < 1 || o->vocab_size > (1 << 20), TKM_EINVAL, "vocab size %d out of range", o->vocab_size);
    TKM_RETURN_ERROR_IF(o->balance_latin > 1 || o->balance_japanese > 1 ||
                            (o->balance_latin > 0 ? o->balance_latin : 0) + (o->balance_japanese > 0 ? o->balance_japanese : 0) > 1.0f,
                        TKM_EINVAL, "balance targets must be shares between 0 and 1 summing to at most 1");
    TKM_RETURN_ERROR_IF(o->model_type != TKM_MODEL_BPE && (o->balance_latin >= 0 || o->balance_japanese >= 0),
                        TKM_ENOTSUP, "--balance is implemented for BPE only");
    TKM_RETURN_ERROR_IF(o->balance_method != TKM_BALANCE_BUDGET && o->balance_method != TKM_BALANCE_WEIGHTS, TKM_EINVAL,
                        "balance method %d is not supported (budget or weights)", o->balance_method);
    return 0;
}

/* A private shallow copy of t with the training-stage options of o: the
 * trainers write the stats and read the options, so concurrent runs share
 * nothing they write. NULL when out of memory. */
static struct tkm_trainer *retrain_copy(const tkm_trainer *t, const tkm_train_options *o)
{
    struct tkm_trainer *c = tkmi_malloc(sizeof *c);
    if (!c) return NULL;
    memcpy(c, t, sizeof *c);
    c->o.model_type = o->model_type;
    c->o.vocab_size = o->vocab_size;
    c->o.character_coverage = o->character_coverage;
    c->o.hard_vocab_limit = o->hard_vocab_limit;
    c->o.balance_latin = o->balance_latin;
    c->o.balance_japanese = o->balance_japanese;
    c->o.balance_method = o->balance_method;
    c->o.seed_size = o->seed_size;
    c->o.shrinking_factor = o->shrinking_factor;
    c->o.num_sub_iterations = o->num_sub_iterations;
    c->progress = NULL;
    c->progress_ctx = NULL;
    clear_run_stats(&c->stats);
    return c;
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int tkm_trainer_retrain(tkm_trainer *t, const tkm_train_options *o, tkm_model **out, tkm_train_stats *st)
{
    *out = NULL;
    TKM_FORWARD_IF_ERROR(retrain_check(t, o));
    struct tkm_trainer *c = retrain_copy(t, o);
    TKM_RETURN_ERROR_IF(!c, TKM_ENOMEM, "out of memory");
    double t0 = tkmi_now(), c0 = thread_cpu();
    int rc = c->o.model_type == TKM_MODEL_BPE && c->o.balance_method == TKM_BALANCE_WEIGHTS &&
                     (c->o.balance_latin >= 0 || c->o.balance_japanese >= 0)
                 ? weights_train(c, out)
                 : train_copy(c, NULL, NULL, out);
    c->stats.seconds_merge = tkmi_now() - t0;
    c->stats.seconds_merge_cpu = thread_cpu() - c0;
    if (st) *st = c->stats;
    tkmi_free(c);
    return rc;
}

/* ---- many points ---- */

typedef struct {
    tkm_trainer *t;
    const tkm_train_options *o;
    tkm_model **out;
    tkm_train_stats *st;
    int *rc, *todo, n, next;
    pthread_mutex_t mu;
} retrain_pool;

static void *retrain_worker(void *arg)
{
    retrain_pool *P = arg;
    for (;;) {
        pthread_mutex_lock(&P->mu);
        int k = P->next < P->n ? P->next++ : -1;
        pthread_mutex_unlock(&P->mu);
        if (k < 0) return NULL;
        int i = P->todo[k];
        tkm_train_stats st;
        P->rc[i] = tkm_trainer_retrain(P->t, &P->o[i], &P->out[i], &st);
        if (P->st) P->st[i] = st;
    }
}

/* Points that can share one merge loop: BPE, balanced by budgets or not
 * at all, with the other training-stage options of BPE equal. */
static int shares_with(const tkm_train_options *a, const tkm_train_options *b)
{
    return a->model_type == TKM_MODEL_BPE && b->model_type == TKM_MODEL_BPE && a->vocab_size == b->vocab_size &&
           a->character_coverage == b->character_coverage && a->hard_vocab_limit == b->hard_vocab_limit &&
           (a->balance_method == TKM_BALANCE_BUDGET || (a->balance_latin < 0 && a->balance_japanese < 0)) &&
           (b->balance_method == TKM_BALANCE_BUDGET || (b->balance_latin < 0 && b->balance_japanese < 0));
}

int tkm_trainer_retrain_many(tkm_trainer *t, int n, const tkm_train_options *o, tkm_model **out, tkm_train_stats *st,
                             int *rc, int threads)
{
    if (n <= 0) return 0;
    for (int i = 0; i < n; i++) out[i] = NULL;
    int *todo = tkmi_calloc((size_t)n, sizeof *todo), *grp = tkmi_calloc((size_t)n, sizeof *grp);
    struct tkm_trainer **pt = tkmi_calloc((size_t)n, sizeof *pt);
    tkm_model **gout = tkmi_calloc((size_t)n, sizeof *gout);
    int *grc = tkmi_calloc((size_t)n, sizeof *grc);
    int err = 0;
    if (!todo || !grp || !pt || !gout || !grc) err = tkmi_error(TKM_ENOMEM, "out of memory");
    /* the group: the points that share with the first balanced point that
     * can share (unbalanced ones take the trunk's model) */
    int ng = 0, nt = 0, lead = -1;
    for (int i = 0; !err && i < n; i++) {
        if (lead < 0 && retrain_check(t, &o[i]) == 0 && shares_with(&o[i], &o[i]) &&
            (o[i].balance_latin >= 0 || o[i].balance_japanese >= 0))
            lead = i;
    }
    for (int i = 0; !err && i < n; i++) {
        if (lead >= 0 && retrain_check(t, &o[i]) == 0 && shares_with(&o[lead], &o[i])) grp[ng++] = i;
        else todo[nt++] = i;
    }
    if (!err && ng < 2) { /* nothing to share */
        for (int k = 0; k < ng; k++) todo[nt++] = grp[k];
        ng = 0;
    }
    if (!err && ng > 0) {
        tkmi_counts counts;
        for (int k = 0; k < ng && !err; k++)
            if (!(pt[k] = retrain_copy(t, &o[grp[k]]))) err = tkmi_error(TKM_ENOMEM, "out of memory");
        if (!err && (err = counts_copy(&t->kept, NULL, NULL, &counts)) == 0) {
            tkmi_bpe_sweep(pt, ng, &counts, gout, grc, threads);
            tkmi_counts_free(&counts);
            for (int k = 0; k < ng; k++) {
                int i = grp[k];
                out[i] = gout[k];
                rc[i] = grc[k];
                if (st) st[i] = pt[k]->stats;
            }
        }
    }
    if (!err) {
        retrain_pool P = {.t = t, .o = o, .out = out, .st = st, .rc = rc, .todo = todo, .n = nt, .mu = PTHREAD_MUTEX_INITIALIZER};
        pthread_t th[64];
        int started = 0;
        for (int k = 0; k < threads && k < nt && k < 64; k++)
            if (pthread_create(&th[k], NULL, retrain_worker, &P) == 0) started++;
        if (!started) retrain_worker(&P);
        for (int k = 0; k < started; k++) pthread_join(th[k], NULL);
    }
    for (int k = 0; k < n && pt; k++) tkmi_free(pt[k]);
    tkmi_free(todo); tkmi_free(grp); tkmi_free(pt); tkmi_free(gout); tkmi_free(grc);
    if (err) {
        for (int i = 0; i < n; i++) rc[i] = err;
        return err;
    }
    for (int i = 0; i < n; i++)
        if (rc[i] < 0) return rc[i];
    return 0;
}

int tkmi_balance_train(struct tkm_trainer *t, tkm_model **out)
{
    TKM_FORWARD_IF_ERROR(tkm_trainer_finish_counting(t));
    tkm_train_stats st;
    int rc = tkm_trainer_retrain(t, &t->o, out, &st);
    if (rc < 0) return rc;
    st.seconds_total = tkmi_now() - t->t_start;
    t->stats = st;
    return 0;
}
