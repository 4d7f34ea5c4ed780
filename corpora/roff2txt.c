/*
 * roff2txt - turn man(7) / mdoc(7) roff sources into plain paragraphs.
 *
 * Usage: roff2txt FILE...     (files may be gzip-compressed; "-" = stdin)
 *
 * Output is UTF-8, one paragraph per line, no empty lines.  This is not a
 * roff formatter: it keeps the visible text and drops everything else.
 *
 *  - comments, .TH/.Dd/.Dt, macro definitions (.de/.ig ... ..), conditional
 *    requests (.if/.ie/.el, with their \{ ... \} blocks) and all other
 *    requests are dropped;
 *  - headings (.SH/.SS/.Sh/.Ss) and .TP/.It tags become lines of their own;
 *  - font macros (.B, .I, .BR, .IR, ...) keep their arguments (alternating
 *    forms are joined without spaces), mdoc inline macros keep theirs;
 *  - escapes: fonts/sizes/motions are removed, special characters (\(em,
 *    \[u30A2], \-, \e, ...) are translated;
 *  - filled text is joined into one line per paragraph (no space is put
 *    between two CJK characters when joining); no-fill text (.nf, .EX) and
 *    tbl rows keep one line per source line.
 *
 * Files that are not valid UTF-8 are skipped with a warning; a count is
 * printed at the end.  Unreadable files are a fatal error (exit status 1).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

static const char *progname = "roff2txt";

static NORETURN PRINTF_LIKE(1, 2) void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* ------------------------------------------------------------------ */
/* Strings                                                             */

typedef struct {
    char *s;
    size_t len, cap;
} Str;

static void str_reserve(Str *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p)
        die("out of memory");
    b->s = p;
    b->cap = cap;
}

static void str_put(Str *b, const char *s, size_t n)
{
    str_reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void str_puts(Str *b, const char *s) { str_put(b, s, strlen(s)); }

static void str_clear(Str *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

static void str_cp(Str *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    str_put(b, u, n);
}

/* Returns the byte offset of the first invalid sequence, or -1. */
static long utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return (long)i;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80)
                return (long)i;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return (long)i;
        i += k + 1;
    }
    return -1;
}

/* Decode the code point starting at s (valid UTF-8 assumed). */
static uint32_t utf8_first(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (u[0] < 0x80)
        return u[0];
    size_t k = (u[0] & 0xE0) == 0xC0 ? 1 : (u[0] & 0xF0) == 0xE0 ? 2 : 3;
    uint32_t cp = u[0] & (0x3F >> k);
    for (size_t j = 1; j <= k && j < n; j++)
        cp = cp << 6 | (u[j] & 0x3F);
    return cp;
}

/* Decode the code point ending at s[n-1]. */
static uint32_t utf8_last(const char *s, size_t n)
{
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && n - i < 3)
        i--;
    if (i > 0)
        i--;
    return utf8_first(s + i, n - i);
}

/* CJK and full-width characters: no space is inserted between two of them
 * when source lines are joined. */
