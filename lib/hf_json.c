/* hf_json.c - exports a sentencepiece BPE or Unigram model as a Hugging Face
 * tokenizer.json whose ids equal libsentencepiece's: vocab, merges derived
 * from the piece scores (BPE) or lattice scores (Unigram), normalizer, added
 * tokens and decoder. */
#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fileio.h"
#include "model_internal.h"

/* ---- growable JSON text ---- */
typedef struct { char *p; size_t n, cap; int err; } jbuf;

static void jb_put(jbuf *b, const char *s, size_t n)
{
    if (b->err) return;
    if (b->n + n > b->cap && tkmi_grow((void **)&b->p, &b->cap, b->n + n, 1) < 0) {
        b->err = TKM_ENOMEM;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void jb_lit(jbuf *b, const char *s) { jb_put(b, s, strlen(s)); }

/* A JSON string: quotes and backslashes escaped, control characters as
 * \u00XX, everything else (valid UTF-8, checked by the caller) raw. */
static void jb_str(jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    jb_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        jb_put(b, s + run, i - run);
        if (c == '"') jb_put(b, "\\\"", 2);
        else if (c == '\\') jb_put(b, "\\\\", 2);
        else {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            jb_put(b, u, 6);
        }
        run = i + 1;
    }
    jb_put(b, s + run, n - run);
    jb_put(b, "\"", 1);
}

static void jb_cstr(jbuf *b, const char *s) { jb_str(b, s, strlen(s)); }

/* An Oniguruma pattern matching exactly s as a whole token: \A s \z, with
 * the regex metacharacters escaped (only those: in Onig, a backslash before
 * some other punctuation, e.g. \<, can be an operator). */
static void jb_regex_whole(jbuf *b, const char *s, size_t n)
{
    jbuf r = {0};
    jb_lit(&r, "\\A");
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c && strchr("\\.^$|?*+()[]{}", c)) jb_put(&r, "\\", 1);
        jb_put(&r, s + i, 1);
    }
    jb_lit(&r, "\\z");
    if (r.err) b->err = r.err;
    else jb_str(b, r.p, r.n);
    tkmi_free(r.p);
}

/* ---- merges ---- */
typedef struct {
    float score;   /* score of the merged piece */
    int32_t id;    /* merged piece */
    uint32_t len;  /* its length in bytes */
    uint32_t split;/* bytes in the left part */
} merge_t;

/* The rank order HF's BPE needs to reproduce sentencepiece's.
 *
 * sentencepiece repeatedly merges the adjacent pair whose concatenation is
 * the piece with the highest score, the leftmost among equal scores; HF
 * merges the pair with the lowest rank, the leftmost among equal ranks.
 * Each pair maps to one merged piece, so ranking all merges by the merged
 * piece's score (highest first) makes both pick the same pieces in the same
 * order. What a rank order cannot express is sentencepiece's leftmost rule
 * across different pairs of equal score; it matters only when two such
 * candidates overlap, and we choose the order that wins in the cases that
 * occur:
 *  - equal scores, different pieces (LLaMA/Mistral give every run of ▁ the
 *    score -1e9): longer merged piece first. sentencepiece then grows a run
 *    from the left (▁+▁, ▁▁+▁, ... up to the longest piece, then again); HF
 *    with longer-first doubles symbols (▁▁ ▁▁ -> ▁▁▁▁ ...) and reaches the
 *    same chunks of the longest run piece and the same remainder.
 *  - one piece with several splits (X = L+R = L'+R'): two candidates overlap
 *    only as [L, M, R'] with X = L+M = M+R' (X periodic); sentencepiece takes
 *    the left one, whose left part is the longer one whenever the middle
 *    symbol is the shorter part, the usual case (e.g. [▁▁▁▁, ▁▁, ▁▁▁▁]). So
 *    splits with the longer left part rank first.
 * Remaining ties (same score, same length) go to the smaller id, i.e. the
 * piece sentencepiece's trainer created first. */
static int merge_cmp(const void *pa, const void *pb)
{
    const merge_t *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    if (a->split != b->split) return a->split > b->split ? -1 : 1;
    return 0;
}

/* A piece HF's BPE can hold as a symbol: sentencepiece's NORMAL and UNUSED
 * pieces (user-defined ones are cut out before the model runs, in both). */
