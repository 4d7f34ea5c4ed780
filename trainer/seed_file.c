/* seed_file.c - sentencepiece's seed_sentencepieces_file for the Unigram
 * trainer: seed pieces read from PIECE<TAB>FREQ lines instead of counted
 * from the corpus (unigram_model_trainer.cc, MakeSeedSentencePieces). A
 * piece scores FREQ x its length in characters, as a counted seed does;
 * pieces that are not valid pieces under the training options
 * (IsValidSentencePiece) are skipped, as sentencepiece skips them. */
#include <stdlib.h>

#include "trainer_internal.h"

/* IsValidSentencePiece over a whole piece, with the trainer's rules (the
 * same character classes as the seed counting in unigram_train.c). */
static int piece_valid(const tkm_train_options *o, const char *s, size_t n)
{
    int mode = tkmi_ws_mode(o), len = 0, all_ws = 1, first_ws = 0, prev_ws = 0, prev = -2, has_digit = 0, ok = 1;
    for (size_t i = 0; i < n;) {
        int mb;
        int32_t cp = tkmi_utf8_decode((const uint8_t *)s + i, n - i, &mb);
        if (cp < 0 || cp == 0 || cp == '\t' || cp == ' ' || cp == 0x2585) return 0;
        int is_ws = cp == (int32_t)TKMI_WS_CP;
        int v = tkmi_ws_grow(mode, o->allow_whitespace_only_pieces, is_ws, len, all_ws, first_ws, prev_ws);
        if (v < 0) return 0;
        ok = v; /* the rule for the piece so far: only its last verdict counts */
        if (!is_ws) {
            int dig = tkmi_is_decimal_digit((uint32_t)cp);
            if (o->split_digits && (dig || has_digit) && len > 0) return 0;
            int sc = (dig && !o->split_by_number) ? -1 : tkmi_script((uint32_t)cp);
            if (o->split_by_unicode_script && prev >= 0 && sc >= 0 && sc != prev) return 0;
            prev = sc;
            has_digit |= dig;
            all_ws = 0;
        }
        if (len == 0) first_ws = is_ws;
        prev_ws = is_ws;
        if (++len > o->max_piece_length) return 0;
        i += (size_t)mb;
    }
    return len > 0 && ok;
}

int tkmi_seed_file_read(const tkm_train_options *o, tkmi_seedp **out, size_t *n_out, char **buf_out)
{
    const char *path = o->seed_sentencepieces_file;
    *out = NULL;
    *n_out = 0;
    *buf_out = NULL;
    tkm_reader *r;
    TKM_FORWARD_IF_ERROR(tkm_reader_open(path, &r));
    char *buf = NULL;
    size_t bn = 0, bcap = 0, n = 0, cap = 0, skipped = 0;
    tkmi_seedp *v = NULL;
    tkmi_strmap seen;
    int rc = tkmi_strmap_init(&seen, 1024);
    const char *line;
    size_t len;
    /* first pass: copy the pieces into one buffer (pointers are set after,
     * when it no longer moves) */
    while (rc == 0 && (rc = tkm_reader_next(r, &line, &len)) > 0) {
        rc = 0;
        const char *tab = memchr(line, '\t', len);
        if (!tab) {
            rc = tkmi_error(TKM_EFORMAT, "%s:%llu: a seed line is PIECE<TAB>FREQ", path,
                            (unsigned long long)tkm_reader_lineno(r));
            break;
        }
        /* FREQ: the second field (absl::SimpleAtoi: spaces, sign; more fields are ignored) */
        const char *p = tab + 1, *e = memchr(p, '\t', len - (size_t)(p - line));
        if (!e) e = line + len;
        while (p < e && (*p == ' ' || *p == '\r')) p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\r')) e--;
        if (p < e && *p == '+') p++;
        int64_t f = 0;
        int good = p < e;
        for (; good && p < e; p++) {
            good = *p >= '0' && *p <= '9' && f <= (INT64_MAX / 64 - 9) / 10;
            f = f * 10 + (*p - '0');
        }
        if (!good || f < 1) {
            rc = tkmi_error(TKM_EFORMAT, "%s:%llu: the frequency must be an integer >= 1", path,
                            (unsigned long long)tkm_reader_lineno(r));
            break;
        }
        size_t pl = (size_t)(tab - line);
        size_t nch = tkmi_utf8_chars((const uint8_t *)line, pl);
        /* single characters come from the corpus, as every seed set's do */
        if (nch < 2 || !piece_valid(o, line, pl)) { skipped++; continue; }
        if (bn + pl > bcap && (rc = tkmi_grow((void **)&buf, &bcap, bn + pl, 1)) < 0) break;
        if (n == cap && (rc = tkmi_grow((void **)&v, &cap, n + 1, sizeof *v)) < 0) break;
        memcpy(buf + bn, line, pl);
        v[n++] = (tkmi_seedp){(const char *)(uintptr_t)bn, (uint32_t)pl, f * (int64_t)nch};
        bn += pl;
    }
    tkm_reader_close(r);
    /* the same piece twice: the first line counts */
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        v[i].s = buf + (uintptr_t)v[i].s;
        int32_t got = tkmi_strmap_get(&seen, v[i].s, v[i].len);
        if (got >= 0) continue;
        rc = tkmi_strmap_put(&seen, v[i].s, v[i].len, (int32_t)k);
        if (rc >= 0) { rc = 0; v[k++] = v[i]; }
    }
    tkmi_strmap_free(&seen);
    (void)skipped;
    if (rc < 0) {
        tkmi_free(buf);
        tkmi_free(v);
        return rc;
    }
    *out = v;
    *n_out = k;
    *buf_out = buf;
    return 0;
}