static int is_wide(uint32_t cp)
{
    return (cp >= 0x2E80 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7AF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
           (cp >= 0xFF00 && cp <= 0xFFEF) || (cp >= 0x20000 && cp <= 0x3FFFF);
}

/* ------------------------------------------------------------------ */
/* Special characters and strings                                      */

static const struct {
    const char *name;
    const char *text;
} glyphs[] = {
    {"em", "\xE2\x80\x94"}, {"en", "\xE2\x80\x93"}, {"hy", "-"},
    {"mi", "-"},            {"pl", "+"},            {"eq", "="},
    {"bu", "\xE2\x80\xA2"}, {"aq", "'"},            {"dq", "\""},
    {"lq", "\xE2\x80\x9C"}, {"rq", "\xE2\x80\x9D"}, {"oq", "\xE2\x80\x98"},
    {"cq", "\xE2\x80\x99"}, {"Fo", "\xC2\xAB"},     {"Fc", "\xC2\xBB"},
    {"fo", "\xE2\x80\xB9"}, {"fc", "\xE2\x80\xBA"}, {"ga", "`"},
    {"aa", "\xC2\xB4"},     {"ha", "^"},            {"ti", "~"},
    {"ti", "~"},            {"co", "\xC2\xA9"},     {"rg", "\xC2\xAE"},
    {"tm", "\xE2\x84\xA2"}, {"de", "\xC2\xB0"},     {"mu", "\xC3\x97"},
    {"di", "\xC3\xB7"},     {"+-", "\xC2\xB1"},     {"<=", "\xE2\x89\xA4"},
    {">=", "\xE2\x89\xA5"}, {"!=", "\xE2\x89\xA0"}, {"==", "\xE2\x89\xA1"},
    {"~=", "\xE2\x89\x85"}, {"->", "\xE2\x86\x92"}, {"<-", "\xE2\x86\x90"},
    {"<>", "\xE2\x86\x94"}, {"ua", "\xE2\x86\x91"}, {"da", "\xE2\x86\x93"},
    {"rA", "\xE2\x87\x92"}, {"lA", "\xE2\x87\x90"}, {"sc", "\xC2\xA7"},
    {"ps", "\xC2\xB6"},     {"ct", "\xC2\xA2"},     {"Po", "\xC2\xA3"},
    {"Ye", "\xC2\xA5"},     {"Eu", "\xE2\x82\xAC"}, {"eu", "\xE2\x82\xAC"},
    {"bv", "|"},            {"ba", "|"},            {"or", "|"},
    {"br", "|"},            {"rs", "\\"},           {"sl", "/"},
    {"fm", "\xE2\x80\xB2"}, {"sd", "\xE2\x80\xB3"}, {"dg", "\xE2\x80\xA0"},
    {"dd", "\xE2\x80\xA1"}, {"ss", "\xC3\x9F"},     {"at", "@"},
    {"sh", "#"},            {"Do", "$"},            {"lB", "["},
    {"rB", "]"},            {"lC", "{"},            {"rC", "}"},
    {"la", "\xE2\x9F\xA8"}, {"ra", "\xE2\x9F\xA9"}, {"ul", "_"},
    {"ru", "_"},            {"sq", "\xE2\x96\xA1"}, {"ci", "\xE2\x97\x8B"},
    {"**", "*"},            {"pc", "\xC2\xB7"},     {"ap", "~"},
    {"if", "\xE2\x88\x9E"}, {"no", "\xC2\xAC"},     {"tf", "\xE2\x88\xB4"},
    {"14", "\xC2\xBC"},     {"12", "\xC2\xBD"},     {"34", "\xC2\xBE"},
    {"'e", "\xC3\xA9"},     {"`e", "\xC3\xA8"},     {"'a", "\xC3\xA1"},
    {"`a", "\xC3\xA0"},     {":a", "\xC3\xA4"},     {":o", "\xC3\xB6"},
    {":u", "\xC3\xBC"},     {":A", "\xC3\x84"},     {":O", "\xC3\x96"},
    {":U", "\xC3\x9C"},     {"'E", "\xC3\x89"},     {",c", "\xC3\xA7"},
    {"~n", "\xC3\xB1"},     {"ho", "\xCB\x9B"},     {"a-", "\xC2\xAF"},
    {"hA", "\xE2\x87\x94"}, {"OK", "\xE2\x9C\x93"}, {"lh", "\xE2\x98\x9C"},
    {"rh", "\xE2\x98\x9E"}, {"en", "\xE2\x80\x93"},
};

/* Predefined strings (\*(xx); man pages also define their own with .ds. */
static const struct {
    const char *name;
    const char *text;
} pstrings[] = {
    {"lq", "\xE2\x80\x9C"}, {"rq", "\xE2\x80\x9D"}, {"R", "\xC2\xAE"},
    {"Tm", "\xE2\x84\xA2"}, {"aq", "'"},            {"S", ""},
};

typedef struct {
    char name[32];
    Str text;
} Def;

/* ------------------------------------------------------------------ */
/* State                                                               */

typedef struct {
    Str para;       /* current output paragraph */
    int nospace;    /* \c: join the next text without a space */
    int fill;       /* fill mode (0 after .nf / .EX) */
    int tag_line;   /* next text line is a .TP tag / heading: own line */
    int skip_def;   /* inside .de/.ig ... .. */
    int cond_depth; /* inside a skipped \{ ... \} block */
    int tbl;        /* 0 none, 1 format section, 2 data section */
    int tbl_block;  /* inside a T{ ... T} text block */
    char tab;       /* tbl column separator */
    Str nm;         /* mdoc .Nm name */
    Def *defs;      /* .ds strings */
    size_t ndefs;
    unsigned long skipped;
} St;

static void out_break(St *st)
{
    Str *p = &st->para;
    while (p->len > 0 && p->s[p->len - 1] == ' ')
        p->len--;
    if (p->len > 0) {
        p->s[p->len++] = '\n';
        if (fwrite(p->s, 1, p->len, stdout) != p->len)
            die("write error on standard output: %s", strerror(errno));
    }
    str_clear(p);
    st->nospace = 0;
}

/* Append text, collapsing whitespace.  Lines are joined with a space unless
 * \c was used or both sides of the join are CJK characters. */
static void out_text(St *st, const char *s, size_t n)
{
    Str *p = &st->para;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n)
        return;
    if (p->len > 0 && p->s[p->len - 1] != ' ' && !st->nospace) {
        if (!(is_wide(utf8_last(p->s, p->len)) &&
              is_wide(utf8_first(s + i, n - i))))
            str_put(p, " ", 1);
    }
    st->nospace = 0;
    int sp = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            sp = 1;
            continue;
        }
        if ((unsigned char)c < 0x20 || c == 0x7F)
            continue;
        if (sp && p->len > 0 && p->s[p->len - 1] != ' ')
            str_put(p, " ", 1);
        sp = 0;
        str_put(p, &c, 1);
    }
    if (sp && p->len > 0 && p->s[p->len - 1] != ' ')
        str_put(p, " ", 1);
}

static void out_str(St *st, const Str *s) { out_text(st, s->s, s->len); }

