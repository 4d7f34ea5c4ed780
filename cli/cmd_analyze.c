/* cmd_analyze.c - `tokenmill analyze`: compression of corpora by tokenizers
 * and the token distribution of vocabularies, as text tables, JSON, CSV or an
 * HTML page with SVG charts. The numbers come from libtokenmill's analyze API. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tokenmill_analyze.h"

enum { OUT_TEXT, OUT_JSON, OUT_CSV };

typedef struct {
    const char *name;
    char **files;
    int nfiles;
} corpus_t;

typedef struct {
    const char *sub;             /* compression, vocab, report */
    const char **model_paths;
    tkm_model **models;
    int nmodels;
    corpus_t *corpora;
    int ncorpora;
    int format, threads;
    int tiktoken_pattern;        /* TKM_TIKTOKEN_* for every -m, AUTO by default */
    const char *outpath;
    /* results */
    tkm_analyze_counts *counts;  /* [corpus][model] */
    uint8_t **used;              /* [model], over all corpora; NULL unless needed */
} ctx_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill analyze compression -m MODEL [-m MODEL...] --corpus NAME=PATH [--corpus ...]\n"
               "       tokenmill analyze vocab -m MODEL [-m MODEL...] [--corpus NAME=PATH ...]\n"
               "       tokenmill analyze report -m MODEL [-m MODEL...] --corpus NAME=PATH [...] -o report.html\n"
               "\n"
               "compression: bytes, characters, tokens and their ratios for each tokenizer on\n"
               "each corpus; vocab: the pieces of each vocabulary by category (latin, japanese,\n"
               "other), length and script, and with --corpus the pieces never used on it;\n"
               "report: both as one HTML page with charts.\n"
               "\n"
               "  -m, --model FILE        sentencepiece .model, HF tokenizer.json or tiktoken\n"
               "                          rank file (*.tiktoken); repeat to compare; the first\n"
               "                          is the baseline of the token ratio\n"
               "      --tiktoken-pattern P  r50k, cl100k or o200k: read every -m FILE as a tiktoken\n"
               "                          file with that pre-tokenization (default: from its name)\n"
               "  -c, --corpus NAME=PATH  a file, a directory (its files) or a glob; plain or .gz\n"
               "  -f, --format F          text (default), json or csv (compression, vocab)\n"
               "      --json, --csv       the same as -f json, -f csv\n"
               "  -o, --output FILE       write there (atomically) instead of stdout\n"
               "  -t, --threads N         worker threads (number of CPUs)\n"
               "  -h, --help\n");
}

/* ---- output helpers ---- */

static void json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') { fprintf(f, "\\%c", c); p++; continue; }
        if (c < 0x20) { fprintf(f, "\\u%04x", c); p++; continue; }
        if (c < 0x80) { fputc(c, f); p++; continue; }
        /* pass valid UTF-8 through; an invalid byte becomes U+FFFD */
        int n = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++) ok = (p[i] & 0xC0) == 0x80;
        if (ok) { fwrite(p, 1, (size_t)n, f); p += n; }
        else { fputs("\\ufffd", f); p++; }
    }
    fputc('"', f);
}

/* Text for the UTF-8 HTML page: markup characters escaped; invalid UTF-8
 * and control characters (C0 but tab and newlines, DEL, C1), which HTML does
 * not allow, become U+FFFD (names come from the command line). */
static void html_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        switch (c) {
        case '<': fputs("&lt;", f); p++; continue;
        case '>': fputs("&gt;", f); p++; continue;
        case '&': fputs("&amp;", f); p++; continue;
        case '"': fputs("&quot;", f); p++; continue;
        case '\t': case '\n': case '\r': fputc(c, f); p++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7F || (c == 0xC2 && p[1] >= 0x80 && p[1] < 0xA0)) {
            fputs("&#xFFFD;", f);
            p += c == 0xC2 ? 2 : 1;
            continue;
        }
        if (c < 0x80) { fputc(c, f); p++; continue; }
        int n = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++) ok = (p[i] & 0xC0) == 0x80;
        if (ok) { fwrite(p, 1, (size_t)n, f); p += n; }
        else { fputs("&#xFFFD;", f); p++; }
    }
}
void cli_html_str(FILE *f, const char *s) { html_str(f, s); }

static void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

/* A CSV field (RFC 4180): quoted, with "" for ", when it holds a comma, a
 * quote, CR or LF; invalid UTF-8 bytes become U+FFFD as in JSON. */
static void csv_str(FILE *f, const char *s)
{
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    const unsigned char *p = (const unsigned char *)s;
    if (quote) fputc('"', f);
    while (*p) {
        unsigned char c = *p;
        if (c == '"') { fputs("\"\"", f); p++; continue; }
        if (c < 0x80) { fputc(c, f); p++; continue; }
        int n = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++) ok = (p[i] & 0xC0) == 0x80;
        if (ok) { fwrite(p, 1, (size_t)n, f); p += n; }
        else { fputs("\xef\xbf\xbd", f); p++; }
    }
    if (quote) fputc('"', f);
}

/* A CSV number: the digits JSON gets; an empty field where JSON has null. */
static void csv_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.6g", v);
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : NAN; }

/* The derived columns of a compression row, one definition for the text,
 * JSON, CSV and HTML outputs (NAN where a denominator is 0); first is the
 * first tokenizer's row on the same corpus. */
