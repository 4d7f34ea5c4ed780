/* tokenmill_analyze.h - tokenizer analysis: compression over corpora and the
 * token distribution of vocabularies (tokenmill analyze).
 *
 * Ownership: results are plain structs filled by the library or handles freed
 * with their _free function (NULL accepted); file lists are freed with
 * tkm_analyze_files_free. Models are borrowed and must outlive the call.
 * Functions return 0 or a negative TKM_E* code (see tokenmill.h) with detail
 * in tkm_last_error(). Thread safety: every function may be called from any
 * thread; none keeps global state. */
#ifndef TOKENMILL_ANALYZE_H
#define TOKENMILL_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenmill.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- piece categories (after the NovelAI "nerdstash" tokenizer post) ------ */
typedef enum {
    TKM_CAT_LATIN = 0,     /* >= 2 ASCII letters, optional leading U+2581 */
    TKM_CAT_JA_MULTI = 1,  /* >= 2 Japanese characters (ICU Han, Hiragana, Katakana) */
    TKM_CAT_JA_SINGLE = 2, /* one Japanese character */
    TKM_CAT_OTHER = 3,     /* every other normal / unused / user-defined piece */
    TKM_CAT_SPECIAL = 4,   /* control and unknown pieces */
    TKM_CAT_BYTE = 5,      /* byte-fallback pieces <0xNN> */
    TKM_CAT_COUNT = 6
} tkm_analyze_category;

/* Category of one piece (bytes + type, as tkm_model_piece / _piece_type give).
 * Definition (documented with counts in tokenmill-analyze(1)): control and
 * unknown pieces are SPECIAL, byte pieces BYTE, all others (user-defined
 * included) are classified by their text: one leading
 * U+2581 (or a space, as byte-level vocabularies write it) is stripped and
 * not counted; latin letters are ASCII letters only
 * (Latin-1, Latin Extended and full-width letters are "other"); Japanese
 * characters are those of ICU script Han (U+3005 included), Hiragana or
 * Katakana (U+30FC and U+30FB are script Common, so "other"); a lone U+2581,
 * digits, punctuation and mixed pieces are "other". This reproduces the
 * published counts for nerdstash and LLaMA exactly.
 * @return a tkm_analyze_category. Pure function, thread-safe. */
int tkm_analyze_piece_category(const char *piece, size_t len, tkm_piece_type type);
/* "latin", "japanese_multi", "japanese_single", "other", "special", "byte". */
const char *tkm_analyze_category_name(int cat);

/* ---- corpora ------------------------------------------------------------- */
/* Expands a corpus spec: a regular file, a directory (its regular files,
 * not recursive, sorted bytewise) or a glob pattern (matches sorted).
 * *files is an allocated array of *n allocated paths.
 * @return 0, TKM_EIO (nothing matches / unreadable; message names the spec)
 * or TKM_ENOMEM. */
int tkm_analyze_files(const char *spec, char ***files, int *n);
void tkm_analyze_files_free(char **files, int n);

/* ---- compression ----------------------------------------------------------- */
typedef struct tkm_analyze_counts {
    uint64_t lines;       /* lines encoded */
    uint64_t bytes;       /* bytes of the lines, newlines excluded */
    uint64_t chars;       /* UTF-8 code points (bytes that are not 10xxxxxx) */
    uint64_t words;       /* runs of non-whitespace (space, \t, \r, \v, \f) */
    uint64_t tokens;      /* ids produced by the encoder */
    uint64_t byte_tokens; /* ids of type BYTE (byte fallback) */
    uint64_t unk_tokens;  /* ids of type UNKNOWN */
} tkm_analyze_counts;

/* Encodes every line of files[0..nfiles) (plain or gzip) with each of the
 * nmodels models, streaming in batches, with `threads` worker threads (one
 * encoder per model per thread). counts[i] receives model i's totals (the text
 * counts are the same for every model). If used is not NULL, used[i] (an array
 * of tkm_model_size(models[i]) bytes, caller-owned) gets 1 at every id the
 * encoder produced. Results do not depend on the thread count.
 * @return 0 or <0 (TKM_EIO / TKM_EFORMAT naming file and line; TKM_ENOTSUP for
 * a model type the encoder cannot run). */
int tkm_analyze_compression(const tkm_model *const *models, int nmodels, const char *const *files, int nfiles,
                            int threads, tkm_analyze_counts *counts, uint8_t *const *used);

/* ---- vocabulary ------------------------------------------------------------ */
#define TKM_ANALYZE_MAXLEN 32 /* length histograms: 1..31 and a last bucket ">= 32" */

typedef struct tkm_analyze_script {
    const char *name;  /* ICU long name ("Latin", "Han", ...), "Common" for pieces
                          without letters of any script, "Mixed" for several */
    int count;
} tkm_analyze_script;

typedef struct tkm_analyze_vocab {
    int pieces;                              /* tkm_model_size */
    int category[TKM_CAT_COUNT];
    int user_defined;                        /* also counted in category[] by text */
    /* lengths of normal/unused/user-defined pieces as stored (U+2581 counted):
     * index k = k characters (bytes), k in 1..TKM_ANALYZE_MAXLEN-1; the last
     * index counts everything longer */
    int len_chars[TKM_ANALYZE_MAXLEN + 1];
    int len_bytes[TKM_ANALYZE_MAXLEN + 1];
    /* scripts of normal/unused/user-defined pieces, by descending count then name */
    tkm_analyze_script *scripts;
    int n_scripts;
} tkm_analyze_vocab;

/* Fills *v for model m (v->scripts allocated; release with
 * tkm_analyze_vocab_clear). @return 0 or TKM_ENOMEM. */
int tkm_analyze_vocab_stats(const tkm_model *m, tkm_analyze_vocab *v);
void tkm_analyze_vocab_clear(tkm_analyze_vocab *v);

/* Counts, per category, the pieces whose used[id] is 0 (used as filled by
 * tkm_analyze_compression). Control and unknown pieces are skipped (an
 * encoder never produces control pieces). */
void tkm_analyze_unused(const tkm_model *m, const uint8_t *used, int unused[TKM_CAT_COUNT]);

#ifdef __cplusplus
}
#endif
#endif /* TOKENMILL_ANALYZE_H */