static const char *lookup_string(St *st, const char *name, size_t len)
{
    for (size_t i = 0; i < st->ndefs; i++)
        if (strlen(st->defs[i].name) == len &&
            memcmp(st->defs[i].name, name, len) == 0)
            return st->defs[i].text.s ? st->defs[i].text.s : "";
    for (size_t i = 0; i < sizeof pstrings / sizeof pstrings[0]; i++)
        if (strlen(pstrings[i].name) == len &&
            memcmp(pstrings[i].name, name, len) == 0)
            return pstrings[i].text;
    return "";
}

static void define_string(St *st, const char *name, size_t len,
                          const char *val)
{
    if (len == 0 || len >= sizeof st->defs[0].name)
        return;
    Def *d = NULL;
    for (size_t i = 0; i < st->ndefs; i++)
        if (strlen(st->defs[i].name) == len &&
            memcmp(st->defs[i].name, name, len) == 0)
            d = &st->defs[i];
    if (!d) {
        Def *nd = realloc(st->defs, (st->ndefs + 1) * sizeof *nd);
        if (!nd)
            die("out of memory");
        st->defs = nd;
        d = &st->defs[st->ndefs++];
        memset(d, 0, sizeof *d);
        memcpy(d->name, name, len);
        d->name[len] = '\0';
    }
    str_clear(&d->text);
    str_puts(&d->text, val);
}

static void special_char(Str *out, const char *name, size_t len)
{
    /* \[u30A2] and \[u0041_0301]: Unicode code points */
    if (len >= 5 && name[0] == 'u') {
        uint32_t cp = 0;
        size_t i = 1;
        for (; i < len && name[i] != '_'; i++) {
            char c = name[i];
            int v = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                           : -1;
            if (v < 0 || cp > 0x10FFF)
                return;
            cp = cp * 16 + (uint32_t)v;
        }
        if (cp >= 0x20 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF))
            str_cp(out, cp);
        return;
    }
    for (size_t i = 0; i < sizeof glyphs / sizeof glyphs[0]; i++)
        if (strlen(glyphs[i].name) == len &&
            memcmp(glyphs[i].name, name, len) == 0) {
            str_puts(out, glyphs[i].text);
            return;
        }
    /* unknown glyph: dropped */
}

/*
 * Parse the name of an escape like \f, \*, \n, \( forms at s[*i]:
 *   X      one character
 *   (XX    two characters
 *   [XXX]  any length
 * Returns the name via name and len, and advances *i.
 */
static void esc_name(const char *s, size_t n, size_t *i, const char **name,
                     size_t *len)
{
    size_t j = *i;
    if (j >= n) {
        *name = s + j;
        *len = 0;
        return;
    }
    if (s[j] == '(') {
        *name = s + j + 1;
        *len = j + 3 <= n ? 2 : n - j - 1;
        *i = j + 1 + *len;
    } else if (s[j] == '[') {
        size_t k = j + 1;
        while (k < n && s[k] != ']')
            k++;
        *name = s + j + 1;
        *len = k - j - 1;
        *i = k < n ? k + 1 : n;
    } else {
        *name = s + j;
        *len = 1;
        *i = j + 1;
    }
}

/* Skip a delimited argument like 'xxx' at s[*i] (e.g. \h'1i'). */
static void esc_delimited(const char *s, size_t n, size_t *i, const char **arg,
                          size_t *len)
{
    size_t j = *i;
    *arg = s + j;
    *len = 0;
    if (j >= n)
        return;
    char d = s[j];
    size_t k = j + 1;
    while (k < n && s[k] != d) {
        if (s[k] == '\\' && k + 1 < n)
            k++;
        k++;
    }
    *arg = s + j + 1;
    *len = k - j - 1;
    *i = k < n ? k + 1 : n;
}

/*
 * Translate escapes in s[0..n) into out.  Returns 1 if the text ended with
 * \c (continue without a break/space), else 0.
 */