enum { R_BYTES_TOK, R_CHARS_TOK, R_TOK_WORD, R_BYTE_SHARE, R_UNK_SHARE, R_VS_FIRST, R_COUNT };
static const char *const ratio_names[R_COUNT] = {"bytes_per_token", "chars_per_token", "tokens_per_word",
                                                 "byte_fallback_share", "unknown_share", "tokens_vs_first"};
static void row_ratios(const tkm_analyze_counts *a, const tkm_analyze_counts *first, double r[R_COUNT])
{
    r[R_BYTES_TOK] = ratio(a->bytes, a->tokens);
    r[R_CHARS_TOK] = ratio(a->chars, a->tokens);
    r[R_TOK_WORD] = ratio(a->tokens, a->words);
    r[R_BYTE_SHARE] = ratio(a->byte_tokens, a->tokens);
    r[R_UNK_SHARE] = ratio(a->unk_tokens, a->tokens);
    r[R_VS_FIRST] = ratio(a->tokens, first->tokens) - 1;
}

/* Label of a model: the file name without directory and ".model". */
static const char *label(const char *path, char *buf, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 6 && !strcmp(b + n - 6, ".model")) n -= 6;
    snprintf(buf, cap, "%.*s", (int)n, b);
    return buf;
}

/* ---- compression ---- */

static int run_compression(ctx_t *c, int need_used)
{
    size_t nm = (size_t)c->nmodels;
    c->counts = calloc((size_t)c->ncorpora * nm, sizeof *c->counts);
    if (!c->counts) return TKM_ENOMEM;
    if (need_used) {
        c->used = calloc(nm, sizeof *c->used);
        if (!c->used) return TKM_ENOMEM;
        for (size_t k = 0; k < nm; k++)
            if (!(c->used[k] = calloc((size_t)tkm_model_size(c->models[k]), 1))) return TKM_ENOMEM;
    }
    for (int i = 0; i < c->ncorpora; i++) {
        int rc = tkm_analyze_compression((const tkm_model *const *)c->models, c->nmodels,
                                         (const char *const *)c->corpora[i].files, c->corpora[i].nfiles, c->threads,
                                         c->counts + (size_t)i * nm, c->used);
        if (rc < 0) return rc;
    }
    return 0;
}

#define VS_FIRST "token count relative to the first tokenizer (+ = more tokens, worse compression)"

static void print_compression_text(const ctx_t *c, FILE *f)
{
    char lb[256];
    for (int i = 0; i < c->ncorpora; i++) {
        const tkm_analyze_counts *row = c->counts + (size_t)i * (size_t)c->nmodels;
        fprintf(f, "%scorpus %s: %d file%s, %llu lines, %llu bytes, %llu chars, %llu words\n", i ? "\n" : "",
                c->corpora[i].name, c->corpora[i].nfiles, c->corpora[i].nfiles == 1 ? "" : "s",
                (unsigned long long)row[0].lines, (unsigned long long)row[0].bytes,
                (unsigned long long)row[0].chars, (unsigned long long)row[0].words);
        fprintf(f, "%-20s %12s %9s %9s %8s %7s %7s %9s\n", "tokenizer", "tokens", "bytes/tok", "chars/tok",
                "tok/word", "byte%", "unk%", "vs first");
        for (int k = 0; k < c->nmodels; k++) {
            const tkm_analyze_counts *a = &row[k];
            double r[R_COUNT];
            row_ratios(a, &row[0], r);
            char vs[32];
            if (k == 0) snprintf(vs, sizeof vs, "base");
            else if (!row[0].tokens) snprintf(vs, sizeof vs, "-");
            else snprintf(vs, sizeof vs, "%+.1f%%", 100.0 * r[R_VS_FIRST]);
            fprintf(f, "%-20s %12llu %9.3f %9.3f %8.3f %6.2f%% %6.2f%% %9s\n",
                    label(c->model_paths[k], lb, sizeof lb), (unsigned long long)a->tokens, r[R_BYTES_TOK],
                    r[R_CHARS_TOK], r[R_TOK_WORD], 100.0 * r[R_BYTE_SHARE], 100.0 * r[R_UNK_SHARE], vs);
        }
    }
    fprintf(f, "\nvs first: " VS_FIRST ".\n");
}

static void print_compression_json(const ctx_t *c, FILE *f)
{
    fprintf(f, "{\n  \"command\": \"compression\",\n  \"tokens_vs_first\": \"" VS_FIRST
               ": tokens / tokens of the first - 1\",\n  \"corpora\": [");
    for (int i = 0; i < c->ncorpora; i++) {
        const tkm_analyze_counts *row = c->counts + (size_t)i * (size_t)c->nmodels;
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        json_str(f, c->corpora[i].name);
        fprintf(f, ", \"files\": [");
        for (int j = 0; j < c->corpora[i].nfiles; j++) {
            if (j) fputs(", ", f);
            json_str(f, c->corpora[i].files[j]);
        }
        fprintf(f, "],\n     \"lines\": %llu, \"bytes\": %llu, \"chars\": %llu, \"words\": %llu,\n     \"tokenizers\": [",
                (unsigned long long)row[0].lines, (unsigned long long)row[0].bytes,
                (unsigned long long)row[0].chars, (unsigned long long)row[0].words);
        for (int k = 0; k < c->nmodels; k++) {
            const tkm_analyze_counts *a = &row[k];
            fprintf(f, "%s\n       {\"model\": ", k ? "," : "");
            json_str(f, c->model_paths[k]);
            fprintf(f, ", \"tokens\": %llu, \"byte_tokens\": %llu, \"unk_tokens\": %llu,",
                    (unsigned long long)a->tokens, (unsigned long long)a->byte_tokens,
                    (unsigned long long)a->unk_tokens);
            double r[R_COUNT];
            row_ratios(a, &row[0], r);
            for (int q = 0; q < R_COUNT; q++) {
                /* two lines of three */
                fprintf(f, "%s\"%s\": ", q % 3 ? ", " : q ? ",\n        " : "\n        ", ratio_names[q]);
                json_num(f, r[q]);
            }
            fputc('}', f);
        }
        fputs("]}", f);
    }
    fputs("\n  ]\n}\n", f);
}

