/* dp.c - sentencepiece's differential privacy options for the Unigram
 * trainer (enable_differential_privacy, differential_privacy_noise_level,
 * differential_privacy_clipping_threshold).
 *
 * What sentencepiece does (trainer_interface.cc, LoadSentences, after
 * normalization and before the characters are counted): to the count of
 * every input row it adds a draw from a normal distribution of standard
 * deviation noise_level (when noise_level > 0), rounds max(0, count +
 * noise) to an integer, sets counts below clipping_threshold to 0, and
 * drops the rows counted 0. Its rows are the input's lines, or with
 * input_format=tsv the WORD<TAB>COUNT rows it is meant for (the flag's own
 * documentation: "Use it with TSV input format").
 *
 * Here the same steps apply to each unique pre-token's count, before the
 * character coverage and the seeds see them. The noise is not drawn from a
 * generator that walks the rows in some order: each pre-token's draw comes
 * from a 64-bit hash of (random_seed, its bytes) (two uniforms, Box-Muller),
 * so the model depends on the seed and the corpus only, not on the thread
 * count, the table order or the input order. */
#include <math.h>

#include "trainer_internal.h"

/* A uniform in (0, 1) from the top 53 bits of h. */
static double unit(uint64_t h) { return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* One standard normal draw for the string s under seed. */
double tkmi_dp_normal(uint64_t seed, const char *s, size_t len)
{
    uint64_t h = tkmi_hash_u64(tkmi_hash_bytes(s, len) ^ tkmi_hash_u64(seed ^ 0x5DEECE66Dull));
    uint64_t h2 = tkmi_hash_u64(h + 0x9E3779B97F4A7C15ull);
    return sqrt(-2.0 * log(unit(h))) * cos(2.0 * M_PI * unit(h2));
}

int64_t tkmi_dp_count(const tkm_train_options *o, const char *s, size_t len, int64_t count)
{
    if (o->differential_privacy_noise_level > 0) {
        double v = (double)count + o->differential_privacy_noise_level * tkmi_dp_normal(o->random_seed, s, len);
        v = round(v > 0 ? v : 0);
        count = v >= 9.2e18 ? INT64_MAX : (int64_t)v;
    }
    if ((uint64_t)count < o->differential_privacy_clipping_threshold) count = 0;
    return count;
}

int tkmi_dp_apply(const tkm_train_options *o, tkmi_counts *c, uint64_t *dropped_unique, uint64_t *dropped_occurrences)
{
    *dropped_unique = *dropped_occurrences = 0;
    if (!o->enable_differential_privacy) return 0;
    size_t kept = 0;
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(c, 0, 1, &it);
    while (tkmi_counts_next(&it, &e)) {
        int64_t n = tkmi_dp_count(o, e.key, e.len, e.count);
        if (n == 0) {
            (*dropped_unique)++;
            *dropped_occurrences += (uint64_t)e.count;
        }
        /* count 0 empties the entry: the table is only walked from here on */
        tkmi_counts_set(c, e.id, n);
        kept += n != 0;
    }
    c->n = kept;
    return 0;
}