static int is_symbol_piece(const tkm_model *m, int id)
{
    return id >= 0 && (m->type[id] == TKM_PIECE_NORMAL || m->type[id] == TKM_PIECE_UNUSED);
}

static int collect_merges(const tkm_model *m, const tkmi_strmap *all, merge_t **out, size_t *nout)
{
    merge_t *v = NULL;
    size_t n = 0, cap = 0;
    for (int id = 0; id < m->n; id++) {
        /* Only NORMAL pieces are merge results. sentencepiece also merges into
         * UNUSED pieces but then splits them back (resegment), which a merge
         * list cannot express; leaving them out is the closer choice. */
        if (m->type[id] != TKM_PIECE_NORMAL) continue;
        const char *p = tkmi_piece(m, id);
        uint32_t len = m->plen[id];
        for (uint32_t k = 1; k < len; k++) {
            if (((uint8_t)p[k] & 0xC0) == 0x80) continue; /* not a character boundary */
            if (!is_symbol_piece(m, tkmi_strmap_get(all, p, k)) || !is_symbol_piece(m, tkmi_strmap_get(all, p + k, len - k)))
                continue;
            if (n == cap && tkmi_grow((void **)&v, &cap, n + 1, sizeof *v) < 0) {
                tkmi_free(v);
                return tkmi_error(TKM_ENOMEM, "out of memory");
            }
            v[n++] = (merge_t){m->score[id], id, len, k};
        }
    }
    if (n) qsort(v, n, sizeof *v, merge_cmp);
    *out = v;
    *nout = n;
    return 0;
}

/* ---- sections ---- */
static void added_token(jbuf *b, const tkm_model *m, int id, int special, int *first)
{
    char num[32];
    snprintf(num, sizeof num, "%d", id);
    jb_lit(b, *first ? "\n    {\"id\": " : ",\n    {\"id\": ");
    *first = 0;
    jb_lit(b, num);
    jb_lit(b, ", \"content\": ");
    jb_str(b, tkmi_piece(m, id), m->plen[id]);
    jb_lit(b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": ");
    jb_lit(b, special ? "false" : "true");
    jb_lit(b, ", \"special\": ");
    jb_lit(b, special ? "true" : "false");
    jb_lit(b, "}");
}

/* Added tokens. Control and unknown pieces are special and matched on the
 * raw text (normalized: false), as transformers does: HF finds them in input
 * text (chat templates rely on it) where sentencepiece never does, unless
 * the caller sets encode_special_tokens. User-defined pieces are matched on
 * the normalized text (normalized: true), exactly where sentencepiece's
 * PrefixMatcher finds them (longest match, left to right, after ' ' -> ▁);
 * HF's leftmost-longest matching gives the same cuts, and the pieces between
 * them are encoded separately, as sentencepiece's frozen symbols never
 * merge. In Unigram models they are lattice pieces with a bonus instead
 * (see write_unigram): sentencepiece can pass them over, so they are no
 * added tokens there. */
static void write_added(jbuf *b, const tkm_model *m)
{
    int first = 1;
    jb_lit(b, "  \"added_tokens\": [");
    for (int id = 0; id < m->n; id++) {
        int t = m->type[id];
        if (t == TKM_PIECE_CONTROL || t == TKM_PIECE_UNKNOWN) added_token(b, m, id, 1, &first);
        else if (t == TKM_PIECE_USER_DEFINED && m->model_type == TKM_MODEL_BPE) added_token(b, m, id, 0, &first);
    }
    jb_lit(b, first ? "],\n" : "\n  ],\n");
}

/* sentencepiece's identity normalizer as HF normalizers, in its order:
 * remove_extra_whitespaces drops leading ' ', squeezes runs of ' ' and drops
 * trailing ▁ (escaped spaces and literal U+2581 alike); ' ' -> ▁; the dummy
 * prefix last (Prepend leaves an empty string empty, as sentencepiece does;
 * stripping trailing ▁ before prepending equals sentencepiece's order). */