/* One table, a row per corpus x tokenizer; the columns are JSON's names. */
static void print_compression_csv(const ctx_t *c, FILE *f)
{
    char lb[256];
    fputs("corpus,tokenizer,model,files,lines,bytes,chars,words,tokens,byte_tokens,unk_tokens,bytes_per_token,"
          "chars_per_token,tokens_per_word,byte_fallback_share,unknown_share,tokens_vs_first\n",
          f);
    for (int i = 0; i < c->ncorpora; i++) {
        const tkm_analyze_counts *row = c->counts + (size_t)i * (size_t)c->nmodels;
        for (int k = 0; k < c->nmodels; k++) {
            const tkm_analyze_counts *a = &row[k];
            csv_str(f, c->corpora[i].name);
            fputc(',', f);
            csv_str(f, label(c->model_paths[k], lb, sizeof lb));
            fputc(',', f);
            csv_str(f, c->model_paths[k]);
            fprintf(f, ",%d,%llu,%llu,%llu,%llu,%llu,%llu,%llu", c->corpora[i].nfiles,
                    (unsigned long long)a->lines, (unsigned long long)a->bytes, (unsigned long long)a->chars,
                    (unsigned long long)a->words, (unsigned long long)a->tokens,
                    (unsigned long long)a->byte_tokens, (unsigned long long)a->unk_tokens);
            double r[R_COUNT];
            row_ratios(a, &row[0], r);
            for (int q = 0; q < R_COUNT; q++) {
                fputc(',', f);
                csv_num(f, r[q]);
            }
            fputc('\n', f);
        }
    }
}

/* ---- vocab ---- */

static const char *const published_note =
    "published in the NovelAI nerdstash post (latin / japanese_multi / japanese_single / other):\n"
    " nerdstash 28586 / 18123 / 9626 / 9200, LLaMA 23964 / 0 / 836 / 7224";

static int max_len_row(const tkm_analyze_vocab *v, int nm, int chars)
{
    int hi = 0;
    for (int k = 0; k < nm; k++)
        for (int l = 1; l <= TKM_ANALYZE_MAXLEN; l++)
            if ((chars ? v[k].len_chars[l] : v[k].len_bytes[l]) && l > hi) hi = l;
    return hi;
}

/* Scripts over all models, ordered by their total count. */
typedef struct { const char *name; long total; } sc_t;
static int sc_cmp(const void *a, const void *b)
{
    const sc_t *x = a, *y = b;
    if (x->total != y->total) return x->total > y->total ? -1 : 1;
    return strcmp(x->name, y->name);
}
static int script_count(const tkm_analyze_vocab *v, const char *name)
{
    for (int i = 0; i < v->n_scripts; i++)
        if (!strcmp(v->scripts[i].name, name)) return v->scripts[i].count;
    return 0;
}
static sc_t *script_union(const tkm_analyze_vocab *v, int nm, int *n)
{
    int cap = 0;
    for (int k = 0; k < nm; k++) cap += v[k].n_scripts;
    sc_t *s = calloc((size_t)cap + 1, sizeof *s);
    if (!s) return NULL;
    *n = 0;
    for (int k = 0; k < nm; k++)
        for (int i = 0; i < v[k].n_scripts; i++) {
            int j = 0;
            while (j < *n && strcmp(s[j].name, v[k].scripts[i].name)) j++;
            if (j == *n) s[(*n)++].name = v[k].scripts[i].name;
            s[j].total += v[k].scripts[i].count;
        }
    qsort(s, (size_t)*n, sizeof *s, sc_cmp);
    return s;
}

