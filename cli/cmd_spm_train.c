/* cmd_spm_train.c - `tokenmill spm-train`: a drop-in for sentencepiece's
 * spm_train: its flag syntax (absl: --flag=value, --flag value, --flag and
 * --noflag for booleans), its defaults (Unigram, nmt_nfkc, dummy prefix,
 * whitespace squeezing) and its outputs (P.model and P.vocab, written
 * together: both go to temporary files that are renamed only when both are
 * complete). Options that tokenmill does not implement are refused by name. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

/* How an option is handled: implemented, accepted without effect (it cannot
 * change the model), or refused with a reason. */
enum { S_OK, S_NOOP, S_REFUSE };
enum { K_BOOL, K_INT, K_FLOAT, K_STR };

typedef struct {
    const char *name;
    int kind;
    const char *deflt;  /* sentencepiece's default, as text (for --help) */
    const char *help;
    const char *value;  /* as given (NULL: default) */
} spm_flag;

/* Every flag of spm_train (sentencepiece 0.2.x spm_train_main.cc), in its order. */
static spm_flag g_flags[] = {
    {"input", K_STR, "", "comma separated list of input files", NULL},
    {"input_format", K_STR, "", "text (one sentence per line) or tsv (TEXT<TAB>COUNT)", NULL},
    {"model_prefix", K_STR, "", "output model prefix: writes PREFIX.model and PREFIX.vocab", NULL},
    {"model_type", K_STR, "unigram", "model algorithm: unigram, bpe, word or char", NULL},
    {"vocab_size", K_INT, "8000", "vocabulary size", NULL},
    {"accept_language", K_STR, "", "languages of the input (no effect; spm only records it in the model)", NULL},
    {"self_test_sample_size", K_INT, "0", "sentences sampled, encoded and written into the model as its self-test data", NULL},
    {"character_coverage", K_FLOAT, "0.9995", "share of characters covered by the model", NULL},
    {"input_sentence_size", K_INT, "0", "sentences to sample (0: all), as spm: the first N, or with shuffling the same reservoir sample", NULL},
    {"shuffle_input_sentence", K_BOOL, "true", "sample at random (spm's fixed seed) rather than take the first N", NULL},
    {"seed_sentencepiece_size", K_INT, "1000000", "Unigram: seed pieces", NULL},
    {"seed_sentencepieces_file", K_STR, "", "Unigram: seed pieces from PIECE<TAB>FREQ lines instead of the corpus", NULL},
    {"shrinking_factor", K_FLOAT, "0.75", "Unigram: share of pieces kept per pruning round", NULL},
    {"num_threads", K_INT, "16", "threads (tokenmill: counting threads; the model does not depend on it)", NULL},
    {"num_sub_iterations", K_INT, "2", "Unigram: EM rounds per pruning round", NULL},
    {"max_sentencepiece_length", K_INT, "16", "maximum piece length in characters", NULL},
    {"max_sentence_length", K_INT, "4192", "longer lines (in bytes) are skipped, as in spm", NULL},
    {"split_by_unicode_script", K_BOOL, "true", "no piece crosses a script boundary", NULL},
    {"split_by_number", K_BOOL, "true", "no piece joins digits and other characters", NULL},
    {"split_by_whitespace", K_BOOL, "true", "pieces do not cross whitespace (false: \xE2\x96\x81 may sit inside a piece)", NULL},
    {"split_digits", K_BOOL, "false", "every digit is a piece of its own", NULL},
    {"pretokenization_delimiter", K_STR, "", "BPE, Unigram: no piece spans this string, which is removed from the training text", NULL},
    {"treat_whitespace_as_suffix", K_BOOL, "false", "whitespace ends a piece instead of starting it", NULL},
    {"allow_whitespace_only_pieces", K_BOOL, "false", "runs of whitespace may become pieces", NULL},
    {"control_symbols", K_STR, "", "comma separated list of control symbols", NULL},
    {"control_symbols_file", K_STR, "", "file with one control symbol per line", NULL},
    {"user_defined_symbols", K_STR, "", "comma separated list of user defined symbols", NULL},
    {"user_defined_symbols_file", K_STR, "", "file with one user defined symbol per line", NULL},
    {"required_chars", K_STR, "", "characters kept whatever the coverage", NULL},
    {"required_chars_file", K_STR, "", "file of required characters (its lines joined)", NULL},
    {"byte_fallback", K_BOOL, "false", "add <0x00>..<0xFF>; unknown characters become bytes", NULL},
    {"vocabulary_output_piece_score", K_BOOL, "true", "PREFIX.vocab has piece TAB score (false: piece only)", NULL},
    {"normalization_rule_name", K_STR, "nmt_nfkc", "nmt_nfkc, nfkc, nmt_nfkc_cf, nfkc_cf or identity", NULL},
    {"normalization_rule_tsv", K_STR, "", "normalization rules from a TSV file (overrides the name)", NULL},
    {"denormalization_rule_tsv", K_STR, "", "rules applied to decoded text (written as the denormalizer)", NULL},
    {"add_dummy_prefix", K_BOOL, "true", "add a whitespace at the beginning of each line", NULL},
    {"remove_extra_whitespaces", K_BOOL, "true", "strip leading/trailing and squeeze inner whitespace", NULL},
    {"hard_vocab_limit", K_BOOL, "true", "fail when vocab_size cannot be reached", NULL},
    {"use_all_vocab", K_BOOL, "false", "word/char models: every word / character is a piece", NULL},
    {"unk_id", K_INT, "0", "id of <unk>", NULL},
    {"bos_id", K_INT, "1", "id of <s> (-1 disables)", NULL},
    {"eos_id", K_INT, "2", "id of </s> (-1 disables)", NULL},
    {"pad_id", K_INT, "-1", "id of <pad> (-1 disables)", NULL},
    {"unk_piece", K_STR, "<unk>", "unknown piece", NULL},
    {"bos_piece", K_STR, "<s>", "begin-of-sentence piece", NULL},
    {"eos_piece", K_STR, "</s>", "end-of-sentence piece", NULL},
    {"pad_piece", K_STR, "<pad>", "padding piece", NULL},
    {"unk_surface", K_STR, " \xE2\x81\x87 ", "text that <unk> decodes to", NULL},
    {"train_extremely_large_corpus", K_BOOL, "false", "no effect (tokenmill's counts are 64-bit)", NULL},
    {"random_seed", K_INT, "4294967295", "seed of the self-test sample and the differential privacy noise (input_sentence_size: spm's fixed seed)", NULL},
    {"enable_differential_privacy", K_BOOL, "false", "Unigram: noise and clipping on the counts (differential privacy)", NULL},
    {"differential_privacy_noise_level", K_FLOAT, "0", "standard deviation of the normal noise added to each count", NULL},
    {"differential_privacy_clipping_threshold", K_INT, "0", "counts below this (after the noise) are dropped", NULL},
    /* absl's logging flags, which spm_train users pass */
    {"minloglevel", K_INT, "0", "messages below this level are not shown (>= 1: quiet)", NULL},
    {"logtostderr", K_BOOL, "false", "no effect", NULL},
};
#define N_FLAGS ((int)(sizeof g_flags / sizeof *g_flags))