static void write_normalizer(jbuf *b, const tkm_model *m)
{
    const char *ws = m->escape_ws ? TKMI_WS : " ";
    int n = 0;
    if (!m->remove_extra_ws && !m->escape_ws && !m->add_dummy_prefix && !m->charsmap_len) {
        jb_lit(b, "  \"normalizer\": null,\n");
        return;
    }
    jb_lit(b, "  \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [");
    if (m->charsmap_len) {
        /* the rules first, as sentencepiece's NormalizePrefix runs before its
         * whitespace handling: HF's Precompiled reads the same blob (the
         * darts-clone trie and its strings), base64 in the file, as
         * transformers' convert_slow_tokenizer writes it */
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *c = m->charsmap;
        size_t len = m->charsmap_len;
        jb_lit(b, "\n    {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"");
        for (size_t i = 0; i < len; i += 3) {
            uint32_t v = (uint32_t)c[i] << 16 | (i + 1 < len ? (uint32_t)c[i + 1] << 8 : 0) | (i + 2 < len ? c[i + 2] : 0);
            char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < len ? b64[v >> 6 & 63] : '=',
                         i + 2 < len ? b64[v & 63] : '='};
            jb_put(b, q, 4);
        }
        jb_lit(b, "\"}");
        n++;
    }
    if (m->remove_extra_ws) {
        jb_lit(b, n ? ",\n    " : "\n    ");
        jb_lit(b, "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"\\\\A +\"}, \"content\": \"\"},"
                  "\n    {\"type\": \"Replace\", \"pattern\": {\"Regex\": \" {2,}\"}, \"content\": \" \"}");
        n += 2;
    }
    if (m->escape_ws) {
        jb_lit(b, n ? ",\n    " : "\n    ");
        jb_lit(b, "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" TKMI_WS "\"}");
        n++;
    }
    if (m->remove_extra_ws) {
        jb_lit(b, n ? ",\n    " : "\n    ");
        jb_lit(b, "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"");
        jb_lit(b, m->escape_ws ? TKMI_WS : " ");
        jb_lit(b, "+\\\\z\"}, \"content\": \"\"}");
        n++;
    }
    if (m->add_dummy_prefix) {
        jb_lit(b, n ? ",\n    " : "\n    ");
        jb_lit(b, "{\"type\": \"Prepend\", \"prepend\": ");
        jb_cstr(b, ws);
        jb_lit(b, "}");
        n++;
    }
    jb_lit(b, "\n  ]},\n");
}

/* sentencepiece's decoder: unk -> its surface (reached only with
 * skip_special_tokens=False, as HF skips special tokens first), ▁ -> ' ',
 * runs of byte pieces -> UTF-8 (U+FFFD per invalid byte), and one leading
 * space dropped when the encoder adds a dummy prefix. Control pieces vanish
 * in sentencepiece; in HF only with skip_special_tokens. */
static void write_decoder(jbuf *b, const tkm_model *m)
{
    jb_lit(b, "  \"decoder\": {\"type\": \"Sequence\", \"decoders\": [");
    if (m->unk_id >= 0) {
        jb_lit(b, "\n    {\"type\": \"Replace\", \"pattern\": {\"Regex\": ");
        jb_regex_whole(b, tkmi_piece(m, m->unk_id), m->plen[m->unk_id]);
        jb_lit(b, "}, \"content\": ");
        jb_str(b, m->unk_surface, m->unk_surface_len);
        jb_lit(b, "},");
    }
    if (m->escape_ws) jb_lit(b, "\n    {\"type\": \"Replace\", \"pattern\": {\"String\": \"" TKMI_WS "\"}, \"content\": \" \"},");
    jb_lit(b, "\n    {\"type\": \"ByteFallback\"},\n    {\"type\": \"Fuse\"}");
    if (m->add_dummy_prefix || m->remove_extra_ws) jb_lit(b, ",\n    {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}");
    jb_lit(b, "\n  ]},\n");
}

/* ---- Unigram ----
 *
 * HF's Unigram runs sentencepiece's EncodeOptimized, but its lattice holds
 * every vocab entry at its stored score, where sentencepiece's holds only
 * NORMAL and USER_DEFINED pieces, scores USER_DEFINED ones length x max - 0.1,
 * skips UNUSED ones, and gives unknown characters min(NORMAL) - 10 (HF:
 * min(all) - 10). So the file carries the scores sentencepiece's lattice uses:
 *  - USER_DEFINED: (float)(bytes x max NORMAL score) - 0.1, as a double;
 *  - CONTROL, UNKNOWN, BYTE, UNUSED: a score 10 below the sum of the scores of
 *    their characters' single-character pieces, so any path through them
 *    loses to the path through those characters: HF can match "<s>" or
 *    "<0x41>" written in the text, and never chooses them.
 * That lowers HF's minimum, hence its unknown-character score. Harmless when
 * every character of every lattice piece is itself a single-character piece
 * (always so for trained models): an unknown character is then covered by
 * the unknown node alone, on every path, and its score is a common constant.
 * What cannot be made identical is checked and refused here. */
static int lattice_piece(const tkm_model *m, int id)
{
    return id >= 0 && (m->type[id] == TKM_PIECE_NORMAL || m->type[id] == TKM_PIECE_USER_DEFINED);
}

static const char *type_name(int t)
{
    switch (t) {
    case TKM_PIECE_NORMAL: return "normal";
    case TKM_PIECE_UNKNOWN: return "unknown";
    case TKM_PIECE_CONTROL: return "control";
    case TKM_PIECE_USER_DEFINED: return "user-defined";
    case TKM_PIECE_UNUSED: return "unused";
    case TKM_PIECE_BYTE: return "byte";
    default: return "?";
    }
}

/* Sum of the single-character pieces' scores over piece id's characters;
 * *bad receives the byte offset of a character that is no lattice piece, or
 * stays -1. */
static double chars_score(const tkm_model *m, const tkmi_strmap *all, const double *sc, int id, long *bad)
{
    const char *p = tkmi_piece(m, id);
    size_t len = m->plen[id], i = 0;
    double sum = 0;
    *bad = -1;
    while (i < len) {
        size_t k = (size_t)tkmi_utf8_lead_len((uint8_t)p[i]);
        int c = tkmi_strmap_get(all, p + i, k);
        if (!lattice_piece(m, c)) {
            *bad = (long)i;
            return 0;
        }
        sum += sc[c];
        i += k;
    }
    return sum;
}

static int unigram_scores(const tkm_model *m, const tkmi_strmap *all, double *sc)
{
    const char *name = m->name ? m->name : "model";
    float u_min = FLT_MAX, u_max = FLT_MIN; /* as sentencepiece (and lib/bpe_encode.c) */
    for (int id = 0; id < m->n; id++)
        if (m->type[id] == TKM_PIECE_NORMAL) {
            if (m->score[id] < u_min) u_min = m->score[id];
            if (m->score[id] > u_max) u_max = m->score[id];
        }
    for (int id = 0; id < m->n; id++) {
        if (m->type[id] == TKM_PIECE_NORMAL) sc[id] = m->score[id];
        else if (m->type[id] == TKM_PIECE_USER_DEFINED) sc[id] = (double)((float)m->plen[id] * u_max) - 0.1;
    }
    double lo = (double)u_min;
    for (int id = 0; id < m->n; id++) {
        if (lattice_piece(m, id)) continue;
        const char *p = tkmi_piece(m, id);
        int len = (int)m->plen[id];
        TKM_RETURN_ERROR_IF(tkmi_utf8_lead_len((uint8_t)p[0]) == len, TKM_ENOTSUP,
                            "%s: %s piece %d '%.*s' is a single character; HF's Unigram would take it where "
                            "sentencepiece sees an unknown character, so the model cannot be exported",
                            name, type_name(m->type[id]), id, len, p);
        long bad;
        double s = chars_score(m, all, sc, id, &bad);
        TKM_RETURN_ERROR_IF(bad >= 0, TKM_ENOTSUP,
                            "%s: %s piece %d '%.*s' holds '%.*s' (byte %ld), which is no piece; HF's Unigram "
                            "would match the piece in text where sentencepiece does not, so the model cannot be "
                            "exported", name, type_name(m->type[id]), id, len, p,
                            tkmi_utf8_lead_len((uint8_t)p[bad]), p + bad, bad + 1);
        sc[id] = s - 10.0;
        if (sc[id] < lo) lo = sc[id];
    }
    if (lo < (double)u_min)
        for (int id = 0; id < m->n; id++) {
            if (!lattice_piece(m, id)) continue;
            long bad;
            chars_score(m, all, sc, id, &bad);
            TKM_RETURN_ERROR_IF(bad >= 0, TKM_ENOTSUP,
                                "%s: piece %d '%.*s' holds '%.*s' (byte %ld), which is no piece by itself; HF "
                                "would score unknown characters differently from sentencepiece, so the model "
                                "cannot be exported", name, id, (int)m->plen[id], tkmi_piece(m, id),
                                tkmi_utf8_lead_len((uint8_t)tkmi_piece(m, id)[bad]), tkmi_piece(m, id) + bad,
                                bad + 1);
        }
    return 0;
}

static int write_unigram(jbuf *b, const tkm_model *m, const tkmi_strmap *all)
{
    char num[64];
    double *sc = tkmi_malloc((size_t)m->n * sizeof *sc);
    TKM_RETURN_ERROR_IF(!sc, TKM_ENOMEM, "out of memory");
    int rc = unigram_scores(m, all, sc);
    if (rc < 0) {
        tkmi_free(sc);
        return rc;
    }
    jb_lit(b, "  \"model\": {\n    \"type\": \"Unigram\",\n    \"unk_id\": ");
    snprintf(num, sizeof num, "%d", m->unk_id);
    jb_lit(b, m->unk_id >= 0 ? num : "null");
    jb_lit(b, ",\n    \"byte_fallback\": ");
    jb_lit(b, m->byte_fallback ? "true" : "false");
    jb_lit(b, ",\n    \"vocab\": [");
    for (int id = 0; id < m->n; id++) {
        jb_lit(b, id ? ",\n      [" : "\n      [");
        jb_str(b, tkmi_piece(m, id), m->plen[id]);
        /* %.17g: the double HF parses is exactly ours */
        snprintf(num, sizeof num, ", %.17g]", sc[id]);
        jb_lit(b, num);
    }
    jb_lit(b, "\n    ]\n  }\n");
    tkmi_free(sc);
    return 0;
}

static int write_model(jbuf *b, const tkm_model *m, const tkmi_strmap *all)
{
    if (m->model_type == TKM_MODEL_UNIGRAM) {
        return write_unigram(b, m, all);
    }
    char num[32];
    jb_lit(b, "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": ");
    if (m->unk_id >= 0) jb_str(b, tkmi_piece(m, m->unk_id), m->plen[m->unk_id]);
    else jb_lit(b, "null");
    jb_lit(b, ",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
              "    \"fuse_unk\": true,\n    \"byte_fallback\": ");
    jb_lit(b, m->byte_fallback ? "true" : "false");
    jb_lit(b, ",\n    \"ignore_merges\": false,\n    \"vocab\": {");
    for (int id = 0; id < m->n; id++) {
        jb_lit(b, id ? ",\n      " : "\n      ");
        jb_str(b, tkmi_piece(m, id), m->plen[id]);
        snprintf(num, sizeof num, ": %d", id);
        jb_lit(b, num);
    }
    jb_lit(b, "\n    },\n    \"merges\": [");
    merge_t *mv = NULL;
    size_t nm = 0;
    TKM_FORWARD_IF_ERROR(collect_merges(m, all, &mv, &nm));
    for (size_t i = 0; i < nm; i++) {
        const char *p = tkmi_piece(m, mv[i].id);
        jb_lit(b, i ? ",\n      [" : "\n      [");
        jb_str(b, p, mv[i].split);
        jb_lit(b, ", ");
        jb_str(b, p + mv[i].split, mv[i].len - mv[i].split);
        jb_lit(b, "]");
    }
    tkmi_free(mv);
    jb_lit(b, nm ? "\n    ]\n  }\n" : "]\n  }\n");
    return 0;
}

/* What HF cannot express, and pieces JSON cannot carry. */
static int check_exportable(const tkm_model *m, tkmi_strmap *all)
{
    const char *name = m->name ? m->name : "model";
    TKM_RETURN_ERROR_IF(m->front, TKM_ENOTSUP, "%s: was read from a tokenizer.json or tiktoken file; only "
                        "sentencepiece models are exported", name);
    TKM_RETURN_ERROR_IF(m->model_type != TKM_MODEL_BPE && m->model_type != TKM_MODEL_UNIGRAM, TKM_ENOTSUP,
                        "%s: only BPE and Unigram models can be exported to tokenizer.json (model type %d)", name, m->model_type);
    TKM_RETURN_ERROR_IF(m->denorm_map_len > 0, TKM_ENOTSUP,
                        "%s: the model has denormalization rules (denormalizer_spec), which a tokenizer.json "
                        "decoder cannot express", name);
    TKM_RETURN_ERROR_IF(m->treat_ws_suffix, TKM_ENOTSUP,
                        "%s: treat_whitespace_as_suffix cannot be exported to tokenizer.json", name);
    /* HF tokenizers (0.23) finds normalized added tokens at the wrong place
     * (or panics, "AddedVocabulary bad split") after a Prepend or a
     * length-changing regex Replace: "a,  b" with a dummy prefix and the
     * user-defined "▁▁" comes out as "▁▁▁". Such BPE files would be wrong. */
    if (m->model_type == TKM_MODEL_BPE && m->has_user && (m->add_dummy_prefix || m->remove_extra_ws))
        return tkmi_error(TKM_ENOTSUP, "%s: a BPE model with user-defined pieces and %s cannot be exported: HF "
                          "tokenizers misplaces added tokens after that normalization", name,
                          m->add_dummy_prefix ? "add_dummy_prefix" : "remove_extra_whitespaces");
    for (int id = 0; id < m->n; id++) {
        const char *p = tkmi_piece(m, id);
        size_t len = m->plen[id], i = 0;
        TKM_RETURN_ERROR_IF(len == 0, TKM_EFORMAT, "%s: piece %d is empty", name, id);
        while (i < len) {
            int mb;
            TKM_RETURN_ERROR_IF(tkmi_utf8_decode((const uint8_t *)p + i, len - i, &mb) < 0, TKM_EFORMAT,
                                "%s: piece %d is not valid UTF-8 (byte %zu); tokenizer.json needs UTF-8", name, id,
                                i + 1);
            i += (size_t)mb;
        }
        int rc = tkmi_strmap_put(all, p, len, id);
        if (rc < 0) return rc;
        TKM_RETURN_ERROR_IF(rc == 0, TKM_EFORMAT, "%s: piece %d '%.*s' duplicates piece %d", name, id, (int)len, p,
                            tkmi_strmap_get(all, p, len));
    }
    return 0;
}

int tkm_model_export_hf_json(const tkm_model *m, const char *path)
{
    return tkm_model_export_hf_json_flags(m, path, 0);
}

int tkm_model_export_hf_json_flags(const tkm_model *m, const char *path, unsigned flags)
{
    tkmi_strmap all;
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&all, (size_t)m->n));
    int rc = check_exportable(m, &all);
    jbuf b = {0};
    if (rc == 0) {
        jb_lit(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n");
        write_added(&b, m);
        write_normalizer(&b, m);
        jb_lit(&b, "  \"pre_tokenizer\": null,\n  \"post_processor\": null,\n");
        write_decoder(&b, m);
        rc = write_model(&b, m, &all);
        if (rc == 0 && m->model_type == TKM_MODEL_UNIGRAM && !(flags & TKM_EXPORT_UNIGRAM_TIES))
            rc = tkmi_error(TKM_ETIES,
                            "%s: a Unigram model cannot be exported with ids always identical to "
                            "sentencepiece's: HF adds path scores in double precision where sentencepiece "
                            "rounds them to float, so equal-score segmentations (the same pieces in another "
                            "order) can come out differently, about one line in a thousand",
                            m->name ? m->name : "model");
        jb_lit(&b, "}\n");
        if (rc == 0 && b.err) rc = tkmi_error(b.err, "out of memory");
    }
    if (rc == 0) rc = tkmi_write_file_atomic(path, b.p, b.n);
    tkmi_free(b.p);
    tkmi_strmap_free(&all);
    return rc;
}

/* ---- a transformers folder ----
 *
 * tokenizer.json (above), tokenizer.model (the model itself), and the two
 * files transformers reads to pick a class and its special tokens. The class
 * is PreTrainedTokenizerFast (TokenizersBackend in transformers 5): the one
 * class that takes tokenizer.json as it is in 4.x and 5.x alike. The Llama
 * classes would not: 5.x rebuilds a Llama pipeline (Metaspace with a prefix
 * space, byte fallback on) from the vocabulary and merges, and 4.x's slow
 * class rewrites the model unless legacy is set. Nothing is added around a
 * sequence (add_bos_token/add_eos_token false), so ids equal spm_encode's,
 * and split_special_tokens makes HF encode control-piece text ("<s>" typed
 * in the input) as ordinary text, as sentencepiece does. A model without a
 * padding piece pads with its EOS (else its unknown piece), so padding=True
 * works; the attention mask tells pads apart. */
static void special_entry(jbuf *b, const char *key, const tkm_model *m, int id, int full)
{
    jb_lit(b, b->n > 2 ? ",\n  \"" : "\n  \""); /* the first entry follows a lone "{" */
    jb_lit(b, key);
    jb_lit(b, "\": ");
    if (!full) {
        jb_str(b, tkmi_piece(m, id), m->plen[id]);
        return;
    }
    jb_lit(b, "{\"content\": ");
    jb_str(b, tkmi_piece(m, id), m->plen[id]);
    jb_lit(b, ", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false}");
}

static int pad_piece(const tkm_model *m)
{
    return m->pad_id >= 0 ? m->pad_id : m->eos_id >= 0 ? m->eos_id : m->unk_id;
}

static void write_specials(jbuf *b, const tkm_model *m, int full)
{
    if (m->bos_id >= 0) special_entry(b, "bos_token", m, m->bos_id, full);
    if (m->eos_id >= 0) special_entry(b, "eos_token", m, m->eos_id, full);
    if (m->unk_id >= 0) special_entry(b, "unk_token", m, m->unk_id, full);
    if (pad_piece(m) >= 0) special_entry(b, "pad_token", m, pad_piece(m), full);
}

static int dir_file(char **out, const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = tkmi_malloc(n);
    TKM_RETURN_ERROR_IF(!p, TKM_ENOMEM, "out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    *out = p;
    return 0;
}

int tkm_model_export_hf_dir(const tkm_model *m, const char *dir, unsigned flags)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        TKM_RETURN_ERROR_IF(!S_ISDIR(st.st_mode), TKM_EIO, "%s: exists and is not a directory", dir);
    } else {
        TKM_RETURN_ERROR_IF(mkdir(dir, 0777) != 0 && errno != EEXIST, TKM_EIO, "%s: cannot create: %s", dir,
                            strerror(errno));
    }
    jbuf cfg = {0}, map = {0};
    jb_lit(&cfg, "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\"");
    write_specials(&cfg, m, 0);
    jb_lit(&cfg, ",\n  \"add_bos_token\": false,\n  \"add_eos_token\": false,\n  \"split_special_tokens\": true,\n"
                 "  \"clean_up_tokenization_spaces\": false,\n  \"legacy\": true,\n  \"padding_side\": \"right\",\n"
                 "  \"model_max_length\": 1000000000000000019884624838656\n}\n");
    jb_lit(&map, "{");
    write_specials(&map, m, 1);
    jb_lit(&map, "\n}\n");
    char *p = NULL;
    int rc = cfg.err ? tkmi_error(cfg.err, "out of memory") : map.err ? tkmi_error(map.err, "out of memory") : 0;
    /* tokenizer.json first: it refuses what HF cannot express, before any other file is written */
    if (rc == 0 && (rc = dir_file(&p, dir, "tokenizer.json")) == 0)
        rc = tkm_model_export_hf_json_flags(m, p, flags);
    tkmi_free(p), p = NULL;
    if (rc == 0 && (rc = dir_file(&p, dir, "tokenizer.model")) == 0)
        rc = tkm_model_save(m, p);
    tkmi_free(p), p = NULL;
    if (rc == 0 && (rc = dir_file(&p, dir, "tokenizer_config.json")) == 0)
        rc = tkmi_write_file_atomic(p, cfg.p, cfg.n);
    tkmi_free(p), p = NULL;
    if (rc == 0 && (rc = dir_file(&p, dir, "special_tokens_map.json")) == 0)
        rc = tkmi_write_file_atomic(p, map.p, map.n);
    tkmi_free(p);
    tkmi_free(cfg.p);
    tkmi_free(map.p);
    return rc;
}