static void print_vocab_text(const ctx_t *c, const tkm_analyze_vocab *v, int (*unused)[TKM_CAT_COUNT], FILE *f)
{
    char lb[256];
    int nm = c->nmodels;
    fprintf(f, "%-22s", "pieces by category");
    for (int k = 0; k < nm; k++) fprintf(f, " %14s", label(c->model_paths[k], lb, sizeof lb));
    fputc('\n', f);
    for (int cat = 0; cat < TKM_CAT_COUNT; cat++) {
        fprintf(f, "  %-20s", tkm_analyze_category_name(cat));
        for (int k = 0; k < nm; k++) fprintf(f, " %14d", v[k].category[cat]);
        fputc('\n', f);
    }
    fprintf(f, "  %-20s", "(user-defined)");
    for (int k = 0; k < nm; k++) fprintf(f, " %14d", v[k].user_defined);
    fprintf(f, "\n  %-20s", "total");
    for (int k = 0; k < nm; k++) fprintf(f, " %14d", v[k].pieces);
    fprintf(f, "\n(user-defined pieces are counted by their text; see tokenmill-analyze(1) for the\n"
               " definitions; %s;\n their \"other\" includes special and byte pieces)\n", published_note);
    if (unused) {
        fprintf(f, "\n%-22s", "unused on corpora");
        for (int k = 0; k < nm; k++) fprintf(f, " %14s", label(c->model_paths[k], lb, sizeof lb));
        fputc('\n', f);
        for (int cat = 0; cat < TKM_CAT_COUNT; cat++) {
            if (cat == TKM_CAT_SPECIAL) continue;
            fprintf(f, "  %-20s", tkm_analyze_category_name(cat));
            for (int k = 0; k < nm; k++) fprintf(f, " %14d", unused[k][cat]);
            fputc('\n', f);
        }
        fprintf(f, "(pieces never produced when encoding");
        for (int i = 0; i < c->ncorpora; i++) fprintf(f, " %s", c->corpora[i].name);
        fprintf(f, "; control and unknown pieces not counted)\n");
    }
    for (int chars = 1; chars >= 0; chars--) {
        fprintf(f, "\n%-22s", chars ? "length (characters)" : "length (bytes)");
        for (int k = 0; k < nm; k++) fprintf(f, " %14s", label(c->model_paths[k], lb, sizeof lb));
        fputc('\n', f);
        int hi = max_len_row(v, nm, chars);
        for (int l = 1; l <= hi; l++) {
            int any = 0;
            for (int k = 0; k < nm; k++) any |= chars ? v[k].len_chars[l] : v[k].len_bytes[l];
            if (!any) continue; /* skip empty rows */
            char lab[16];
            snprintf(lab, sizeof lab, l == TKM_ANALYZE_MAXLEN ? ">=%d" : "%d", l);
            fprintf(f, "  %-20s", lab);
            for (int k = 0; k < nm; k++) fprintf(f, " %14d", chars ? v[k].len_chars[l] : v[k].len_bytes[l]);
            fputc('\n', f);
        }
    }
    int ns = 0;
    sc_t *s = script_union(v, nm, &ns);
    fprintf(f, "\n%-22s", "script (ICU)");
    for (int k = 0; k < nm; k++) fprintf(f, " %14s", label(c->model_paths[k], lb, sizeof lb));
    fputc('\n', f);
    for (int i = 0; s && i < ns; i++) {
        fprintf(f, "  %-20s", s[i].name);
        for (int k = 0; k < nm; k++) fprintf(f, " %14d", script_count(&v[k], s[i].name));
        fputc('\n', f);
    }
    fprintf(f, "(lengths and scripts: all pieces but control, unknown and byte pieces; a piece's script\n"
               " ignores Common/Inherited characters; Han+kana mixes are Japanese, others Mixed)\n");
    free(s);
}

static void print_vocab_json(const ctx_t *c, const tkm_analyze_vocab *v, int (*unused)[TKM_CAT_COUNT], FILE *f)
{
    fprintf(f, "{\n  \"command\": \"vocab\",\n  \"published\": ");
    json_str(f, published_note);
    fprintf(f, ",\n  \"unused_corpora\": [");
    for (int i = 0; unused && i < c->ncorpora; i++) {
        if (i) fputs(", ", f);
        json_str(f, c->corpora[i].name);
    }
    fprintf(f, "],\n  \"vocabularies\": [");
    for (int k = 0; k < c->nmodels; k++) {
        fprintf(f, "%s\n    {\"model\": ", k ? "," : "");
        json_str(f, c->model_paths[k]);
        fprintf(f, ", \"pieces\": %d, \"user_defined\": %d,\n     \"categories\": {", v[k].pieces,
                v[k].user_defined);
        for (int cat = 0; cat < TKM_CAT_COUNT; cat++)
            fprintf(f, "%s\"%s\": %d", cat ? ", " : "", tkm_analyze_category_name(cat), v[k].category[cat]);
        fputs("},\n", f);
        if (unused) {
            fputs("     \"unused\": {", f);
            int first = 1;
            for (int cat = 0; cat < TKM_CAT_COUNT; cat++) {
                if (cat == TKM_CAT_SPECIAL) continue;
                fprintf(f, "%s\"%s\": %d", first ? "" : ", ", tkm_analyze_category_name(cat), unused[k][cat]);
                first = 0;
            }
            fputs("},\n", f);
        }
        for (int chars = 1; chars >= 0; chars--) {
            fprintf(f, "     \"%s\": {", chars ? "length_chars" : "length_bytes");
            int first = 1;
            for (int l = 1; l <= TKM_ANALYZE_MAXLEN; l++) {
                int n = chars ? v[k].len_chars[l] : v[k].len_bytes[l];
                if (!n) continue;
                fprintf(f, "%s\"%s%d\": %d", first ? "" : ", ", l == TKM_ANALYZE_MAXLEN ? ">=" : "", l, n);
                first = 0;
            }
            fputs("},\n", f);
        }
        fputs("     \"scripts\": {", f);
        for (int i = 0; i < v[k].n_scripts; i++) {
            if (i) fputs(", ", f);
            json_str(f, v[k].scripts[i].name);
            fprintf(f, ": %d", v[k].scripts[i].count);
        }
        fputs("}}", f);
    }
    fputs("\n  ]\n}\n", f);
}

