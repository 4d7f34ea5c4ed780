/* cmd_encode.c - `tokenmill encode` and `tokenmill decode`: line-oriented,
 * multi-threaded over batches of lines, output in input order. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"

#define BATCH_BYTES (4u << 20)

typedef struct { char *p; size_t n, cap; } buf_t;

static inline int buf_put(buf_t *b, const char *s, size_t n)
{
    if (n == 0) return 0; /* s may be NULL (an empty line), b->p too */
    if (__builtin_expect(b->n + n > b->cap, 0)) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) return -1;
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static int buf_int(buf_t *b, long v)
{
    char tmp[24];
    int k = (int)sizeof tmp;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    do { tmp[--k] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) tmp[--k] = '-';
    return buf_put(b, tmp + k, sizeof tmp - (size_t)k);
}

enum { FMT_ID, FMT_PIECE, FMT_U16 };

typedef struct {
    const tkm_model *m;
    tkm_encoder *enc;
    int fmt, decode;
    /* u16 datasets: newline ids between the lines of a document, separator
     * id after each document (-1: none), one document per line or per file */
    const int32_t *nl_ids;
    size_t n_nl;
    int32_t sep;
    int doc_per_line;
    /* batch slice */
    const char *const *lines;
    const size_t *lens;
    size_t from, to;
    buf_t out;
    int rc;
    char err[512];
} job_t;

static int put_u16(buf_t *b, int32_t id)
{
    uint8_t le[2] = {(uint8_t)(id & 0xFF), (uint8_t)((uint32_t)id >> 8)};
    return buf_put(b, (const char *)le, 2);
}

static int encode_line(job_t *j, const char *s, size_t n, size_t line_in_file)
{
    const int32_t *ids;
    size_t k;
    int rc = tkm_encode(j->enc, s, n, &ids, &k);
    if (rc < 0) return rc;
    if (j->fmt == FMT_U16) {
        if (!j->doc_per_line && line_in_file > 0)
            for (size_t i = 0; i < j->n_nl; i++)
                if (put_u16(&j->out, j->nl_ids[i])) return TKM_ENOMEM;
        for (size_t i = 0; i < k; i++)
            if (put_u16(&j->out, ids[i])) return TKM_ENOMEM;
        if (j->doc_per_line && j->sep >= 0 && put_u16(&j->out, j->sep)) return TKM_ENOMEM;
        return 0;
    }
    for (size_t i = 0; i < k; i++) {
        if (i && buf_put(&j->out, " ", 1)) return TKM_ENOMEM;
        if (j->fmt == FMT_ID) {
            if (buf_int(&j->out, ids[i])) return TKM_ENOMEM;
        } else {
            size_t pl;
            const char *p = tkm_model_piece(j->m, ids[i], &pl);
            if (buf_put(&j->out, p, pl)) return TKM_ENOMEM;
        }
    }
    return buf_put(&j->out, "\n", 1) ? TKM_ENOMEM : 0;
}

