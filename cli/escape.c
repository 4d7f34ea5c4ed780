/* escape.c - strings into the CLI's text formats, each rule once: JSON
 * strings, CSV fields, HTML text. Names come from the command line and from
 * files, so any bytes arrive: bytes that are not valid UTF-8 become U+FFFD,
 * so that every output parses. */
#include <string.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at b (n bytes left), or 0. */
size_t cli_utf8_len(const unsigned char *b, size_t n)
{
    unsigned c = b[0];
    size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > n)
        return 0;
    unsigned cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
    for (size_t i = 1; i < k; i++) {
        if ((b[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (b[i] & 0x3F);
    }
    static const unsigned min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
void cli_json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    fputc('"', f);
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') { fprintf(f, "\\%c", c); p++; continue; }
        if (c < 0x20) { fprintf(f, "\\u%04x", c); p++; continue; }
        size_t k = cli_utf8_len(p, n - (size_t)(p - (const unsigned char *)s));
        if (k) { fwrite(p, 1, k, f); p += k; }
        else { fputs("\\ufffd", f); p++; }
    }
    fputc('"', f);
}

/* Text for the UTF-8 HTML page: markup characters escaped; invalid UTF-8
 * and control characters (C0 but tab and newlines, DEL, C1), which HTML does
 * not allow, become U+FFFD. */
void cli_html_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
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
        size_t k = cli_utf8_len(p, n - (size_t)(p - (const unsigned char *)s));
        if (k) { fwrite(p, 1, k, f); p += k; }
        else { fputs("&#xFFFD;", f); p++; }
    }
}

/* A CSV field (RFC 4180): quoted, with "" for ", when it holds a comma, a
 * quote, CR or LF; invalid UTF-8 bytes become U+FFFD as in JSON. */
void cli_csv_str(FILE *f, const char *s)
{
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    if (quote) fputc('"', f);
    while (*p) {
        unsigned char c = *p;
        if (c == '"') { fputs("\"\"", f); p++; continue; }
        size_t k = cli_utf8_len(p, n - (size_t)(p - (const unsigned char *)s));
        if (k) { fwrite(p, 1, k, f); p += k; }
        else { fputs("\xef\xbf\xbd", f); p++; }
    }
    if (quote) fputc('"', f);
}