/* The text output's tables in one CSV (layout in tokenmill-analyze(1)):
 * "table,key" then one column per model (its label, or its path where two
 * labels are equal or one is "table" or "key"), so
 * read_csv(...).query("table == 'category'") is one table. */
static void csv_key(FILE *f, const char *table, const char *key) /* ends the previous line */
{
    fputc('\n', f);
    csv_str(f, table);
    fputc(',', f);
    csv_str(f, key);
}

static void print_vocab_csv(const ctx_t *c, const tkm_analyze_vocab *v, int (*unused)[TKM_CAT_COUNT], FILE *f)
{
    int nm = c->nmodels, dup = 0;
    char lb[256], lb2[256];
    for (int k = 0; k < nm && !dup; k++) {
        label(c->model_paths[k], lb, sizeof lb);
        dup = !strcmp(lb, "table") || !strcmp(lb, "key");
        for (int j = 0; j < k && !dup; j++) dup = !strcmp(lb, label(c->model_paths[j], lb2, sizeof lb2));
    }
    fputs("table,key", f);
    for (int k = 0; k < nm; k++) {
        fputc(',', f);
        csv_str(f, dup ? c->model_paths[k] : label(c->model_paths[k], lb, sizeof lb));
    }
    csv_key(f, "pieces", "total");
    for (int k = 0; k < nm; k++) fprintf(f, ",%d", v[k].pieces);
    csv_key(f, "pieces", "user_defined");
    for (int k = 0; k < nm; k++) fprintf(f, ",%d", v[k].user_defined);
    for (int cat = 0; cat < TKM_CAT_COUNT; cat++) {
        csv_key(f, "category", tkm_analyze_category_name(cat));
        for (int k = 0; k < nm; k++) fprintf(f, ",%d", v[k].category[cat]);
    }
    for (int cat = 0; unused && cat < TKM_CAT_COUNT; cat++) {
        if (cat == TKM_CAT_SPECIAL) continue;
        csv_key(f, "unused", tkm_analyze_category_name(cat));
        for (int k = 0; k < nm; k++) fprintf(f, ",%d", unused[k][cat]);
    }
    for (int chars = 1; chars >= 0; chars--) {
        int hi = max_len_row(v, nm, chars);
        for (int l = 1; l <= hi; l++) { /* every length up to the longest, zeros included */
            char key[16];
            snprintf(key, sizeof key, l == TKM_ANALYZE_MAXLEN ? ">=%d" : "%d", l);
            csv_key(f, chars ? "length_chars" : "length_bytes", key);
            for (int k = 0; k < nm; k++) fprintf(f, ",%d", chars ? v[k].len_chars[l] : v[k].len_bytes[l]);
        }
    }
    int ns = 0;
    sc_t *s = script_union(v, nm, &ns);
    for (int i = 0; s && i < ns; i++) {
        csv_key(f, "script", s[i].name);
        for (int k = 0; k < nm; k++) fprintf(f, ",%d", script_count(&v[k], s[i].name));
    }
    fputc('\n', f);
    free(s);
}

/* ---- HTML report ---- */

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

/* Grouped horizontal bar chart: groups x series, values[g * ns + s]; bars
 * bh pixels apart (16 for most charts; histograms use thinner ones). */
static void svg_bars(FILE *f, const char *title, const char *const *groups, int ng, const char *const *series, int ns,
                     const double *values, int decimals, int bh)
{
    double mx = 0;
    for (int i = 0; i < ng * ns; i++)
        if (isfinite(values[i]) && values[i] > mx) mx = values[i];
    if (mx <= 0) mx = 1;
    int gap = 10, left = 170, width = 420, top = 30;
    int h = top + ng * (ns * bh + gap) + 20 + ns * 16;
    fprintf(f, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">\n",
            left + width + 90, h);
    fprintf(f, "<text x=\"0\" y=\"16\" font-weight=\"bold\">");
    html_str(f, title);
    fputs("</text>\n", f);
    int y = top;
    for (int g = 0; g < ng; g++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, y + (ns * bh) / 2 + 5);
        html_str(f, groups[g]);
        fputs("</text>\n", f);
        for (int s = 0; s < ns; s++) {
            double val = values[g * ns + s];
            double w = isfinite(val) ? val / mx * width : 0;
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", left, y, w, bh - 2,
                    palette[s % 10]);
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"%d\">", left + w + 4, y + bh - (bh >= 14 ? 5 : 2),
                    bh >= 14 ? 11 : 9);
            if (isfinite(val)) fprintf(f, "%.*f", decimals, val);
            fputs("</text>\n", f);
            y += bh;
        }
        y += gap;
    }
    for (int s = 0; s < ns; s++) {
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" "
                   "font-size=\"12\">",
                left, y + s * 16, palette[s % 10], left + 18, y + s * 16 + 11);
        html_str(f, series[s]);
        fputs("</text>\n", f);
    }
    fputs("</svg></figure>\n", f);
}

/* Closes the previous cell and writes v in a new one; "-" where it has no
 * value (a corpus without tokens or words). */