static int decode_line(job_t *j, const char *s, size_t n, size_t lineno)
{
    int32_t *ids = NULL;
    size_t k = 0, cap = 0, i = 0;
    int rc = 0;
    /* Pieces are separated by spaces only, what encode and spm_encode write
     * (empty ones skipped, as spm_decode does): TAB and CR are pieces of
     * their own ("\t", nerdstash's "\t\t") and must not vanish. Ids may
     * also be separated by TAB or CR. */
    const char *seps = j->fmt == FMT_ID ? " \t\r" : " ";
    while (i < n && rc == 0) {
        while (i < n && s[i] && strchr(seps, s[i])) i++;
        if (i >= n) break;
        size_t st = i;
        while (i < n && !(s[i] && strchr(seps, s[i]))) i++;
        long id;
        if (j->fmt == FMT_ID) {
            char tmp[32];
            size_t tl = i - st;
            char *end;
            if (tl >= sizeof tmp) { id = -1; end = tmp; tmp[0] = 'x'; }
            else {
                memcpy(tmp, s + st, tl);
                tmp[tl] = 0;
                errno = 0;
                id = strtol(tmp, &end, 10);
            }
            if (*end || errno) {
                snprintf(j->err, sizeof j->err, "line %zu: '%.*s' is not an id", lineno, (int)(i - st), s + st);
                rc = TKM_EFORMAT;
                break;
            }
        } else {
            id = tkm_model_piece_id(j->m, s + st, i - st);
            if (id < 0) id = tkm_model_unk_id(j->m);
        }
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            int32_t *q = realloc(ids, cap * sizeof *q);
            if (!q) { rc = TKM_ENOMEM; break; }
            ids = q;
        }
        ids[k++] = (int32_t)(id < INT32_MIN || id > INT32_MAX ? -1 : id);
    }
    if (rc == 0) {
        char *text;
        size_t tl;
        rc = tkm_decode(j->m, ids, k, &text, &tl);
        if (rc < 0) snprintf(j->err, sizeof j->err, "line %zu: %s", lineno, tkm_last_error());
        else {
            if (buf_put(&j->out, text, tl) || buf_put(&j->out, "\n", 1)) rc = TKM_ENOMEM;
            tkm_free(text);
        }
    }
    free(ids);
    return rc;
}

static size_t g_line_base;

static void *job_main(void *arg)
{
    job_t *j = arg;
    j->out.n = 0;
    j->rc = 0;
    for (size_t i = j->from; i < j->to && j->rc == 0; i++) {
        j->rc = j->decode ? decode_line(j, j->lines[i], j->lens[i], g_line_base + i + 1)
                          : encode_line(j, j->lines[i], j->lens[i], g_line_base + i);
        if (j->rc < 0 && !j->err[0]) snprintf(j->err, sizeof j->err, "line %zu: %s", g_line_base + i + 1, tkm_last_error());
    }
    return NULL;
}