static spm_flag *flag_find(const char *name, size_t len)
{
    for (int i = 0; i < N_FLAGS; i++)
        if (strlen(g_flags[i].name) == len && !strncmp(g_flags[i].name, name, len)) return &g_flags[i];
    return NULL;
}

static const char *flag_get(const char *name)
{
    spm_flag *f = flag_find(name, strlen(name));
    return f->value ? f->value : f->deflt;
}

static int flag_given(const char *name) { return flag_find(name, strlen(name))->value != NULL; }

/* absl's boolean spellings. */
static int parse_bool(const char *s)
{
    static const char *const t[] = {"true", "t", "yes", "y", "1"}, *const f[] = {"false", "f", "no", "n", "0"};
    for (int i = 0; i < 5; i++) {
        if (!strcasecmp(s, t[i])) return 1;
        if (!strcasecmp(s, f[i])) return 0;
    }
    return -1;
}

static int flag_bool(const char *name) { return parse_bool(flag_get(name)) == 1; }

static void spm_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill spm-train --input=FILES --model_prefix=P [--flag=value ...]\n"
            "\n"
            "Trains a sentencepiece model with spm_train's flags and defaults and writes\n"
            "P.model and P.vocab. Flags: --flag=value, --flag value, --flag / --noflag for\n"
            "booleans, with '-' or '--'. See tokenmill-spm-train(1) for the differences.\n"
            "\n");
    for (int i = 0; i < N_FLAGS; i++) {
        const char *ty = g_flags[i].kind == K_BOOL ? "bool" : g_flags[i].kind == K_INT ? "int" :
                         g_flags[i].kind == K_FLOAT ? "float" : "string";
        fprintf(f, "  --%s (%s) type: %s default: \"%s\"\n", g_flags[i].name, g_flags[i].help, ty, g_flags[i].deflt);
    }
}

/* Checks a value against the flag's type; prints absl-like messages. */
static int check_value(const spm_flag *f, const char *v)
{
    char *end;
    errno = 0;
    switch (f->kind) {
    case K_BOOL:
        if (parse_bool(v) < 0) goto bad;
        return 0;
    case K_INT:
        if (!*v) goto bad;
        (void)strtoll(v, &end, 10);
        if (*end || errno) goto bad;
        return 0;
    case K_FLOAT:
        if (!*v) goto bad;
        (void)strtod(v, &end);
        if (*end || errno) goto bad;
        return 0;
    default: return 0;
    }
bad:
    fprintf(stderr, "tokenmill spm-train: illegal value '%s' specified for %s flag '%s'\n", v,
            f->kind == K_BOOL ? "bool" : f->kind == K_INT ? "integer" : "float", f->name);
    return -1;
}