static void html_num(FILE *f, double v, int decimals, int sign, const char *suffix)
{
    fputs("</td><td>", f);
    if (isfinite(v)) fprintf(f, sign ? "%+.*f%s" : "%.*f%s", decimals, v, suffix);
    else fputc('-', f);
}

static void print_report(const ctx_t *c, const tkm_analyze_vocab *v, int (*unused)[TKM_CAT_COUNT], FILE *f)
{
    int nm = c->nmodels, nc = c->ncorpora;
    char **labels = calloc((size_t)nm, sizeof *labels);
    const char **cnames = calloc((size_t)nc + 1, sizeof *cnames);
    double *vals = calloc((size_t)(nm * (nc > TKM_CAT_COUNT ? nc : TKM_CAT_COUNT)) + 1, sizeof *vals);
    if (!labels || !cnames || !vals) { free(labels); free(cnames); free(vals); return; }
    for (int k = 0; k < nm; k++) {
        labels[k] = malloc(256);
        if (labels[k]) label(c->model_paths[k], labels[k], 256);
    }
    for (int i = 0; i < nc; i++) cnames[i] = c->corpora[i].name;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tokenmill analyze report</title>\n"
          "<style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}tr>:nth-child(-n+2){text-align:left}"
          "svg text{font-family:sans-serif;font-size:13px}</style></head><body>\n<h1>tokenmill analyze report</h1>\n",
          f);
    /* compression */
    fputs("<h2>Compression</h2>\n", f);
    for (int i = 0; i < nc; i++)
        for (int k = 0; k < nm; k++) {
            const tkm_analyze_counts *a = &c->counts[(size_t)i * (size_t)nm + (size_t)k];
            vals[i * nm + k] = ratio(a->bytes, a->tokens);
        }
    svg_bars(f, "bytes per token (higher = better compression)", cnames, nc, (const char *const *)labels, nm, vals, 3,
             16);
    fputs("<table><tr><th>corpus</th><th>tokenizer</th><th>tokens</th><th>bytes/token</th><th>chars/token</th>"
          "<th>tokens/word</th><th>byte fallback</th><th>unknown</th><th>vs first<br>(+ = more tokens)</th></tr>\n",
          f);
    for (int i = 0; i < nc; i++)
        for (int k = 0; k < nm; k++) {
            const tkm_analyze_counts *a = &c->counts[(size_t)i * (size_t)nm + (size_t)k];
            const tkm_analyze_counts *b0 = &c->counts[(size_t)i * (size_t)nm];
            fputs("<tr><td>", f);
            html_str(f, cnames[i]);
            fputs("</td><td>", f);
            html_str(f, labels[k]);
            fprintf(f, "</td><td>%llu", (unsigned long long)a->tokens);
            double r[R_COUNT];
            row_ratios(a, b0, r);
            html_num(f, r[R_BYTES_TOK], 3, 0, "");
            html_num(f, r[R_CHARS_TOK], 3, 0, "");
            html_num(f, r[R_TOK_WORD], 3, 0, "");
            html_num(f, 100 * r[R_BYTE_SHARE], 2, 0, "%");
            html_num(f, 100 * r[R_UNK_SHARE], 2, 0, "%");
            if (k == 0) fputs("</td><td>base", f);
            else html_num(f, 100 * r[R_VS_FIRST], 1, 1, "%");
            fputs("</td></tr>\n", f);
        }
    fputs("</table>\n<h2>Vocabulary</h2>\n", f);
    const char *cats[TKM_CAT_COUNT];
    for (int cat = 0; cat < TKM_CAT_COUNT; cat++) {
        cats[cat] = tkm_analyze_category_name(cat);
        for (int k = 0; k < nm; k++) vals[cat * nm + k] = v[k].category[cat];
    }
    svg_bars(f, "pieces per category", cats, TKM_CAT_COUNT, (const char *const *)labels, nm, vals, 0, 16);
    if (unused) { /* as in the text and JSON: no special row (control and unknown pieces are not counted) */
        const char *ucats[TKM_CAT_COUNT];
        int nu = 0;
        for (int cat = 0; cat < TKM_CAT_COUNT; cat++) {
            if (cat == TKM_CAT_SPECIAL) continue;
            ucats[nu] = cats[cat];
            for (int k = 0; k < nm; k++) vals[nu * nm + k] = unused[k][cat];
            nu++;
        }
        svg_bars(f, "pieces never used on the corpora, per category", ucats, nu, (const char *const *)labels, nm,
                 vals, 0, 16);
    }
    if (unused) { /* the same as a table: unused / all pieces of the category */
        fputs("<table><tr><th>category</th>", f);
        for (int k = 0; k < nm; k++) {
            fputs("<th>", f);
            html_str(f, labels[k]);
            fputs("<br>unused / pieces</th>", f);
        }
        fputs("</tr>\n", f);
        for (int cat = 0; cat < TKM_CAT_COUNT; cat++) {
            if (cat == TKM_CAT_SPECIAL) continue;
            fputs("<tr><td>", f);
            html_str(f, cats[cat]);
            for (int k = 0; k < nm; k++) {
                fprintf(f, "</td><td>%d / %d", unused[k][cat], v[k].category[cat]);
                if (v[k].category[cat] > 0) fprintf(f, " (%.1f%%)", 100.0 * unused[k][cat] / v[k].category[cat]);
            }
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    /* length histograms: share of each model's counted pieces per length,
     * 1..15 and a last bucket for longer ones */
    enum { NB = 16 };
    double *hv = calloc((size_t)NB * (size_t)nm + 1, sizeof *hv);
    if (hv) {
        static const char *const bnames[NB] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
                                               "14", "15", "16+"};
        for (int bytes = 0; bytes < 2; bytes++) {
            for (int k = 0; k < nm; k++) {
                const int *hist = bytes ? v[k].len_bytes : v[k].len_chars;
                double all = 0;
                for (int l = 1; l <= TKM_ANALYZE_MAXLEN; l++) all += hist[l];
                for (int b = 0; b < NB; b++) hv[b * nm + k] = 0;
                for (int l = 1; l <= TKM_ANALYZE_MAXLEN; l++) {
                    int bucket = (l < NB ? l : NB) - 1;
                    if (all > 0) hv[bucket * nm + k] += 100.0 * hist[l] / all;
                }
            }
            svg_bars(f,
                     bytes ? "piece length in bytes (% of pieces; U+2581 is 3 bytes)"
                           : "piece length in characters (% of pieces; U+2581 counted)",
                     bnames, NB, (const char *const *)labels, nm, hv, 1, 11);
        }
        free(hv);
    }
    fputs("<p>Categories as in tokenmill-analyze(1): latin = at least 2 ASCII letters; japanese = ICU script Han, "
          "Hiragana or Katakana; a leading U+2581 is not counted.</p>\n</body></html>\n", f);
    for (int k = 0; k < nm; k++) free(labels[k]);
    free(labels);
    free(cnames);
    free(vals);
}