static const struct option io_opts[] = {
    {"model", required_argument, 0, 'm'},
    {"output", required_argument, 0, 'o'},
    {"output-format", required_argument, 0, 'F'},
    {"input-format", required_argument, 0, 'I'},
    {"threads", required_argument, 0, 't'},
    {"doc-separator", required_argument, 0, 'S'},
    {"doc-per-line", no_argument, 0, 'L'},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static void io_usage(FILE *f, int decode)
{
    if (decode)
        fprintf(f, "usage: tokenmill decode -m MODEL [--input-format id|piece] [-o OUT] [FILE...]\n"
                   "\n"
                   "Reads one sequence of ids (or pieces) per line, separated by spaces, and\n"
                   "writes the text, exactly as sentencepiece's DecodeIds.\n");
    else
        fprintf(f, "usage: tokenmill encode -m MODEL [--output-format id|piece] [-o OUT] [FILE...]\n"
                   "\n"
                   "Encodes each input line (files, plain or .gz; stdin by default) and writes\n"
                   "one line of space-separated ids or pieces, identical to spm_encode.\n");
    fprintf(f, "\n"
               "  -m, --model FILE        sentencepiece .model (BPE)\n"
               "  -o, --output FILE       output file (written atomically; default stdout)\n"
               "      --output-format F   encode: id, piece (default) or u16\n"
               "      --input-format F    decode: id, piece (default) or u16\n"
               "      --doc-separator S   u16: eos (default), none, or an id, written after\n"
               "                          each document (decode: splits documents there)\n"
               "      --doc-per-line      u16: each line is a document (default: each file)\n"
               "  -t, --threads N         worker threads (number of CPUs)\n"
               "  -h, --help\n");
}

/* OUT.json beside a u16 dataset: what it holds and how it was made. */
static int write_sidecar(const char *outpath, const char *model, const tkm_model *m, uint64_t tokens, uint64_t docs,
                         int32_t sep, int doc_per_line, const char *const *files, int nfiles)
{
    size_t pl = strlen(outpath);
    char *path = malloc(pl + 6), *tmp = NULL;
    if (path) sprintf(path, "%s.json", outpath);
    if (path) tmp = cli_tmp_path(path);
    if (!path || !tmp) { free(path); free(tmp); return EXIT_FAIL; }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "tokenmill encode: %s: cannot create: %s\n", tmp, strerror(errno));
        cli_discard(tmp, path);
        free(path); free(tmp);
        return EXIT_FAIL;
    }
    size_t mlen;
    const uint8_t *mb = tkm_model_bytes(m, &mlen);
    unsigned long crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, mb, (uInt)mlen);
    fprintf(f, "{\n  \"format\": \"tokenmill-u16\",\n  \"dtype\": \"uint16\",\n  \"byte_order\": \"little\",\n");
    fprintf(f, "  \"model\": ");
    cli_json_str(f, model);
    fprintf(f, ",\n  \"model_bytes\": %zu,\n  \"model_crc32\": \"%08lx\",\n  \"vocab_size\": %d,\n", mlen, crc,
            tkm_model_size(m));
    fprintf(f, "  \"tokens\": %llu,\n  \"documents\": %llu,\n  \"document_unit\": \"%s\",\n",
            (unsigned long long)tokens, (unsigned long long)docs, doc_per_line ? "line" : "file");
    fprintf(f, "  \"doc_separator_id\": %d,\n  \"sources\": [", (int)sep);
    for (int i = 0; i < nfiles; i++) {
        fprintf(f, i ? ", " : "");
        cli_json_str(f, files[i]);
    }
    fprintf(f, "]\n}\n");
    int bad = ferror(f) | (fclose(f) != 0);
    if (bad || cli_commit(tmp, path) != 0) {
        fprintf(stderr, "tokenmill encode: %s: cannot write\n", path);
        cli_discard(tmp, path);
        free(path); free(tmp);
        return EXIT_FAIL;
    }
    free(path);
    free(tmp);
    return EXIT_OK;
}

/* decode --input-format u16: documents are split at the separator id; each
 * is decoded and written as text followed by a newline. */