/* Parses argv with absl's rules into g_flags. 0, or an exit status. */
static int parse_flags(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            if (i + 1 < argc) {
                fprintf(stderr, "tokenmill spm-train: unexpected argument '%s' (inputs go in --input=A,B)\n", argv[i + 1]);
                return EXIT_USAGE;
            }
            break;
        }
        if (a[0] != '-' || !a[1]) {
            fprintf(stderr, "tokenmill spm-train: unexpected argument '%s' (inputs go in --input=A,B)\n", a);
            return EXIT_USAGE;
        }
        const char *name = a + 1 + (a[1] == '-');
        if (!strcmp(name, "help") || !strcmp(name, "helpfull") || !strcmp(name, "h")) {
            spm_usage(stdout);
            return -1;
        }
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        /* spm_train's names use '_'; accept '-' too */
        char buf[128];
        if (nlen >= sizeof buf) nlen = sizeof buf - 1;
        for (size_t k = 0; k < nlen; k++) buf[k] = name[k] == '-' ? '_' : name[k];
        buf[nlen] = 0;
        spm_flag *f = flag_find(buf, nlen);
        const char *v;
        if (!f && !eq && nlen > 2 && !strncmp(buf, "no", 2) && (f = flag_find(buf + 2, nlen - 2)) && f->kind == K_BOOL) {
            f->value = "false";
            continue;
        }
        if (!f) {
            fprintf(stderr, "tokenmill spm-train: unknown command line flag '%s' (see --help)\n", buf);
            return EXIT_USAGE;
        }
        if (eq) {
            v = eq + 1;
        } else if (f->kind == K_BOOL) {
            v = "true";
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            fprintf(stderr, "tokenmill spm-train: missing the value for flag '%s'\n", f->name);
            return EXIT_USAGE;
        }
        if (check_value(f, v)) return EXIT_USAGE;
        f->value = v;
    }
    return 0;
}

/* Splits a comma-separated list as spm_train does (util::StrSplitAsCSV):
 * an item starting with '"' runs to the closing quote, "" inside it is one
 * quote, and whatever follows it up to the next comma is dropped; so
 * --user_defined_symbols='",",x' gives "," and "x". Empty items are
 * skipped (an empty symbol is an error in sentencepiece too). */
static int add_list(char *s, char ***v, int *n)
{
    char *str = s, *eos = s + strlen(s);
    while (str < eos) {
        char *start, *end;
        if (*str == '"') {
            start = end = ++str;
            for (; str < eos; ++str) {
                if (*str == '"') {
                    str++;
                    if (*str != '"') break;
                }
                *end++ = *str;
            }
            char *c = strchr(str < eos ? str : eos, ',');
            str = c ? c : eos;
        } else {
            start = str;
            char *c = strchr(str, ',');
            str = c ? c : eos;
            end = str;
        }
        *end = 0;
        str++;
        if (!*start) continue;
        char **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        if (!((*v)[(*n)++] = strdup(start))) return -1;
    }
    return 0;
}

/* One item per line (spm's load_lines: every line, '\r' kept; empty lines
 * are an error here since an empty piece is). */
