/* utf8.c - strict UTF-8 decoding (sentencepiece's rules) and Unicode script
 * lookup through ICU with sentencepiece's Japanese merging. */
#include <pthread.h>
#include <unicode/uchar.h>
#include <unicode/uscript.h>

#include "tkm_internal.h"

int32_t tkmi_utf8_decode(const uint8_t *s, size_t len, int *mblen)
{
    uint8_t c = s[0];
    if (c < 0x80) { *mblen = 1; return c; }
    if (len >= 2 && (c & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
        int32_t cp = ((c & 0x1F) << 6) | (s[1] & 0x3F);
        if (cp >= 0x80) { *mblen = 2; return cp; }
    } else if (len >= 3 && (c & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        int32_t cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) { *mblen = 3; return cp; }
    } else if (len >= 4 && (c & 0xF8) == 0xF0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
               (s[3] & 0xC0) == 0x80) {
        int32_t cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (cp >= 0x10000 && cp <= 0x10FFFF) { *mblen = 4; return cp; }
    }
    *mblen = 1;
    return -1;
}

int tkmi_utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int script_icu(uint32_t cp)
{
    UErrorCode err = U_ZERO_ERROR;
    if (cp == 0x30FC) return USCRIPT_HAN; /* KATAKANA-HIRAGANA PROLONGED SOUND MARK */
    UScriptCode s = uscript_getScript((UChar32)cp, &err);
    if (U_FAILURE(err)) return USCRIPT_COMMON;
    if (s == USCRIPT_HIRAGANA || s == USCRIPT_KATAKANA) return USCRIPT_HAN;
    return (int)s;
}

/* The BMP is looked up in a table built once (ICU's lookup is too slow for
 * the trainers' inner loops); other planes go to ICU. */
static uint8_t g_script_bmp[65536];
static pthread_once_t g_script_once = PTHREAD_ONCE_INIT;
static void script_table_init(void)
{
    for (uint32_t c = 0; c < 65536; c++) g_script_bmp[c] = (uint8_t)script_icu(c);
}

const uint8_t *tkmi_script_bmp(void)
{
    pthread_once(&g_script_once, script_table_init);
    return g_script_bmp;
}

int tkmi_script(uint32_t cp)
{
    if (cp >= 65536) return script_icu(cp);
    pthread_once(&g_script_once, script_table_init);
    return g_script_bmp[cp];
}

int tkmi_balance_class(const char *piece, size_t len)
{
    const uint8_t *s = (const uint8_t *)piece;
    size_t i = 0;
    if (len >= 3 && memcmp(s, TKMI_WS, 3) == 0) i = 3; /* a leading U+2581 is allowed, not counted */
    int n = 0, latin = 1, ja = 1;
    while (i < len && (latin || ja)) {
        int mb;
        int32_t cp = tkmi_utf8_decode(s + i, len - i, &mb);
        if (cp < 0) return TKMI_CLASS_OTHER;
        UErrorCode err = U_ZERO_ERROR;
        UScriptCode sc = uscript_getScript(cp, &err);
        if (U_FAILURE(err)) return TKMI_CLASS_OTHER;
        if (!(sc == USCRIPT_LATIN && u_isalpha(cp))) latin = 0;
        if (!(sc == USCRIPT_HAN || sc == USCRIPT_HIRAGANA || sc == USCRIPT_KATAKANA || cp == 0x30FC)) ja = 0;
        n++;
        i += (size_t)mb;
    }
    if (n == 0) return TKMI_CLASS_OTHER;
    if (latin) return n >= 2 ? TKMI_CLASS_LATIN : TKMI_CLASS_OTHER;
    return ja ? TKMI_CLASS_JAPANESE : TKMI_CLASS_OTHER;
}