static int decode_u16(const tkm_model *m, int nfiles, char **files, const char *outpath, int32_t sep)
{
    FILE *out = stdout;
    char *tmp = NULL;
    if (outpath) {
        tmp = cli_tmp_path(outpath);
        if (!tmp || !(out = fopen(tmp, "wb"))) {
            fprintf(stderr, "tokenmill decode: %s: cannot create: %s\n", tmp ? tmp : outpath, strerror(errno));
            if (tmp) cli_discard(tmp, outpath);
            free(tmp);
            return EXIT_FAIL;
        }
    }
    int status = EXIT_OK;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    const char *stdin_only[] = {"-"};
    const char *const *list = nfiles > 0 ? (const char *const *)files : stdin_only;
    if (nfiles <= 0) nfiles = 1;
    for (int fi = 0; fi < nfiles && status == EXIT_OK; fi++) {
        FILE *in = strcmp(list[fi], "-") ? fopen(list[fi], "rb") : stdin;
        if (!in) {
            fprintf(stderr, "tokenmill decode: %s: cannot open: %s\n", list[fi], strerror(errno));
            status = EXIT_FAIL;
            break;
        }
        uint8_t buf[1 << 16];
        size_t got, carry = 0;
        uint64_t pos = 0;
        int eof = 0;
        while (!eof && status == EXIT_OK) {
            got = fread(buf + carry, 1, sizeof buf - carry, in);
            if (got == 0) eof = 1;
            got += carry;
            size_t k = 0;
            for (; k + 2 <= got || (eof && n > 0 && k == got); k += 2) {
                int flush = 0;
                if (k + 2 <= got) {
                    int32_t id = buf[k] | (buf[k + 1] << 8);
                    if (id >= tkm_model_size(m)) {
                        fprintf(stderr, "tokenmill decode: %s: id %d at byte %llu is outside the vocabulary (%d)\n",
                                list[fi], id, (unsigned long long)(pos + k), tkm_model_size(m));
                        status = EXIT_FAIL;
                        break;
                    }
                    if (id == sep) flush = 1;
                    else {
                        if (n == cap) {
                            cap = cap ? cap * 2 : 4096;
                            int32_t *q = realloc(ids, cap * sizeof *q);
                            if (!q) { status = EXIT_FAIL; break; }
                            ids = q;
                        }
                        ids[n++] = id;
                    }
                } else {
                    flush = 1; /* end of input: the last document */
                }
                if (flush) {
                    char *text;
                    size_t tl;
                    if (tkm_decode(m, ids, n, &text, &tl) < 0) { cli_error("decode", -1); status = EXIT_FAIL; break; }
                    if (fwrite(text, 1, tl, out) != tl || fputc('\n', out) == EOF) status = EXIT_FAIL;
                    tkm_free(text);
                    n = 0;
                    if (k + 2 > got) break;
                }
            }
            if (status != EXIT_OK) break;
            carry = got > k ? got - k : 0;
            if (carry) {
                if (eof) {
                    fprintf(stderr, "tokenmill decode: %s: odd number of bytes (truncated u16 file)\n", list[fi]);
                    status = EXIT_FAIL;
                    break;
                }
                memmove(buf, buf + k, carry);
            }
            pos += k;
        }
        if (in != stdin) fclose(in);
    }
    free(ids);
    if (fflush(out) != 0) status = EXIT_FAIL;
    if (outpath) {
        if (fclose(out) != 0) status = EXIT_FAIL;
        if (status == EXIT_OK && cli_commit(tmp, outpath) != 0) status = EXIT_FAIL;
        if (status != EXIT_OK) cli_discard(tmp, outpath);
        free(tmp);
    }
    return status;
}

/* One batch of lines (up to BATCH_BYTES) read from r, copied into the arena:
 * line i at offs[i], lens[i] bytes (the arrays grown to *lcap), *nl lines;
 * *eof set at the end of the input. A negative TKM_E* code on failure. */
static int read_batch(tkm_reader *r, buf_t *arena_p, size_t **offs_p, size_t **lens_p, const char ***lines_p,
                      size_t *lcap_p, size_t *nl_p, int *eof_p)
{
    buf_t arena = *arena_p;
    size_t *offs = *offs_p, *lens = *lens_p, lcap = *lcap_p, nl = *nl_p;
    const char **lines = *lines_p;
    int rc = 0, eof = *eof_p;
    const char *s;
    size_t n;
    while (arena.n < BATCH_BYTES) {
        rc = tkm_reader_next(r, &s, &n);
        if (rc <= 0) { eof = 1; break; }
        if (nl == lcap) {
            lcap = lcap ? lcap * 2 : 4096;
            offs = realloc(offs, lcap * sizeof *offs);
            lens = realloc(lens, lcap * sizeof *lens);
            lines = realloc((void *)lines, lcap * sizeof *lines);
            if (!offs || !lens || !lines) { rc = TKM_ENOMEM; eof = 1; break; }
        }
        offs[nl] = arena.n;
        lens[nl] = n;
        if (buf_put(&arena, s, n)) { rc = TKM_ENOMEM; eof = 1; break; }
        nl++;
    }
    *arena_p = arena;
    *offs_p = offs;
    *lens_p = lens;
    *lines_p = lines;
    *lcap_p = lcap;
    *nl_p = nl;
    *eof_p = eof;
    return rc;
}

/* Encodes or decodes the nl lines on up to `threads` jobs (one runs on this
 * thread) and writes their output in order; adds the bytes written to
 * *u16_bytes. EXIT_OK or EXIT_FAIL (said why, naming file). */
