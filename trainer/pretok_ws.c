/* pretok_ws.c - pre-token cutting for sentencepiece's other whitespace
 * rules: treat_whitespace_as_suffix ("foo\u2581"), split_by_whitespace=false
 * (pieces may hold U+2581 inside: "foo\u2581bar") and
 * pretokenization_delimiter. The default rules (U+2581 starts a piece, words
 * split at it) stay in pretok_count.c, whose fast paths this file leaves
 * alone: the trainer sends a line here only when one of these options is on.
 *
 * A cut goes exactly where no valid piece (IsValidSentencePiece in
 * sentencepiece's trainer_interface.cc) can span, so counting pieces over
 * the cut pre-tokens is counting them over whole sentences:
 *   suffix, split:      after each U+2581 (with whitespace-only pieces: after
 *                       a run of them), as SplitIntoWords(..., true, ...)
 *   prefix, no split:   U+2581 may sit anywhere but last, so a run of U+2581
 *                       before a script change goes with the next script
 *   suffix, no split:   U+2581 may sit anywhere but first, so the run stays
 *                       with the previous script
 * plus, in every mode, the cuts of pretok_count.c: script changes, digits
 * with split_digits, NUL, user-defined symbols; and the delimiter, which
 * sentencepiece 0.2.x replaces by its boundary mark U+001F: that counts
 * towards the character coverage and is never a piece (vocab_common.c), so
 * each delimiter is counted as a pre-token "\x1F" (checked against PyPI
 * sentencepiece 0.2.3: the same BPE model). */
#include "trainer_internal.h"

typedef struct {
    size_t tok;      /* start of the current pre-token */
    size_t run;      /* start of the U+2581 run ending at the current position, or SIZE_MAX */
    int last_script; /* script of the last non-ws char since the cut; -2 none, -1 any */
    int all_ws;      /* the current pre-token is only U+2581 so far */
} wcut;

static int cut_at(tkmi_worker *w, wcut *c, const char *s, size_t at)
{
    TKM_FORWARD_IF_ERROR(tkmi_pretok_emit(w, s + c->tok, at - c->tok));
    c->tok = at;
    c->all_ws = 1;
    return 0;
}

static int ws_char(const struct tkm_trainer *t, tkmi_worker *w, wcut *c, const char *s, size_t at, size_t mb, int32_t cp)
{
    const tkm_train_options *o = &t->o;
    int suffix = o->treat_whitespace_as_suffix, split = o->split_by_whitespace;
    int allow = o->allow_whitespace_only_pieces;
    if (cp == (int32_t)TKMI_WS_CP) {
        if (split && !suffix) { /* SplitIntoWords: a new word at each U+2581 (at a run's start with allow) */
            if (!(allow && c->run != SIZE_MAX && c->all_ws)) TKM_FORWARD_IF_ERROR(cut_at(w, c, s, at));
            c->last_script = -2;
        }
        if (c->run == SIZE_MAX) c->run = at;
        if (split && suffix && !allow) { /* the word ends after its U+2581 */
            TKM_FORWARD_IF_ERROR(cut_at(w, c, s, at + mb));
            c->last_script = -2;
            c->run = SIZE_MAX;
        }
        return 0;
    }
    size_t run = c->run;
    c->run = SIZE_MAX;
    if (split && suffix && allow && run != SIZE_MAX) { /* a run of U+2581 ends the word */
        TKM_FORWARD_IF_ERROR(cut_at(w, c, s, at));
        c->last_script = -2;
    }
    if (cp == 0) { /* NUL never enters a piece */
        TKM_FORWARD_IF_ERROR(cut_at(w, c, s, at));
        c->tok = at + mb;
        c->last_script = -2;
        return 0;
    }
    int digit = tkmi_is_decimal_digit((uint32_t)cp);
    if (o->split_digits && digit) {
        TKM_FORWARD_IF_ERROR(cut_at(w, c, s, at));
        TKM_FORWARD_IF_ERROR(cut_at(w, c, s, at + mb));
        c->last_script = -2;
        return 0;
    }
    int sc = (digit && !o->split_by_number) ? TKMI_SCRIPT_ANY : tkmi_script((uint32_t)cp);
    if (o->split_by_unicode_script && c->last_script >= 0 && sc >= 0 && sc != c->last_script) {
        /* no split, prefix: the U+2581 run before this character cannot end
         * a piece (nor start one in suffix mode, where it stays behind) */
        size_t cut = (!split && !suffix && run != SIZE_MAX) ? run : at;
        TKM_FORWARD_IF_ERROR(cut_at(w, c, s, cut));
    }
    c->all_ws = 0;
    c->last_script = sc == TKMI_SCRIPT_ANY ? -1 : sc;
    return 0;
}

int tkmi_pretok_line_ws(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len)
{
    w->st.lines++;
    w->st.bytes += len + 1;
    for (size_t i = 0; i < len;) {
        uint8_t b = (uint8_t)line[i];
        if (b < 0x80) { w->st.nul += b == 0; i++; continue; }
        int mb;
        if (tkmi_utf8_decode((const uint8_t *)line + i, len - i, &mb) < 0) w->st.invalid++;
        i += (size_t)mb;
    }
    size_t nl = 0;
    TKM_FORWARD_IF_ERROR(tkmi_normalize(&t->norm_model, line, len, &w->norm, &nl, &w->norm_cap));
    if (nl == 0) return tkmi_pretok_flush(w);
    const char *s = w->norm, *d = t->delim;
    size_t dl = t->delim_len;
    wcut c = {0, SIZE_MAX, -2, 1};
    size_t i = 0;
    while (i < nl) {
        size_t k = 0;
        if (dl && (uint8_t)s[i] == (uint8_t)d[0] && nl - i >= dl && !memcmp(s + i, d, dl)) {
            /* absl::StrReplaceAll: leftmost, non-overlapping */
            TKM_FORWARD_IF_ERROR(cut_at(w, &c, s, i));
            TKM_FORWARD_IF_ERROR(tkmi_pretok_emit(w, "\x1F", 1)); /* the boundary mark, see below */
            k = dl;
        } else if (t->norm_model.has_user && (k = tkmi_ptrie_longest(&t->norm_model.user, s + i, nl - i))) {
            TKM_FORWARD_IF_ERROR(cut_at(w, &c, s, i)); /* never split nor merged */
        }
        if (k) {
            i += k;
            c.tok = i;
            c.run = SIZE_MAX;
            c.last_script = -2;
            continue;
        }
        int mb;
        int32_t cp = tkmi_utf8_decode((const uint8_t *)s + i, nl - i, &mb);
        TKM_FORWARD_IF_ERROR(ws_char(t, w, &c, s, i, (size_t)mb, cp));
        i += (size_t)mb;
    }
    TKM_FORWARD_IF_ERROR(tkmi_pretok_emit(w, s + c.tok, nl - c.tok));
    return tkmi_pretok_flush(w);
}
