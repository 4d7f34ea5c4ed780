/* analyze_vocab.c - token distribution of a vocabulary: the NovelAI-post
 * categories (latin / japanese multi / japanese single / other), piece length
 * histograms, pieces per ICU script and unused pieces per category. */
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/uscript.h>

#include "../lib/tkm_internal.h"
#include "tokenmill_analyze.h"

static const char *const cat_names[TKM_CAT_COUNT] = {"latin", "japanese_multi", "japanese_single",
                                                     "other", "special", "byte"};

const char *tkm_analyze_category_name(int cat)
{
    return cat >= 0 && cat < TKM_CAT_COUNT ? cat_names[cat] : "?";
}

/* Latin letters are ASCII letters only: with that, the counts equal the
 * published ones for nerdstash and LLaMA exactly (Latin-1/Extended letters
 * add 42 and 1520 pieces); see tokenmill-analyze(1). */
static int is_latin_letter(uint32_t cp) { return cp < 0x80 && (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z'; }

/* Japanese characters: ICU script Han, Hiragana or Katakana (U+3005 is Han;
 * U+30FC and U+30FB are Common and so not Japanese: this reproduces the
 * published counts exactly, including U+30FC gives 871 more multi pieces). */
static int is_japanese(uint32_t cp)
{
    if (cp < 0x2E80) return 0;
    UErrorCode err = U_ZERO_ERROR;
    UScriptCode s = uscript_getScript((UChar32)cp, &err);
    return U_SUCCESS(err) && (s == USCRIPT_HAN || s == USCRIPT_HIRAGANA || s == USCRIPT_KATAKANA);
}

/* Control and unknown pieces are "special", byte pieces "byte"; all others,
 * user-defined ones included (as in the published counts), by their text.
 * The classification walks the piece once: one leading U+2581 is skipped,
 * then every character must be a Latin letter (latin) or every character
 * Japanese (japanese_*); anything else, including invalid UTF-8, an empty
 * remainder or a further U+2581, makes the piece "other". */
int tkm_analyze_piece_category(const char *piece, size_t len, tkm_piece_type type)
{
    switch (type) {
    case TKM_PIECE_CONTROL:
    case TKM_PIECE_UNKNOWN: return TKM_CAT_SPECIAL;
    case TKM_PIECE_BYTE: return TKM_CAT_BYTE;
    default: break;
    }
    const uint8_t *s = (const uint8_t *)piece;
    size_t i = 0;
    if (len >= 3 && memcmp(s, TKMI_WS, 3) == 0) i = 3;
    else if (len >= 2 && s[0] == ' ') i = 1; /* byte-level vocabularies (GPT-2, tiktoken) keep the space */
    int n = 0, latin = 1, ja = 1;
    while (i < len && (latin || ja)) {
        int ml;
        int32_t cp = tkmi_utf8_decode(s + i, len - i, &ml);
        if (cp < 0) return TKM_CAT_OTHER;
        if (latin && !is_latin_letter((uint32_t)cp)) latin = 0;
        if (ja && !is_japanese((uint32_t)cp)) ja = 0;
        n++;
        i += (size_t)ml;
    }
    if (n == 0 || (!latin && !ja)) return TKM_CAT_OTHER;
    if (latin) return n >= 2 ? TKM_CAT_LATIN : TKM_CAT_OTHER;
    return n >= 2 ? TKM_CAT_JA_MULTI : TKM_CAT_JA_SINGLE;
}

/* Script of a piece: the scripts of its characters other than Common and
 * Inherited (U+2581, digits, punctuation are Common); one -> that script,
 * none -> Common, Han+Hiragana+Katakana only -> Japanese, else Mixed. */
static int piece_script(const char *piece, size_t len)
{
    const uint8_t *s = (const uint8_t *)piece;
    int script = USCRIPT_COMMON, mixed = 0, ja_only = 1;
    for (size_t i = 0; i < len;) {
        int ml;
        int32_t cp = tkmi_utf8_decode(s + i, len - i, &ml);
        i += (size_t)ml;
        if (cp < 0) continue;
        UErrorCode err = U_ZERO_ERROR;
        int sc = uscript_getScript(cp, &err);
        if (U_FAILURE(err) || sc == USCRIPT_COMMON || sc == USCRIPT_INHERITED) continue;
        if (sc != USCRIPT_HAN && sc != USCRIPT_HIRAGANA && sc != USCRIPT_KATAKANA) ja_only = 0;
        if (script == USCRIPT_COMMON) script = sc;
        else if (sc != script) mixed = 1;
    }
    if (!mixed) return script;
    return ja_only ? USCRIPT_JAPANESE : -1;
}

static int script_cmp(const void *a, const void *b)
{
    const tkm_analyze_script *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->name, y->name);
}

int tkm_analyze_vocab_stats(const tkm_model *m, tkm_analyze_vocab *v)
{
    memset(v, 0, sizeof *v);
    int n = tkm_model_size(m);
    v->pieces = n;
    /* per-script counts: ICU codes are small (< USCRIPT_CODE_LIMIT); slot 0
     * of the extra array holds Mixed */
    int nsc = (int)USCRIPT_CODE_LIMIT + 1;
    int *sc = tkmi_calloc((size_t)nsc, sizeof *sc);
    TKM_RETURN_ERROR_IF(!sc, TKM_ENOMEM, "analyze: out of memory");
    for (int id = 0; id < n; id++) {
        size_t len;
        const char *p = tkm_model_piece(m, id, &len);
        tkm_piece_type t = tkm_model_piece_type(m, id);
        v->category[tkm_analyze_piece_category(p, len, t)]++;
        v->user_defined += t == TKM_PIECE_USER_DEFINED;
        if (t == TKM_PIECE_CONTROL || t == TKM_PIECE_UNKNOWN || t == TKM_PIECE_BYTE) continue;
        size_t chars = 0;
        for (size_t i = 0; i < len; i++) chars += ((uint8_t)p[i] & 0xC0) != 0x80;
        v->len_chars[chars < TKM_ANALYZE_MAXLEN ? chars : TKM_ANALYZE_MAXLEN]++;
        v->len_bytes[len < TKM_ANALYZE_MAXLEN ? len : TKM_ANALYZE_MAXLEN]++;
        int s = piece_script(p, len);
        sc[s < 0 ? nsc - 1 : s]++;
    }
    int k = 0;
    for (int i = 0; i < nsc; i++) k += sc[i] > 0;
    v->scripts = tkmi_calloc(k ? (size_t)k : 1, sizeof *v->scripts);
    if (!v->scripts) {
        tkmi_free(sc);
        return tkmi_error(TKM_ENOMEM, "analyze: out of memory");
    }
    for (int i = 0; i < nsc; i++) {
        if (!sc[i]) continue;
        const char *name = i == nsc - 1 ? "Mixed"
                           : i == USCRIPT_JAPANESE ? "Japanese" /* ICU has no long name for Jpan */
                                                   : uscript_getName((UScriptCode)i);
        v->scripts[v->n_scripts].name = name ? name : "Unknown";
        v->scripts[v->n_scripts++].count = sc[i];
    }
    qsort(v->scripts, (size_t)v->n_scripts, sizeof *v->scripts, script_cmp);
    tkmi_free(sc);
    return 0;
}

void tkm_analyze_vocab_clear(tkm_analyze_vocab *v)
{
    if (!v) return;
    tkmi_free(v->scripts);
    v->scripts = NULL;
    v->n_scripts = 0;
}

void tkm_analyze_unused(const tkm_model *m, const uint8_t *used, int unused[TKM_CAT_COUNT])
{
    memset(unused, 0, TKM_CAT_COUNT * sizeof *unused);
    int n = tkm_model_size(m);
    for (int id = 0; id < n; id++) {
        if (used[id]) continue;
        tkm_piece_type t = tkm_model_piece_type(m, id);
        if (t == TKM_PIECE_CONTROL || t == TKM_PIECE_UNKNOWN) continue;
        size_t len;
        const char *p = tkm_model_piece(m, id, &len);
        unused[tkm_analyze_piece_category(p, len, t)]++;
    }
}