static int run_batch(const char *cmd, const char *file, job_t *jobs, pthread_t *th, int threads, const char *const *lines,
                     const size_t *lens, size_t nl, FILE *out, uint64_t *u16_bytes)
{
    int status = EXIT_OK;
    int nt = threads;
    if ((size_t)nt > nl) nt = nl ? (int)nl : 1;
    size_t per = (nl + (size_t)nt - 1) / (size_t)nt;
    for (int i = 0; i < nt; i++) {
        jobs[i].lines = lines;
        jobs[i].lens = lens;
        jobs[i].from = (size_t)i * per < nl ? (size_t)i * per : nl;
        jobs[i].to = (size_t)(i + 1) * per < nl ? (size_t)(i + 1) * per : nl;
        jobs[i].err[0] = 0;
        if (nt == 1) job_main(&jobs[i]);
        else pthread_create(&th[i], NULL, job_main, &jobs[i]);
    }
    for (int i = 0; i < nt; i++) {
        if (nt > 1) pthread_join(th[i], NULL);
    }
    for (int i = 0; i < nt && status == EXIT_OK; i++) {
        if (jobs[i].rc < 0) {
            fprintf(stderr, "tokenmill %s: %s: %s\n", cmd, file, jobs[i].err);
            status = EXIT_FAIL;
            break;
        }
        *u16_bytes += jobs[i].out.n;
        if (jobs[i].out.n && fwrite(jobs[i].out.p, 1, jobs[i].out.n, out) != jobs[i].out.n) {
            fprintf(stderr, "tokenmill %s: write error: %s\n", cmd, strerror(errno));
            status = EXIT_FAIL;
        }
    }
    return status;
}

/* What the command line asked for. */
typedef struct {
    const char *model, *outpath, *cmd, *sep_arg;
    int fmt, doc_per_line, threads, decode;
} io_args;

/* Parses argv into a: -1 to go on, or the exit status to return. */
static int parse_io_args(int argc, char **argv, int decode, io_args *a)
{
    long nproc = sysconf(_SC_NPROCESSORS_ONLN), v;
    *a = (io_args){ .cmd = decode ? "decode" : "encode", .sep_arg = "eos", .fmt = FMT_PIECE, .decode = decode,
                    .threads = nproc > 0 ? (int)(nproc > 64 ? 64 : nproc) : 1 };
    const char *cmd = a->cmd;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:t:qh", io_opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'o': a->outpath = strcmp(optarg, "-") ? optarg : NULL; break; /* -o -: standard output */
        case 'F':
        case 'I':
            if (!strcmp(optarg, "id")) a->fmt = FMT_ID;
            else if (!strcmp(optarg, "piece")) a->fmt = FMT_PIECE;
            else if (!strcmp(optarg, "u16")) a->fmt = FMT_U16;
            else {
                fprintf(stderr, "tokenmill %s: unknown format '%s' (id, piece or u16)\n", cmd, optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (cli_int(optarg, 1, 256, &v)) {
                fprintf(stderr, "tokenmill %s: invalid thread count '%s'\n", cmd, optarg);
                return EXIT_USAGE;
            }
            a->threads = (int)v;
            break;
        case 'S': a->sep_arg = optarg; break;
        case 'L': a->doc_per_line = 1; break;
        case 'q': break;
        case 'h': io_usage(stdout, decode); return EXIT_OK;
        default: io_usage(stderr, decode); return EXIT_USAGE;
        }
    }
    if (!a->model) {
        fprintf(stderr, "tokenmill %s: no model given (-m FILE.model)\n", cmd);
        return EXIT_USAGE;
    }
    return -1;
}

/* u16 output: the document separator (*sep, -1 none) and the id of the
 * newline between the lines of a document. -1 to go on, or an exit status. */