/* ---- driver ---- */

static const struct option opts[] = {
    {"model", required_argument, 0, 'm'},  {"corpus", required_argument, 0, 'c'},
    {"format", required_argument, 0, 'f'}, {"output", required_argument, 0, 'o'},
    {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
    {"tiktoken-pattern", required_argument, 0, 'P'},
    {"json", no_argument, 0, 'J'}, {"csv", no_argument, 0, 'C'},
    {0, 0, 0, 0}};

static int add_corpus(ctx_t *c, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        fprintf(stderr, "tokenmill analyze: --corpus wants NAME=PATH, got '%s'\n", arg);
        return EXIT_USAGE;
    }
    *eq = 0;
    corpus_t *nc = realloc(c->corpora, ((size_t)c->ncorpora + 1) * sizeof *nc);
    if (!nc) return EXIT_FAIL;
    c->corpora = nc;
    corpus_t *k = &c->corpora[c->ncorpora];
    memset(k, 0, sizeof *k);
    k->name = arg;
    int rc = tkm_analyze_files(eq + 1, &k->files, &k->nfiles);
    if (rc < 0) {
        fprintf(stderr, "tokenmill analyze: corpus %s: %s\n", arg, tkm_last_error());
        return EXIT_FAIL;
    }
    c->ncorpora++;
    return EXIT_OK;
}

static int run(ctx_t *c)
{
    int is_comp = !strcmp(c->sub, "compression"), is_vocab = !strcmp(c->sub, "vocab"),
        is_report = !strcmp(c->sub, "report");
    for (int k = 0; k < c->nmodels; k++) {
        int rc = tkm_model_load_any(c->model_paths[k], c->tiktoken_pattern, &c->models[k]);
        if (rc < 0) { cli_error("analyze", rc); return EXIT_FAIL; }
        cli_model_warning("analyze", c->models[k]);
    }
    if ((is_comp || is_report) && c->ncorpora == 0) {
        fprintf(stderr, "tokenmill analyze %s: no corpus given (--corpus NAME=PATH)\n", c->sub);
        return EXIT_USAGE;
    }
    int rc = 0;
    if (c->ncorpora > 0 && (rc = run_compression(c, is_vocab || is_report)) < 0) {
        cli_error("analyze", rc);
        return EXIT_FAIL;
    }
    tkm_analyze_vocab *v = NULL;
    int (*unused)[TKM_CAT_COUNT] = NULL;
    if (is_vocab || is_report) {
        v = calloc((size_t)c->nmodels, sizeof *v);
        if (!v) return EXIT_FAIL;
        for (int k = 0; k < c->nmodels && rc == 0; k++) rc = tkm_analyze_vocab_stats(c->models[k], &v[k]);
        if (rc == 0 && c->used) {
            unused = calloc((size_t)c->nmodels, sizeof *unused);
            if (!unused) rc = TKM_ENOMEM;
            for (int k = 0; unused && k < c->nmodels; k++) tkm_analyze_unused(c->models[k], c->used[k], unused[k]);
        }
    }
    int status = EXIT_OK;
    if (rc < 0) { cli_error("analyze", rc); status = EXIT_FAIL; }
    FILE *out = stdout;
    char *tmp = NULL;
    if (status == EXIT_OK && c->outpath) {
        tmp = cli_tmp_path(c->outpath);
        if (!tmp || !(out = fopen(tmp, "w"))) {
            fprintf(stderr, "tokenmill analyze: %s: cannot create: %s\n", tmp ? tmp : c->outpath, strerror(errno));
            status = EXIT_FAIL;
            out = NULL;
        }
    }
    if (status == EXIT_OK) {
        if (is_report) print_report(c, v, unused, out);
        else if (is_comp)
            (c->format == OUT_JSON  ? print_compression_json
             : c->format == OUT_CSV ? print_compression_csv
                                    : print_compression_text)(c, out);
        else
            (c->format == OUT_JSON ? print_vocab_json : c->format == OUT_CSV ? print_vocab_csv : print_vocab_text)(
                c, v, unused, out);
        if (fflush(out) != 0 || ferror(out)) {
            fprintf(stderr, "tokenmill analyze: %s: write error: %s\n", c->outpath ? c->outpath : "stdout",
                    strerror(errno));
            status = EXIT_FAIL;
        }
    }
    if (c->outpath && out) {
        if (fclose(out) != 0) status = EXIT_FAIL;
        if (status == EXIT_OK && cli_commit(tmp, c->outpath) != 0) {
            fprintf(stderr, "tokenmill analyze: %s: %s\n", c->outpath, strerror(errno));
            status = EXIT_FAIL;
        }
        if (status != EXIT_OK) cli_discard(tmp, c->outpath);
    }
    free(tmp);
    for (int k = 0; v && k < c->nmodels; k++) tkm_analyze_vocab_clear(&v[k]);
    free(v);
    free(unused);
    return status;
}