static int conv(St *st, const char *s, size_t n, Str *out)
{
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c != '\\') {
            size_t j = i + 1;
            while (j < n && s[j] != '\\')
                j++;
            str_put(out, s + i, j - i);
            i = j;
            continue;
        }
        if (i + 1 >= n) { /* trailing lone backslash */
            i++;
            continue;
        }
        char e = s[i + 1];
        i += 2;
        const char *nm;
        size_t nl;
        switch (e) {
        case '"':
        case '#':
        case '!':
            return 0; /* comment / transparent line: rest ignored */
        case 'c':
            return 1;
        case 'e':
        case 'E':
        case '\\':
            str_put(out, "\\", 1);
            break;
        case '-':
            str_put(out, "-", 1);
            break;
        case '.':
            str_put(out, ".", 1);
            break;
        case '\'':
            str_put(out, "'", 1);
            break;
        case '`':
            str_put(out, "`", 1);
            break;
        case ' ':
        case '0':
        case '~':
        case '_':
            str_put(out, " ", 1);
            break;
        case 't':
            str_put(out, "\t", 1);
            break;
        case '&':
        case '|':
        case '^':
        case ':':
        case '%':
        case ')':
        case '/':
        case ',':
        case 'p':
        case 'r':
        case 'u':
        case 'd':
        case 'a':
        case '{':
        case '}':
        case 'z':
            break;
        case '(':
        case '[':
            i--; /* esc_name wants to see the bracket */
            esc_name(s, n, &i, &nm, &nl);
            special_char(out, nm, nl);
            break;
        case 'C':
            esc_delimited(s, n, &i, &nm, &nl);
            special_char(out, nm, nl);
            break;
        case '*': {
            esc_name(s, n, &i, &nm, &nl);
            /* \*[name arg...]: only the name matters here */
            size_t k = 0;
            while (k < nl && nm[k] != ' ')
                k++;
            str_puts(out, lookup_string(st, nm, k));
            break;
        }
        case 'f':
        case 'F':
        case 'm':
        case 'M':
        case 'n':
        case 'g':
        case 'k':
        case 'V':
        case 'Y':
        case '$':
            if ((e == 'n') && i < n && (s[i] == '+' || s[i] == '-'))
                i++;
            esc_name(s, n, &i, &nm, &nl);
            break;
        case 's':
            if (i < n && (s[i] == '+' || s[i] == '-'))
                i++;
            if (i < n && (s[i] == '(' || s[i] == '[')) {
                esc_name(s, n, &i, &nm, &nl);
            } else if (i < n && s[i] == '\'') {
                esc_delimited(s, n, &i, &nm, &nl);
            } else {
                if (i < n && s[i] >= '1' && s[i] <= '3' && i + 1 < n &&
                    s[i + 1] >= '0' && s[i + 1] <= '9')
                    i += 2; /* \s10 .. \s39 */
                else if (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
            }
            break;
        case 'h':
        case 'v':
        case 'w':
        case 'l':
        case 'L':
        case 'D':
        case 'o':
        case 'b':
        case 'X':
        case 'Z':
        case 'x':
        case 'R':
        case 'A':
        case 'B':
        case 'N':
        case 'H':
        case 'S':
        case 'O':
            esc_delimited(s, n, &i, &nm, &nl);
            break;
        default:
            /* unknown escape: groff prints the character */
            str_put(out, &e, 1);
            break;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Macro arguments                                                     */

typedef struct {
    Str raw[64];
    size_t n;
} Args;

/* Split a request/macro argument string (quotes, escaped spaces). */
static void split_args(const char *s, size_t n, Args *a)
{
    size_t i = 0;
    a->n = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= n)
            break;
        if (a->n == sizeof a->raw / sizeof a->raw[0])
            break;
        Str *t = &a->raw[a->n++];
        str_clear(t);
        if (s[i] == '"') {
            i++;
            while (i < n) {
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        str_put(t, "\"", 1);
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (s[i] == '\\' && i + 1 < n) {
                    str_put(t, s + i, 2);
                    i += 2;
                    continue;
                }
                str_put(t, s + i, 1);
                i++;
            }
        } else {
            while (i < n && s[i] != ' ' && s[i] != '\t') {
                if (s[i] == '\\' && i + 1 < n) {
                    str_put(t, s + i, 2);
                    i += 2;
                    continue;
                }
                str_put(t, s + i, 1);
                i++;
            }
        }
    }
}

/* Convert argument k into out (appended). */
static void conv_arg(St *st, Args *a, size_t k, Str *out)
{
    conv(st, a->raw[k].s ? a->raw[k].s : "", a->raw[k].len, out);
}

/* ------------------------------------------------------------------ */
/* mdoc                                                                */

static const char *const mdoc_macros[] = {
    "Ac", "Ad", "An", "Ao", "Ap", "Aq", "Ar", "At", "Bc", "Bd", "Bf", "Bk",
    "Bl", "Bo", "Bq", "Brc", "Bro", "Brq", "Bsx", "Bt", "Bx", "Cd", "Cm",
    "D1", "Db", "Dc", "Dd", "Dl", "Do", "Dq", "Dt", "Dv", "Dx", "Ec", "Ed",
    "Ef", "Ek", "El", "Em", "En", "Eo", "Er", "Es", "Ev", "Ex", "Fa", "Fc",
    "Fd", "Fl", "Fn", "Fo", "Fr", "Ft", "Fx", "Hf", "Ic", "In", "It", "Lb",
    "Li", "Lk", "Lp", "Ms", "Mt", "Nd", "Nm", "No", "Ns", "Nx", "Oc", "Oo",
    "Op", "Os", "Ot", "Ox", "Pa", "Pc", "Pf", "Po", "Pp", "Pq", "Qc", "Ql",
    "Qo", "Qq", "Re", "Rs", "Rv", "Sc", "Sh", "Sm", "So", "Sq", "Ss", "St",
    "Sx", "Sy", "Ta", "Tn", "Ud", "Ux", "Va", "Vt", "Xc", "Xo", "Xr", "%A",
    "%B", "%C", "%D", "%I", "%J", "%N", "%O", "%P", "%Q", "%R", "%T", "%U",
    "%V",
};