static int u16_setup(const io_args *a, const tkm_model *m, int32_t *sep, int32_t *nl_id)
{
    const char *cmd = a->cmd;
    long v;
    if (tkm_model_size(m) > 65536) {
        fprintf(stderr, "tokenmill %s: %s has %d pieces: ids do not fit in uint16 (at most 65536)\n", cmd, a->model,
                tkm_model_size(m));
        return EXIT_FAIL;
    }
    if (!strcmp(a->sep_arg, "eos")) {
        *sep = tkm_model_eos_id(m);
        if (*sep < 0) {
            fprintf(stderr, "tokenmill %s: %s has no eos piece; use --doc-separator none or an id\n", cmd, a->model);
            return EXIT_USAGE;
        }
    } else if (strcmp(a->sep_arg, "none") != 0) {
        if (cli_int(a->sep_arg, 0, tkm_model_size(m) - 1, &v)) {
            fprintf(stderr, "tokenmill %s: invalid --doc-separator '%s' (eos, none or an id)\n", cmd, a->sep_arg);
            return EXIT_USAGE;
        }
        *sep = (int32_t)v;
    }
    /* the newline between the lines of a document: its piece, else its
     * byte piece, else unk */
    int id = tkm_model_piece_id(m, "\n", 1);
    if (id < 0 && tkm_model_byte_fallback(m)) id = tkm_model_piece_id(m, "<0x0A>", 6);
    if (id < 0) id = tkm_model_unk_id(m);
    *nl_id = id;
    return -1;
}

/* Every input file through the jobs, batch by batch, into out (u16: the
 * separator after each document, bytes and documents counted). */
static int run_files(const io_args *a, const char *const *files, int nfiles, job_t *jobs, pthread_t *th, FILE *out,
                     int32_t sep, uint64_t *u16_bytes, uint64_t *docs)
{
    /* batch of lines: copies into one arena */
    buf_t arena = {0};
    size_t *offs = NULL, *lens = NULL, nl = 0, lcap = 0;
    const char **lines = NULL;
    int status = EXIT_OK, rc;
    for (int f = 0; f < nfiles && status == EXIT_OK; f++) {
        tkm_reader *r;
        if ((rc = tkm_reader_open(files[f], &r)) < 0) { cli_error(a->cmd, rc); status = EXIT_FAIL; break; }
        g_line_base = 0;
        int eof = 0;
        while (!eof && status == EXIT_OK) {
            arena.n = 0;
            nl = 0;
            rc = read_batch(r, &arena, &offs, &lens, &lines, &lcap, &nl, &eof);
            if (rc < 0) { cli_error(a->cmd, rc); status = EXIT_FAIL; break; }
            for (size_t i = 0; i < nl; i++) lines[i] = arena.p + offs[i];
            status = run_batch(a->cmd, files[f], jobs, th, a->threads, lines, lens, nl, out, u16_bytes);
            g_line_base += nl;
        }
        tkm_reader_close(r);
        if (a->fmt == FMT_U16 && status == EXIT_OK) {
            *docs += a->doc_per_line ? g_line_base : 1;
            if (!a->doc_per_line && sep >= 0) {
                uint8_t le[2] = {(uint8_t)(sep & 0xFF), (uint8_t)((uint32_t)sep >> 8)};
                if (fwrite(le, 1, 2, out) != 2) status = EXIT_FAIL;
                *u16_bytes += 2;
            }
        }
    }
    free(arena.p);
    free(offs);
    free(lens);
    free((void *)lines);
    return status;
}