int cmd_analyze(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    ctx_t c;
    memset(&c, 0, sizeof c);
    c.sub = argv[1];
    if (strcmp(c.sub, "compression") && strcmp(c.sub, "vocab") && strcmp(c.sub, "report")) {
        fprintf(stderr, "tokenmill analyze: unknown report '%s' (compression, vocab or report)\n", c.sub);
        return EXIT_USAGE;
    }
    long nproc = sysconf(_SC_NPROCESSORS_ONLN), v;
    c.threads = nproc > 0 ? (int)(nproc > 64 ? 64 : nproc) : 1;
    c.model_paths = calloc((size_t)argc, sizeof *c.model_paths);
    c.models = calloc((size_t)argc, sizeof *c.models);
    if (!c.model_paths || !c.models) return EXIT_FAIL;
    int status = EXIT_OK, ch;
    optind = 1;
    argc--;
    argv++;
    while (status == EXIT_OK && (ch = getopt_long(argc, argv, "m:c:f:o:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': c.model_paths[c.nmodels++] = optarg; break;
        case 'c': status = add_corpus(&c, optarg); break;
        case 'f':
            if (!strcmp(optarg, "text")) c.format = OUT_TEXT;
            else if (!strcmp(optarg, "json")) c.format = OUT_JSON;
            else if (!strcmp(optarg, "csv")) c.format = OUT_CSV;
            else {
                fprintf(stderr, "tokenmill analyze: unknown format '%s' (text, json or csv)\n", optarg);
                status = EXIT_USAGE;
            }
            break;
        case 'J': c.format = OUT_JSON; break;
        case 'C': c.format = OUT_CSV; break;
        case 'o': c.outpath = strcmp(optarg, "-") ? optarg : NULL; break; /* -o -: standard output */
        case 'P':
            if (!strcmp(optarg, "r50k") || !strcmp(optarg, "p50k") || !strcmp(optarg, "gpt2")) c.tiktoken_pattern = TKM_TIKTOKEN_R50K;
            else if (!strcmp(optarg, "cl100k")) c.tiktoken_pattern = TKM_TIKTOKEN_CL100K;
            else if (!strcmp(optarg, "o200k")) c.tiktoken_pattern = TKM_TIKTOKEN_O200K;
            else {
                fprintf(stderr, "tokenmill analyze: unknown tiktoken pattern '%s' (r50k, cl100k or o200k)\n", optarg);
                status = EXIT_USAGE;
            }
            break;
        case 't':
            if (cli_int(optarg, 1, 256, &v)) {
                fprintf(stderr, "tokenmill analyze: invalid thread count '%s'\n", optarg);
                status = EXIT_USAGE;
            } else c.threads = (int)v;
            break;
        case 'h': usage(stdout); goto cleanup;
        default: usage(stderr); status = EXIT_USAGE;
        }
    }
    if (status == EXIT_OK && optind < argc) {
        fprintf(stderr, "tokenmill analyze: unexpected argument '%s'\n", argv[optind]);
        status = EXIT_USAGE;
    }
    if (status == EXIT_OK && c.nmodels == 0) {
        fprintf(stderr, "tokenmill analyze: no model given (-m FILE.model)\n");
        status = EXIT_USAGE;
    }
    if (status == EXIT_OK && !strcmp(c.sub, "report") && !c.outpath) {
        fprintf(stderr, "tokenmill analyze report: no output file given (-o report.html)\n");
        status = EXIT_USAGE;
    }
    if (status == EXIT_OK && !strcmp(c.sub, "report") && c.format != OUT_TEXT) {
        fprintf(stderr, "tokenmill analyze report: writes HTML only (--json and --csv are for compression and vocab)\n");
        status = EXIT_USAGE;
    }
    if (status == EXIT_OK) status = run(&c);
cleanup:
    for (int k = 0; k < c.nmodels; k++) tkm_model_free(c.models[k]);
    for (int i = 0; i < c.ncorpora; i++) tkm_analyze_files_free(c.corpora[i].files, c.corpora[i].nfiles);
    for (int k = 0; c.used && k < c.nmodels; k++) free(c.used[k]);
    free(c.used);
    free(c.counts);
    free(c.corpora);
    free(c.models);
    free(c.model_paths);
    return status;
}