static int is_mdoc(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof mdoc_macros / sizeof mdoc_macros[0]; i++)
        if (strlen(mdoc_macros[i]) == len &&
            memcmp(mdoc_macros[i], name, len) == 0)
            return 1;
    return 0;
}

static int tok_is(const Str *t, const char *w)
{
    return t->s && strcmp(t->s, w) == 0;
}

static int is_close_punct(const Str *t)
{
    static const char *const p[] = {".", ",", ";", ":", "?", "!", ")", "]"};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (tok_is(t, p[i]))
            return 1;
    return 0;
}

/*
 * Render an mdoc line (macro name + args) into out, roughly the way
 * mandoc would print it.
 */
static void mdoc_render(St *st, const char *mac, Args *a, Str *out)
{
    const char *closers[16];
    size_t nclose = 0;
    int nospace = 0, flag = 0;
    Str tmp = {0};

    /* The line's own macro is processed like a leading token. */
    for (size_t k = 0; k <= a->n; k++) {
        const char *t;
        size_t tl;
        if (k == 0) {
            t = mac;
            tl = strlen(mac);
        } else {
            t = a->raw[k - 1].s ? a->raw[k - 1].s : "";
            tl = a->raw[k - 1].len;
        }
        if (is_mdoc(t, tl)) {
            const char *open = NULL, *close = NULL;
            if (!strcmp(t, "Fl"))
                flag = 1;
            else if (!strcmp(t, "Ns") || !strcmp(t, "Ap") || !strcmp(t, "Pf"))
                nospace = 1;
            else if (!strcmp(t, "Op") || !strcmp(t, "Oo"))
                open = "[", close = "]";
            else if (!strcmp(t, "Dq") || !strcmp(t, "Do"))
                open = "\xE2\x80\x9C", close = "\xE2\x80\x9D";
            else if (!strcmp(t, "Sq") || !strcmp(t, "So") || !strcmp(t, "Ql"))
                open = "\xE2\x80\x98", close = "\xE2\x80\x99";
            else if (!strcmp(t, "Qq") || !strcmp(t, "Qo"))
                open = "\"", close = "\"";
            else if (!strcmp(t, "Pq") || !strcmp(t, "Po"))
                open = "(", close = ")";
            else if (!strcmp(t, "Aq") || !strcmp(t, "Ao") || !strcmp(t, "In"))
                open = "<", close = ">";
            else if (!strcmp(t, "Bq") || !strcmp(t, "Bo"))
                open = "[", close = "]";
            else if (!strcmp(t, "Brq") || !strcmp(t, "Bro"))
                open = "{", close = "}";
            else if (!strcmp(t, "Oc") || !strcmp(t, "Bc"))
                str_puts(out, "]");
            else if (!strcmp(t, "Dc"))
                str_puts(out, "\xE2\x80\x9D");
            else if (!strcmp(t, "Sc"))
                str_puts(out, "\xE2\x80\x99");
            else if (!strcmp(t, "Qc"))
                str_puts(out, "\"");
            else if (!strcmp(t, "Pc"))
                str_puts(out, ")");
            else if (!strcmp(t, "Ac"))
                str_puts(out, ">");
            else if (!strcmp(t, "Brc"))
                str_puts(out, "}");
            else if (!strcmp(t, "Nm")) {
                int has_arg = k < a->n && !is_mdoc(a->raw[k].s ? a->raw[k].s
                                                               : "",
                                                   a->raw[k].len);
                if (!has_arg && st->nm.len) {
                    if (out->len && !nospace)
                        str_put(out, " ", 1);
                    str_put(out, st->nm.s, st->nm.len);
                    nospace = 0;
                } else if (has_arg && !st->nm.len) {
                    conv_arg(st, a, k, &st->nm);
                }
            } else if (!strcmp(t, "Xr") && k + 2 <= a->n) {
                str_clear(&tmp);
                conv_arg(st, a, k, &tmp);
                str_puts(&tmp, "(");
                conv_arg(st, a, k + 1, &tmp);
                str_puts(&tmp, ")");
                if (out->len && !nospace)
                    str_put(out, " ", 1);
                str_put(out, tmp.s, tmp.len);
                nospace = 0;
                k += 2;
            }
            if (open) {
                if (out->len && !nospace)
                    str_put(out, " ", 1);
                str_puts(out, open);
                nospace = 1;
                /* line-scoped enclosures close at the end of the line */
                if (t[1] == 'p' || t[1] == 'q' || t[1] == 'l' ||
                    !strcmp(t, "Brq") || !strcmp(t, "In")) {
                    if (nclose < sizeof closers / sizeof closers[0])
                        closers[nclose++] = close;
                }
            }
            continue;
        }
        /* ordinary argument */
        str_clear(&tmp);
        conv(st, t, tl, &tmp);
        const Str *ts = k ? &a->raw[k - 1] : NULL;
        int punct = ts && is_close_punct(ts);
        if (out->len && !nospace && !punct)
            str_put(out, " ", 1);
        if (flag) {
            str_put(out, "-", 1);
            flag = 0;
        }
        str_put(out, tmp.s ? tmp.s : "", tmp.len);
        nospace = ts && (tok_is(ts, "(") || tok_is(ts, "["));
    }
    if (flag) {
        if (out->len && !nospace)
            str_put(out, " ", 1);
        str_put(out, "-", 1);
    }
    while (nclose > 0)
        str_puts(out, closers[--nclose]);
    free(tmp.s);
}