static int run_io(int argc, char **argv, int decode)
{
    io_args a;
    int st = parse_io_args(argc, argv, decode, &a);
    if (st >= 0)
        return st;
    const char *cmd = a.cmd, *model = a.model, *outpath = a.outpath;
    int fmt = a.fmt, threads = a.threads;
    tkm_model *m;
    /* encode also reads tokenizer.json and tiktoken files (tokenmill-analyze(1)) */
    int rc = decode ? tkm_model_load(model, &m) : tkm_model_load_any(model, TKM_TIKTOKEN_AUTO, &m);
    if (rc < 0) { cli_error(cmd, rc); return EXIT_FAIL; }
    cli_model_warning(cmd, m);
    int32_t sep = -1, nl_ids[1];
    size_t n_nl = 0;
    if (fmt == FMT_U16) {
        if ((st = u16_setup(&a, m, &sep, &nl_ids[0])) >= 0) {
            tkm_model_free(m);
            return st;
        }
        n_nl = 1;
        if (decode) {
            st = decode_u16(m, argc - optind, argv + optind, outpath, sep);
            tkm_model_free(m);
            return st;
        }
    }
    /* from here every exit goes through `done`, which frees what exists */
    char *tmp = NULL;
    FILE *out = stdout;
    int status = EXIT_OK;
    job_t *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    if (!jobs || !th) {
        fprintf(stderr, "tokenmill %s: out of memory\n", cmd);
        status = EXIT_FAIL;
        goto done;
    }
    for (int i = 0; i < threads; i++) {
        jobs[i].m = m;
        jobs[i].fmt = fmt;
        jobs[i].decode = decode;
        jobs[i].nl_ids = nl_ids;
        jobs[i].n_nl = n_nl;
        jobs[i].sep = sep;
        jobs[i].doc_per_line = a.doc_per_line;
        if (!decode && (rc = tkm_encoder_new(m, &jobs[i].enc)) < 0) {
            cli_error(cmd, rc);
            status = EXIT_FAIL;
            goto done;
        }
    }
    if (outpath) {
        tmp = cli_tmp_path(outpath);
        out = tmp ? fopen(tmp, "wb") : NULL;
        if (!out) {
            fprintf(stderr, "tokenmill %s: %s: cannot create: %s\n", cmd, tmp ? tmp : outpath, strerror(errno));
            if (tmp) cli_discard(tmp, outpath);
            free(tmp);
            tmp = NULL;
            status = EXIT_FAIL;
            goto done;
        }
    }
    const char *stdin_only[] = {"-"};
    int nfiles = argc - optind;
    const char *const *files = nfiles > 0 ? (const char *const *)argv + optind : stdin_only;
    if (nfiles <= 0) nfiles = 1;
    uint64_t u16_bytes = 0, docs = 0;
    if (fmt == FMT_U16 && !outpath && isatty(1)) {
        fprintf(stderr, "tokenmill %s: refusing to write binary u16 output to a terminal (use -o FILE)\n", cmd);
        status = EXIT_USAGE;
    }
    if (status == EXIT_OK)
        status = run_files(&a, files, nfiles, jobs, th, out, sep, &u16_bytes, &docs);
    if (fflush(out) != 0) {
        fprintf(stderr, "tokenmill %s: write error: %s\n", cmd, strerror(errno));
        status = EXIT_FAIL;
    }
    if (fmt == FMT_U16 && outpath && status == EXIT_OK && !cli_special_output(outpath))
        status = write_sidecar(outpath, model, m, u16_bytes / 2, docs, sep, a.doc_per_line, files, nfiles);
    if (outpath) {
        if (fclose(out) != 0 && status == EXIT_OK) status = EXIT_FAIL;
        if (status == EXIT_OK && cli_commit(tmp, outpath) != 0) {
            fprintf(stderr, "tokenmill %s: %s: %s\n", cmd, outpath, strerror(errno));
            status = EXIT_FAIL;
        }
        if (status != EXIT_OK) cli_discard(tmp, outpath);
        free(tmp);
    }
done:
    for (int i = 0; jobs && i < threads; i++) {
        tkm_encoder_free(jobs[i].enc);
        free(jobs[i].out.p);
    }
    free(jobs);
    free(th);
    tkm_model_free(m);
    return status;
}

int cmd_encode(int argc, char **argv) { return run_io(argc, argv, 0); }
int cmd_decode(int argc, char **argv) { return run_io(argc, argv, 1); }