static int add_file_lines(const char *flag, const char *path, char ***v, int *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tokenmill spm-train: --%s: cannot open %s: %s\n", flag, path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t k;
    long lineno = 0;
    int rc = 0;
    while ((k = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (k && line[k - 1] == '\n') line[--k] = 0;
        if (k == 0) {
            fprintf(stderr, "tokenmill spm-train: --%s: %s:%ld: empty line (an empty symbol is not allowed)\n",
                    flag, path, lineno);
            rc = -1;
            break;
        }
        if (memchr(line, 0, (size_t)k)) {
            fprintf(stderr, "tokenmill spm-train: --%s: %s:%ld: NUL byte in a symbol\n", flag, path, lineno);
            rc = -1;
            break;
        }
        char **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
        if (!nv || !(nv[*n] = strdup(line))) { rc = -1; if (nv) *v = nv; break; }
        *v = nv;
        (*n)++;
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "tokenmill spm-train: --%s: read error on %s\n", flag, path);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Values tokenmill refuses: unknown input formats and model types (every
 * spm_train flag is implemented). */
static int refuse_unsupported(void)
{
    const char *fmt = flag_get("input_format");
    if (*fmt && strcmp(fmt, "text") && strcmp(fmt, "tsv")) {
        fprintf(stderr, "tokenmill spm-train: --input_format=%s: supported formats are 'text' and 'tsv'\n", fmt);
        return -1;
    }
    const char *mt = flag_get("model_type");
    if (strcmp(mt, "unigram") && strcmp(mt, "bpe") && strcmp(mt, "char") && strcmp(mt, "word")) {
        fprintf(stderr, "tokenmill spm-train: --model_type=%s: unknown model type (unigram, bpe, char, word)\n", mt);
        return -1;
    }
    return 0;
}

/* Writes P.vocab as sentencepiece does: piece TAB score (C++ ostream's
 * default float format, which is printf's %g) or piece alone. */
static int write_vocab(const tkm_model *m, FILE *f, int scores)
{
    int n = tkm_model_size(m);
    for (int id = 0; id < n; id++) {
        size_t len;
        const char *p = tkm_model_piece(m, id, &len);
        fwrite(p, 1, len, f);
        if (scores) fprintf(f, "\t%g\n", (double)tkm_model_score(m, id));
        else fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

/* Writes both files to temporary names, then renames both: a failure
 * leaves neither half-written. */
static int write_outputs(const tkm_model *m, const uint8_t *extra, size_t extra_len, const char *prefix, int scores)
{
    size_t pl = strlen(prefix);
    char *mpath = malloc(pl + 8), *vpath = malloc(pl + 8);
    char *mtmp = NULL, *vtmp = NULL;
    int rc = -1;
    if (!mpath || !vpath) goto out;
    sprintf(mpath, "%s.model", prefix);
    sprintf(vpath, "%s.vocab", prefix);
    mtmp = cli_tmp_path(mpath);
    vtmp = cli_tmp_path(vpath);
    if (!mtmp || !vtmp) goto out;
    size_t blen;
    const uint8_t *bytes = tkm_model_bytes(m, &blen);
    FILE *mf = fopen(mtmp, "wb");
    if (!mf) {
        fprintf(stderr, "tokenmill spm-train: cannot create %s: %s\n", mtmp, strerror(errno));
        goto out;
    }
    int bad = fwrite(bytes, 1, blen, mf) != blen;
    if (extra_len) bad |= fwrite(extra, 1, extra_len, mf) != extra_len;
    bad |= fclose(mf) != 0;
    if (bad) {
        fprintf(stderr, "tokenmill spm-train: write error on %s: %s\n", mtmp, strerror(errno));
        cli_discard(mtmp, mpath);
        goto out;
    }
    FILE *vf = fopen(vtmp, "wb");
    if (!vf) {
        fprintf(stderr, "tokenmill spm-train: cannot create %s: %s\n", vtmp, strerror(errno));
        cli_discard(mtmp, mpath);
        goto out;
    }
    bad = write_vocab(m, vf, scores) != 0;
    bad |= fclose(vf) != 0;
    if (bad) {
        fprintf(stderr, "tokenmill spm-train: write error on %s: %s\n", vtmp, strerror(errno));
        cli_discard(mtmp, mpath);
        cli_discard(vtmp, vpath);
        goto out;
    }
    if (cli_commit(mtmp, mpath) || cli_commit(vtmp, vpath)) {
        fprintf(stderr, "tokenmill spm-train: cannot rename into %s / %s: %s\n", mpath, vpath, strerror(errno));
        cli_discard(mtmp, mpath);
        cli_discard(vtmp, vpath);
        goto out;
    }
    rc = 0;
out:
    free(mpath); free(vpath); free(mtmp); free(vtmp);
    return rc;
}

/* ---- input_sentence_size: spm_train's SentenceSelector ----
 * Without shuffling the first N sentences are kept. With shuffling,
 * sentencepiece up to 0.2.0 keeps a reservoir sample drawn by std::mt19937
 * seeded with 12345678 (a constant: random_seed does not change it) through
 * libstdc++'s uniform_int_distribution<uint64_t>(0, total - 1); both are
 * reproduced here, so the same sentences are chosen as by Debian's spm_train
 * 0.1.97 (checked: a 1000-of-8000 sample, identical). sentencepiece 0.2.1+
 * draws from absl::BitGen, which absl salts per process: its sample changes
 * from run to run and cannot be reproduced. Empty lines and lines the
 * trainer would skip never reach the selector, as in sentencepiece. */
typedef struct { uint32_t mt[624]; int i; } mt19937;

static void mt_seed(mt19937 *g, uint32_t seed)
{
    g->mt[0] = seed;
    for (int i = 1; i < 624; i++) g->mt[i] = 1812433253u * (g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) + (uint32_t)i;
    g->i = 624;
}

static uint32_t mt_next(mt19937 *g)
{
    if (g->i >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (g->mt[k] & 0x80000000u) | (g->mt[(k + 1) % 624] & 0x7FFFFFFFu);
            g->mt[k] = g->mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1) ? 0x9908B0DFu : 0);
        }
        g->i = 0;
    }
    uint32_t y = g->mt[g->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9D2C5680u;
    y ^= (y << 15) & 0xEFC60000u;
    return y ^ (y >> 18);
}

/* libstdc++ (GCC >= 11) uniform_int_distribution<uint64_t>(0, n - 1) over a
 * 32-bit engine, n <= 2^32: Lemire's multiply-and-reject. */
static uint64_t mt_below(mt19937 *g, uint64_t n)
{
    if (n > 0xFFFFFFFFull) { /* upscaling: two draws (never reached below 2^32 sentences) */
        uint64_t r;
        do r = ((uint64_t)mt_next(g) << 32 | mt_next(g)); while (r >= n * (UINT64_MAX / n));
        return r % n;
    }
    if (n == 0x100000000ull) return mt_next(g);
    uint32_t range = (uint32_t)n;
    uint64_t product = (uint64_t)mt_next(g) * range;
    uint32_t low = (uint32_t)product;
    if (low < range) {
        uint32_t threshold = (uint32_t)(-range) % range;
        while (low < threshold) {
            product = (uint64_t)mt_next(g) * range;
            low = (uint32_t)product;
        }
    }
    return product >> 32;
}

typedef struct { char *s; size_t n; } sline;

/* Reads every input through the filter and keeps the selected sentences. */
static int select_sentences(char **inputs, int n_inputs, const tkm_train_options *o, uint64_t size, int shuffle,
                            uint32_t seed, sline **out, uint64_t *n_out, uint64_t *total_out, uint64_t *skipped)
{
    sline *v = calloc(size < 1000000 ? size : 1000000, sizeof *v);
    uint64_t cap = size < 1000000 ? size : 1000000, n = 0, total = 0;
    mt19937 g;
    mt_seed(&g, seed);
    if (!v) return -1;
    int rc = 0, done = 0;
    for (int f = 0; rc == 0 && !done && f < n_inputs; f++) {
        tkm_reader *r;
        if ((rc = tkm_reader_open(inputs[f], &r)) < 0) { cli_error("spm-train", rc); break; }
        const char *s;
        size_t len;
        while ((rc = tkm_reader_next(r, &s, &len)) > 0) {
            size_t tl = len;
            if (o->input_tsv) { /* the trainer checks the format; filter on TEXT */
                const char *tab = memchr(s, '\t', len);
                if (tab) tl = (size_t)(tab - s);
            }
            if (tl == 0) continue;
            if (tl > (size_t)o->max_sentence_length || memmem(s, tl, "\xE2\x81\x87", 3)) { (*skipped)++; continue; }
            total++;
            uint64_t slot;
            if (n < size) {
                if (n == cap) {
                    uint64_t nc = cap * 2 < size ? cap * 2 : size;
                    sline *nv = realloc(v, nc * sizeof *nv);
                    if (!nv) { rc = -1; break; }
                    v = nv;
                    cap = nc;
                }
                slot = n++;
            } else {
                slot = mt_below(&g, total);
                if (slot >= n) continue;
                free(v[slot].s);
            }
            v[slot].s = malloc(len ? len : 1);
            if (!v[slot].s) { rc = -1; break; }
            memcpy(v[slot].s, s, len);
            v[slot].n = len;
            if (!shuffle && n >= size) { done = 1; break; }
        }
        if (rc < 0) cli_error("spm-train", rc);
        tkm_reader_close(r);
    }
    *out = v;
    *n_out = n;
    *total_out = total;
    return rc < 0 ? -1 : 0;
}

/* protobuf: a varint, and a length-delimited field */
static int pb_put(uint8_t **p, size_t *n, size_t *cap, const void *s, size_t len)
{
    if (*n + len > *cap) {
        size_t nc = (*n + len) * 2 + 64;
        uint8_t *q = realloc(*p, nc);
        if (!q) return -1;
        *p = q;
        *cap = nc;
    }
    memcpy(*p + *n, s, len);
    *n += len;
    return 0;
}

static int pb_field(uint8_t **p, size_t *n, size_t *cap, unsigned field, const void *s, size_t len)
{
    uint8_t v[20];
    int k = 0;
    v[k++] = (uint8_t)(field << 3 | 2);
    for (uint64_t x = len; ; x >>= 7) {
        v[k++] = (uint8_t)((x & 0x7F) | (x > 0x7F ? 0x80 : 0));
        if (x <= 0x7F) break;
    }
    return pb_put(p, n, cap, v, (size_t)k) || pb_put(p, n, cap, s, len);
}

/* self_test_sample_size: sentencepiece's test sampler (a reservoir over
 * the sentences that pass the input filter, std::mt19937 seeded with
 * random_seed: the same sentences as spm_train given the same
 * --random_seed; spm_train without it seeds from std::random_device),
 * each sentence with its pieces joined by spaces, as ModelProto field 4
 * (SelfTestData, appended after the fields tkm_model_bytes gives: protobuf
 * reads fields in any order). */
static int self_test_data(char **inputs, int n_inputs, const tkm_train_options *o, const tkm_model *m, uint64_t size,
                          uint32_t seed, uint8_t **out, size_t *out_len)
{
    sline *sel = NULL;
    uint64_t nsel = 0, total = 0, skipped = 0;
    uint8_t *data = NULL, *sample = NULL, *all = NULL;
    size_t dn = 0, dcap = 0, sn = 0, scap = 0, an = 0, acap = 0;
    tkm_encoder *e = NULL;
    int rc = select_sentences(inputs, n_inputs, o, size, 1, seed, &sel, &nsel, &total, &skipped);
    if (rc == 0 && (rc = tkm_encoder_new(m, &e)) < 0) cli_error("spm-train", rc);
    for (uint64_t i = 0; rc == 0 && i < nsel; i++) {
        const char *text = sel[i].s;
        size_t tl = sel[i].n;
        if (o->input_tsv) { /* the sampler sees TEXT */
            const char *tab = memchr(text, '\t', tl);
            if (tab) tl = (size_t)(tab - text);
        }
        char *pieces;
        size_t pl;
        if ((rc = tkm_encode_pieces(e, text, tl, &pieces, &pl)) < 0) { cli_error("spm-train", rc); break; }
        sn = 0;
        rc = pb_field(&sample, &sn, &scap, 1, text, tl) || pb_field(&sample, &sn, &scap, 2, pieces, pl) ||
             pb_field(&data, &dn, &dcap, 1, sample, sn) ? -1 : 0;
        tkm_free(pieces);
    }
    if (rc == 0 && pb_field(&all, &an, &acap, 4, data ? (const void *)data : "", dn)) rc = -1;
    tkm_encoder_free(e);
    for (uint64_t i = 0; i < nsel; i++) free(sel[i].s);
    free(sel);
    free(data);
    free(sample);
    if (rc) { free(all); return -1; }
    *out = all;
    *out_len = an;
    return 0;
}

static int int_flag(const char *name, long lo, long hi, int *out)
{
    long v;
    if (cli_int(flag_get(name), lo, hi, &v)) {
        fprintf(stderr, "tokenmill spm-train: --%s=%s: out of range (%ld..%ld)\n", name, flag_get(name), lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The differential privacy flags (Unigram only; see dp.c), with
 * sentencepiece's warnings for settings that give no privacy. */
static int dp_flags(tkm_train_options *o, int quiet)
{
    const char *seed = flag_get("random_seed");
    char *end;
    errno = 0;
    unsigned long long sv = strtoull(seed, &end, 10);
    if (!*seed || *end || errno || *seed == '-' || sv > 4294967295ull) {
        fprintf(stderr, "tokenmill spm-train: --random_seed=%s: out of range (0..4294967295)\n", seed);
        return -1;
    }
    o->random_seed = sv;
    o->enable_differential_privacy = flag_bool("enable_differential_privacy");
    const char *nl = flag_get("differential_privacy_noise_level");
    double noise = strtod(nl, &end);
    if (!*nl || *end || !(noise >= 0 && noise <= 1e15)) {
        fprintf(stderr, "tokenmill spm-train: --differential_privacy_noise_level=%s: out of range (0..1e15)\n", nl);
        return -1;
    }
    const char *ct = flag_get("differential_privacy_clipping_threshold");
    errno = 0;
    unsigned long long clip = strtoull(ct, &end, 10);
    if (!*ct || *end || errno || *ct == '-') {
        fprintf(stderr, "tokenmill spm-train: --differential_privacy_clipping_threshold=%s: not a count (0..2^64-1)\n", ct);
        return -1;
    }
    if (!o->enable_differential_privacy) return 0; /* sentencepiece ignores the other two then */
    if (o->model_type != TKM_MODEL_UNIGRAM) {
        fprintf(stderr, "tokenmill spm-train: --enable_differential_privacy: Unigram models only (as spm_train's flag "
                        "says), not --model_type=%s\n", flag_get("model_type"));
        return -1;
    }
    o->differential_privacy_noise_level = noise;
    o->differential_privacy_clipping_threshold = clip;
    if (!quiet) {
        if (!o->input_tsv)
            fprintf(stderr, "tokenmill spm-train: warning: differential privacy is meant for --input_format=tsv "
                            "(WORD<TAB>COUNT rows); with text, the noise goes on each pre-token's count\n");
        if (noise <= 0)
            fprintf(stderr, "tokenmill spm-train: warning: differential privacy with noise level <= 0 gives "
                            "infinite epsilon guarantees\n");
        if (clip == 0)
            fprintf(stderr, "tokenmill spm-train: warning: differential privacy with clipping threshold <= 0 gives "
                            "infinite epsilon guarantees\n");
    }
    return 0;
}

int cmd_spm_train(int argc, char **argv)
{
    for (int i = 0; i < N_FLAGS; i++) g_flags[i].value = NULL;
    int prc = parse_flags(argc, argv);
    if (prc < 0) return EXIT_OK; /* --help */
    if (prc) return prc;
    if (!*flag_get("input")) {
        fprintf(stderr, "tokenmill spm-train: --input must not be empty\n");
        return EXIT_USAGE;
    }
    if (!*flag_get("model_prefix")) {
        fprintf(stderr, "tokenmill spm-train: --model_prefix must not be empty\n");
        return EXIT_USAGE;
    }
    if (refuse_unsupported()) return EXIT_USAGE;

    tkm_train_options o;
    tkm_train_options_init(&o);
    /* sentencepiece's defaults where tokenmill train has its own */
    const char *mt = flag_get("model_type");
    o.model_type = !strcmp(mt, "bpe") ? TKM_MODEL_BPE : !strcmp(mt, "char") ? TKM_MODEL_CHAR
                 : !strcmp(mt, "word") ? TKM_MODEL_WORD : TKM_MODEL_UNIGRAM;
    /* use_all_vocab matters for char and word models only in sentencepiece */
    o.use_all_vocab = flag_bool("use_all_vocab") && (o.model_type == TKM_MODEL_CHAR || o.model_type == TKM_MODEL_WORD);
    o.add_dummy_prefix = flag_bool("add_dummy_prefix");
    o.remove_extra_whitespaces = flag_bool("remove_extra_whitespaces");
    o.normalization_rule_name = flag_get("normalization_rule_name");
    if (*flag_get("normalization_rule_tsv")) o.normalization_rule_tsv = flag_get("normalization_rule_tsv");
    if (*flag_get("denormalization_rule_tsv")) o.denormalization_rule_tsv = flag_get("denormalization_rule_tsv");
    if (int_flag("vocab_size", 1, 1 << 20, &o.vocab_size)) return EXIT_USAGE;
    double cov = strtod(flag_get("character_coverage"), NULL);
    if (!(cov > 0 && cov <= 1)) {
        fprintf(stderr, "tokenmill spm-train: --character_coverage=%s: out of range (0, 1]\n", flag_get("character_coverage"));
        return EXIT_USAGE;
    }
    o.character_coverage = (float)cov;
    if (int_flag("max_sentencepiece_length", 1, 1024, &o.max_piece_length)) return EXIT_USAGE;
    if (int_flag("seed_sentencepiece_size", 1, 100000000, &o.seed_size)) return EXIT_USAGE;
    double sf = strtod(flag_get("shrinking_factor"), NULL);
    if (!(sf > 0 && sf < 1)) {
        fprintf(stderr, "tokenmill spm-train: --shrinking_factor=%s: out of range (0, 1)\n", flag_get("shrinking_factor"));
        return EXIT_USAGE;
    }
    o.shrinking_factor = (float)sf;
    if (int_flag("num_sub_iterations", 1, 100, &o.num_sub_iterations)) return EXIT_USAGE;
    o.split_by_unicode_script = flag_bool("split_by_unicode_script");
    o.split_by_number = flag_bool("split_by_number");
    o.split_by_whitespace = flag_bool("split_by_whitespace");
    o.treat_whitespace_as_suffix = flag_bool("treat_whitespace_as_suffix");
    if (*flag_get("pretokenization_delimiter")) o.pretokenization_delimiter = flag_get("pretokenization_delimiter");
    if (*flag_get("seed_sentencepieces_file")) o.seed_sentencepieces_file = flag_get("seed_sentencepieces_file");
    int self_test;
    if (int_flag("self_test_sample_size", 0, 1000, &self_test)) return EXIT_USAGE;
    o.split_digits = flag_bool("split_digits");
    o.allow_whitespace_only_pieces = flag_bool("allow_whitespace_only_pieces");
    o.byte_fallback = flag_bool("byte_fallback");
    o.hard_vocab_limit = flag_bool("hard_vocab_limit");
    if (int_flag("unk_id", 0, 1 << 20, &o.unk_id) || int_flag("bos_id", -1, 1 << 20, &o.bos_id) ||
        int_flag("eos_id", -1, 1 << 20, &o.eos_id) || int_flag("pad_id", -1, 1 << 20, &o.pad_id))
        return EXIT_USAGE;
    o.unk_piece = flag_get("unk_piece");
    o.bos_piece = flag_get("bos_piece");
    o.eos_piece = flag_get("eos_piece");
    o.pad_piece = flag_get("pad_piece");
    o.unk_surface = flag_get("unk_surface");
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = nproc > 0 ? (int)(nproc > 64 ? 64 : nproc) : 1;
    if (flag_given("num_threads") && int_flag("num_threads", 1, 256, &o.threads)) return EXIT_USAGE;
    /* spm_train skips lines over max_sentence_length bytes and lines with U+2047 */
    if (int_flag("max_sentence_length", 1, 1 << 30, &o.max_sentence_length)) return EXIT_USAGE;
    o.skip_unk_lines = 1;
    o.input_tsv = !strcmp(flag_get("input_format"), "tsv");
    int quiet = cli_quiet || atoi(flag_get("minloglevel")) >= 1;
    if (dp_flags(&o, quiet)) return EXIT_USAGE;

    char **inputs = NULL, **user = NULL, **control = NULL, *required = NULL;
    int n_inputs = 0, n_user = 0, n_control = 0, ret = EXIT_FAIL;
    char *in_copy = strdup(flag_get("input")), *u_copy = strdup(flag_get("user_defined_symbols")),
         *c_copy = strdup(flag_get("control_symbols"));
    tkm_trainer *t = NULL;
    tkm_model *m = NULL;
    if (!in_copy || !u_copy || !c_copy || add_list(in_copy, &inputs, &n_inputs) || add_list(u_copy, &user, &n_user) ||
        add_list(c_copy, &control, &n_control))
        goto done;
    /* spm_train: the list flag first, then the file's lines */
    if (*flag_get("user_defined_symbols_file") &&
        add_file_lines("user_defined_symbols_file", flag_get("user_defined_symbols_file"), &user, &n_user)) {
        ret = EXIT_USAGE;
        goto done;
    }
    if (*flag_get("control_symbols_file") &&
        add_file_lines("control_symbols_file", flag_get("control_symbols_file"), &control, &n_control)) {
        ret = EXIT_USAGE;
        goto done;
    }
    /* required_chars: the flag, then the file's lines joined (spm_train) */
    if (*flag_get("required_chars") || *flag_get("required_chars_file")) {
        char **rl = NULL;
        int nrl = 0;
        if (*flag_get("required_chars_file") &&
            add_file_lines("required_chars_file", flag_get("required_chars_file"), &rl, &nrl)) {
            ret = EXIT_USAGE;
            goto done;
        }
        size_t total = strlen(flag_get("required_chars")) + 1;
        for (int i = 0; i < nrl; i++) total += strlen(rl[i]);
        required = malloc(total);
        if (!required) { free_list(rl, nrl); goto done; }
        strcpy(required, flag_get("required_chars"));
        for (int i = 0; i < nrl; i++) strcat(required, rl[i]);
        free_list(rl, nrl);
        o.required_chars = required;
    }
    o.user_defined_symbols = (const char *const *)user;
    o.n_user_defined = n_user;
    o.control_symbols = (const char *const *)control;
    o.n_control = n_control;

    int rc = tkm_trainer_new(&o, &t);
    unsigned long long sample = strtoull(flag_get("input_sentence_size"), NULL, 10);
    if (rc == 0 && sample > 0) {
        sline *sel = NULL;
        uint64_t nsel = 0, total = 0, skipped = 0;
        int src = select_sentences(inputs, n_inputs, &o, sample, flag_bool("shuffle_input_sentence"), 12345678u, &sel,
                                   &nsel, &total, &skipped);
        for (uint64_t i = 0; src == 0 && rc == 0 && i < nsel; i++) rc = tkm_trainer_add_line(t, sel[i].s, sel[i].n);
        for (uint64_t i = 0; i < nsel; i++) free(sel[i].s);
        free(sel);
        if (src) goto done;
        if (!quiet)
            fprintf(stderr, "tokenmill spm-train: %s %llu of %llu sentences (input_sentence_size)%s\n",
                    flag_bool("shuffle_input_sentence") ? "sampled" : "took the first", (unsigned long long)nsel,
                    (unsigned long long)total, skipped ? ", skipped lines not counted" : "");
    } else {
        for (int i = 0; rc == 0 && i < n_inputs; i++) rc = tkm_trainer_add_file(t, inputs[i]);
    }
    if (rc == 0) rc = tkm_trainer_train(t, &m);
    if (rc < 0) {
        cli_error("spm-train", rc);
        goto done;
    }
    uint8_t *st_pb = NULL;
    size_t st_len = 0;
    if (self_test > 0) { /* sentencepiece's self-test data: samples and their pieces, checked on load */
        uint32_t seed = (uint32_t)strtoull(flag_get("random_seed"), NULL, 10);
        if (self_test_data(inputs, n_inputs, &o, m, (uint64_t)self_test, seed, &st_pb, &st_len)) goto done;
        if (!quiet)
            fprintf(stderr, "tokenmill spm-train: self-test: %d sentences sampled (random_seed %u) and encoded into "
                            "the model; libsentencepiece checks them when it loads it\n", self_test, seed);
    }
    int wrc = write_outputs(m, st_pb, st_len, flag_get("model_prefix"), flag_bool("vocabulary_output_piece_score"));
    free(st_pb);
    if (wrc) goto done;
    if (!quiet) {
        tkm_train_stats s;
        tkm_trainer_stats(t, &s);
        fprintf(stderr, "tokenmill spm-train: wrote %s.model and %s.vocab (%d pieces, %s, %llu lines, %.2f s)\n",
                flag_get("model_prefix"), flag_get("model_prefix"), tkm_model_size(m),
                mt, (unsigned long long)s.lines, s.seconds_total);
        if (o.enable_differential_privacy)
            fprintf(stderr, "tokenmill spm-train: differential privacy dropped %llu of %llu unique pre-tokens (%llu "
                            "occurrences; random_seed %llu)\n",
                    (unsigned long long)s.dp_dropped_unique, (unsigned long long)s.pretokens_unique,
                    (unsigned long long)s.dp_dropped_occurrences, (unsigned long long)o.random_seed);
        if (s.skipped_lines)
            fprintf(stderr, "tokenmill spm-train: skipped %llu lines longer than %d bytes or holding U+2047 "
                            "(as spm_train; see --max_sentence_length)\n",
                    (unsigned long long)s.skipped_lines, o.max_sentence_length);
    }
    ret = EXIT_OK;
done:
    tkm_model_free(m);
    tkm_trainer_free(t);
    free_list(inputs, n_inputs);
    free_list(user, n_user);
    free_list(control, n_control);
    free(in_copy); free(u_copy); free(c_copy); free(required);
    return ret;
}