/* ------------------------------------------------------------------ */
/* Lines                                                               */

static int name_eq(const char *name, size_t len, const char *w)
{
    return strlen(w) == len && memcmp(name, w, len) == 0;
}

static int name_in(const char *name, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (name_eq(name, len, *list))
            return 1;
    return 0;
}

/* Requests/macros that cause a paragraph break and have no visible text. */
static const char *const break_macros[] = {
    "PP", "P",  "LP", "Pp", "Lp", "sp", "br", "bp", "HP", "RS", "RE",
    "in", "ti", "Sp", "Bl", "El", "Bd", "Ed", "YS", "ce", "PD", "ne",
    "ns", "rs", "Rs", "Re", "Ip", "LE", "Ss-", NULL,
};

/* Single-font macros: arguments joined by spaces. */
static const char *const font_macros[] = {"B", "I", "SM", "SB", "R", "CW",
                                          NULL};

/* Alternating-font macros: arguments joined without spaces. */
static const char *const alt_macros[] = {"BR", "RB", "IR", "RI", "BI",
                                         "IB", "CB", "BC", "CI", "IC",
                                         "CR", "RC", NULL};

static int count_braces(const char *s, size_t n, int depth)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == '\\') {
            if (s[i + 1] == '{')
                depth++;
            else if (s[i + 1] == '}')
                depth--;
            i++;
        }
    }
    return depth;
}

static void tbl_row(St *st, const char *s, size_t n);

static void text_line(St *st, const char *s, size_t n)
{
    Str out = {0};
    if (st->tbl == 2 && !st->tbl_block) {
        tbl_row(st, s, n);
        return;
    }
    if (st->tbl_block && n >= 2 && s[0] == 'T' && s[1] == '}') {
        st->tbl_block = 0;
        tbl_row(st, s + 2, n - 2);
        return;
    }
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n) { /* blank line */
        if (!st->tbl_block)
            out_break(st);
        return;
    }
    if (i > 0 && st->fill && !st->tbl_block)
        out_break(st); /* leading space breaks */
    int cont = conv(st, s, n, &out);
    if (out.len)
        out_str(st, &out);
    free(out.s);
    if (cont) {
        st->nospace = 1;
        return;
    }
    if (!st->fill || st->tag_line) {
        st->tag_line = 0;
        out_break(st);
    }
}

static void tbl_row(St *st, const char *s, size_t n)
{
    /* horizontal rules */
    size_t i = 0;
    int only_rule = 1;
    for (i = 0; i < n; i++)
        if (!(s[i] == '_' || s[i] == '=' || s[i] == '|' || s[i] == ' ' ||
              s[i] == '\t' || s[i] == '\\' || s[i] == st->tab))
            only_rule = 0;
    if (only_rule) {
        if (!st->tbl_block)
            out_break(st);
        return;
    }
    size_t start = 0;
    for (i = 0; i <= n; i++) {
        if (i < n && s[i] != st->tab)
            continue;
        const char *c = s + start;
        size_t cl = i - start;
        while (cl > 0 && (*c == ' '))
            c++, cl--;
        if (cl >= 2 && c[0] == 'T' && c[1] == '}') {
            st->tbl_block = 0;
            c += 2;
            cl -= 2;
        }
        while (cl > 0 && c[cl - 1] == ' ')
            cl--;
        if (cl >= 2 && c[cl - 2] == 'T' && c[cl - 1] == '{') {
            st->tbl_block = 1;
            cl -= 2;
        }
        if (!(cl == 1 && (c[0] == '_' || c[0] == '='))) {
            Str out = {0};
            conv(st, c, cl, &out);
            if (out.len) {
                /* cells are always separated by a space */
                if (st->para.len && st->para.s[st->para.len - 1] != ' ')
                    str_put(&st->para, " ", 1);
                out_str(st, &out);
            }
            free(out.s);
        }
        start = i + 1;
    }
    if (!st->tbl_block)
        out_break(st);
}

static void control_line(St *st, const char *s, size_t n)
{
    size_t i = 1; /* skip the control character */
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    const char *name = s + i;
    while (i < n && s[i] != ' ' && s[i] != '\t')
        i++;
    size_t nl = (size_t)(s + i - name);
    if (nl == 0)
        return;
    if (name[0] == '\\') { /* .\" comment, .\} etc. */
        return;
    }
    /* strip a trailing comment from the arguments */
    size_t an = n;
    for (size_t k = i; k + 1 < n; k++) {
        if (s[k] == '\\') {
            if (s[k + 1] == '"' || s[k + 1] == '#') {
                an = k;
                break;
            }
            k++;
        }
    }
    const char *rest = s + i;
    size_t rl = an > i ? an - i : 0;

    if (name_eq(name, nl, "de") || name_eq(name, nl, "de1") ||
        name_eq(name, nl, "am") || name_eq(name, nl, "am1") ||
        name_eq(name, nl, "ig") || name_eq(name, nl, "dei") ||
        name_eq(name, nl, "ami")) {
        st->skip_def = 1;
        return;
    }
    if (name_eq(name, nl, "if") || name_eq(name, nl, "ie") ||
        name_eq(name, nl, "el") || name_eq(name, nl, "while")) {
        int d = count_braces(rest, n - i, 0);
        if (d > 0)
            st->cond_depth = d;
        return;
    }
    if (name_eq(name, nl, "ds") || name_eq(name, nl, "ds1")) {
        size_t k = 0;
        while (k < rl && (rest[k] == ' ' || rest[k] == '\t'))
            k++;
        size_t ns = k;
        while (k < rl && rest[k] != ' ' && rest[k] != '\t')
            k++;
        size_t ne = k;
        while (k < rl && (rest[k] == ' ' || rest[k] == '\t'))
            k++;
        if (k < rl && rest[k] == '"')
            k++;
        Str val = {0}, raw = {0};
        str_put(&raw, rest + k, rl - k);
        conv(st, raw.s ? raw.s : "", raw.len, &val);
        define_string(st, rest + ns, ne - ns, val.s ? val.s : "");
        free(val.s);
        free(raw.s);
        return;
    }

    Args a;
    memset(&a, 0, sizeof a);
    split_args(rest, rl, &a);
    Str out = {0};

    if (name_eq(name, nl, "TS")) {
        out_break(st);
        st->tbl = 1;
        st->tab = '\t';
        st->tbl_block = 0;
    } else if (name_eq(name, nl, "TE")) {
        out_break(st);
        st->tbl = 0;
        st->tbl_block = 0;
    } else if (name_eq(name, nl, "T&")) {
        st->tbl = 1;
    } else if (name_eq(name, nl, "nf") || name_eq(name, nl, "EX") ||
               name_eq(name, nl, "Vb") || name_eq(name, nl, "Ds") ||
               name_eq(name, nl, "DS")) {
        out_break(st);
        st->fill = 0;
    } else if (name_eq(name, nl, "fi") || name_eq(name, nl, "EE") ||
               name_eq(name, nl, "Ve") || name_eq(name, nl, "De") ||
               name_eq(name, nl, "DE")) {
        out_break(st);
        st->fill = 1;
    } else if (name_eq(name, nl, "SH") || name_eq(name, nl, "SS") ||
               name_eq(name, nl, "Sh") || name_eq(name, nl, "Ss")) {
        out_break(st);
        st->fill = 1;
        if (a.n == 0) {
            st->tag_line = 1;
        } else {
            for (size_t k = 0; k < a.n; k++) {
                if (k)
                    str_put(&out, " ", 1);
                conv_arg(st, &a, k, &out);
            }
            out_str(st, &out);
            out_break(st);
        }
    } else if (name_eq(name, nl, "TP") || name_eq(name, nl, "TQ")) {
        out_break(st);
        st->tag_line = 1;
    } else if (name_eq(name, nl, "IP") || name_eq(name, nl, "Ip") ||
               name_eq(name, nl, "Item")) {
        out_break(st);
        if (a.n > 0) {
            conv_arg(st, &a, 0, &out);
            out_str(st, &out);
            /* long tags (option names) get a line of their own; bullets
             * and numbers stay in front of the paragraph */
            if (out.len > 4)
                out_break(st);
        }
    } else if (name_in(name, nl, font_macros)) {
        for (size_t k = 0; k < a.n; k++) {
            if (k)
                str_put(&out, " ", 1);
            conv_arg(st, &a, k, &out);
        }
        out_str(st, &out);
        if (a.n && (!st->fill || st->tag_line)) {
            st->tag_line = 0;
            out_break(st);
        }
    } else if (name_in(name, nl, alt_macros)) {
        for (size_t k = 0; k < a.n; k++)
            conv_arg(st, &a, k, &out);
        out_str(st, &out);
        if (a.n && (!st->fill || st->tag_line)) {
            st->tag_line = 0;
            out_break(st);
        }
    } else if (name_eq(name, nl, "OP")) {
        str_puts(&out, "[");
        for (size_t k = 0; k < a.n; k++) {
            if (k)
                str_put(&out, " ", 1);
            conv_arg(st, &a, k, &out);
        }
        str_puts(&out, "]");
        out_str(st, &out);
    } else if (name_eq(name, nl, "SY")) {
        out_break(st);
        for (size_t k = 0; k < a.n; k++)
            conv_arg(st, &a, k, &out);
        out_str(st, &out);
    } else if (name_eq(name, nl, "UE") || name_eq(name, nl, "ME")) {
        /* trailing punctuation after a link */
        for (size_t k = 0; k < a.n; k++)
            conv_arg(st, &a, k, &out);
        if (out.len) {
            st->nospace = 1;
            out_str(st, &out);
        }
    } else if (name_in(name, nl, break_macros)) {
        out_break(st);
    } else if (is_mdoc(name, nl)) {
        char mac[8];
        memcpy(mac, name, nl);
        mac[nl] = '\0';
        int own_line = !strcmp(mac, "It") || !strcmp(mac, "D1") ||
                       !strcmp(mac, "Dl");
        if (!strcmp(mac, "Dd") || !strcmp(mac, "Dt") || !strcmp(mac, "Os") ||
            !strcmp(mac, "Bk") || !strcmp(mac, "Ek") || !strcmp(mac, "Sm") ||
            !strcmp(mac, "Bf") || !strcmp(mac, "Ef") || !strcmp(mac, "Db")) {
            /* no visible text */
        } else {
            if (own_line)
                out_break(st);
            if (!strcmp(mac, "Nd"))
                str_puts(&out, "- ");
            mdoc_render(st, mac, &a, &out);
            out_str(st, &out);
            if (own_line)
                out_break(st);
        }
    }
    /* everything else (TH, PD, ad, na, ft, IX, UR, unknown macros...) has
     * no visible text */
    free(out.s);
    for (size_t k = 0; k < sizeof a.raw / sizeof a.raw[0]; k++)
        free(a.raw[k].s);
}

static void process_line(St *st, const char *s, size_t n)
{
    if (st->skip_def) {
        size_t i = 0;
        if (n > 0 && (s[0] == '.' || s[0] == '\'')) {
            i = 1;
            while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
            if (i < n && s[i] == '.' && (i + 1 == n || s[i + 1] == ' ' ||
                                         s[i + 1] == '\t'))
                st->skip_def = 0;
        }
        return;
    }
    if (st->cond_depth > 0) {
        st->cond_depth = count_braces(s, n, st->cond_depth);
        if (st->cond_depth < 0)
            st->cond_depth = 0;
        return;
    }
    if (st->tbl == 1) {
        /* options line ends with ';', format lines end with '.' */
        if (n > 0 && (s[0] == '.' || s[0] == '\''))
            return;
        size_t e = n;
        while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t'))
            e--;
        if (e > 0 && s[e - 1] == ';') {
            const char *t = strstr(s, "tab");
            if (t && (size_t)(t - s) < e) {
                t += 3;
                while (*t == ' ')
                    t++;
                if (*t == '(' && t[1] && t[1] != ')')
                    st->tab = t[1];
            }
            return;
        }
        if (e > 0 && s[e - 1] == '.')
            st->tbl = 2;
        return;
    }
    if (n > 0 && (s[0] == '.' || s[0] == '\'')) {
        control_line(st, s, n);
        return;
    }
    text_line(st, s, n);
}

static void reset_state(St *st)
{
    out_break(st);
    st->nospace = 0;
    st->fill = 1;
    st->tag_line = 0;
    st->skip_def = 0;
    st->cond_depth = 0;
    st->tbl = 0;
    st->tbl_block = 0;
    st->tab = '\t';
    str_clear(&st->nm);
    for (size_t i = 0; i < st->ndefs; i++)
        free(st->defs[i].text.s);
    free(st->defs);
    st->defs = NULL;
    st->ndefs = 0;
}

static void process_file(St *st, const char *path)
{
    gzFile gz;
    if (strcmp(path, "-") == 0)
        gz = gzdopen(0, "rb");
    else
        gz = gzopen(path, "rb");
    if (!gz)
        die("%s: cannot open: %s", path, errno ? strerror(errno) : "zlib");
    Str data = {0};
    for (;;) {
        str_reserve(&data, 65536);
        int r = gzread(gz, data.s + data.len, 65536);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            die("%s: read error at offset %zu: %s", path, data.len,
                zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0)
            break;
        data.len += (size_t)r;
    }
    gzclose(gz);

    long bad = utf8_invalid_at((const unsigned char *)data.s, data.len);
    if (bad >= 0) {
        fprintf(stderr, "%s: warning: %s: not valid UTF-8 (byte %ld), "
                        "skipped\n",
                progname, path, bad);
        st->skipped++;
        free(data.s);
        return;
    }

    reset_state(st);
    Str line = {0};
    size_t i = 0;
    while (i < data.len) {
        size_t j = i;
        while (j < data.len && data.s[j] != '\n')
            j++;
        size_t e = j;
        if (e > i && data.s[e - 1] == '\r')
            e--;
        /* a trailing unescaped backslash continues the line */
        size_t bs = 0;
        while (bs < e - i && data.s[e - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 1) {
            str_put(&line, data.s + i, e - i - 1);
        } else {
            str_put(&line, data.s + i, e - i);
            process_line(st, line.s, line.len);
            str_clear(&line);
        }
        i = j + 1;
    }
    if (line.len)
        process_line(st, line.s, line.len);
    out_break(st);
    free(line.s);
    free(data.s);
}

int main(int argc, char **argv)
{
    St st;
    memset(&st, 0, sizeof st);
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...  (gzip-compressed or plain)\n",
                progname);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        process_file(&st, argv[i]);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("write error on standard output: %s", strerror(errno));
    if (st.skipped)
        fprintf(stderr, "%s: %lu file(s) skipped (not valid UTF-8)\n",
                progname, st.skipped);
    reset_state(&st);
    free(st.para.s);
    free(st.nm.s);
    return 0;
}
