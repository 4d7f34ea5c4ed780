/* cmd_softemb_apply.c - `tokenmill softemb apply`: predict embeddings for every
 * piece of a new vocabulary (a .model) with a trained encoder. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "softemb_cli.h"
#include "tokenmill_softemb.h"

/* ---- apply ----------------------------------------------------------------------------- */

static void apply_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill softemb apply --encoder FILE -m NEW.model -o OUT.gguf|OUT.npy [OPTIONS]\n"
            "\n"
            "Predicts an embedding row for every piece of a sentencepiece model (U+2581 is a\n"
            "space, <0xNN> is that byte) and writes them as GGUF (token_embd.weight and the\n"
            "model's tokenizer in llama.cpp's keys: pieces, types, scores, special ids) or\n"
            ".npy, in the model's id order. Control, unknown and unused pieces get\n"
            "zero rows. With --teacher, pieces whose bytes equal a teacher token's bytes take\n"
            "the teacher's own row instead of a prediction.\n"
            "\n"
            "      --encoder FILE         a .tkse written by softemb train\n"
            "  -m, --model FILE           the new vocabulary (.model)\n"
            "      --teacher FILE [--teacher-vocab FILE --tensor NAME]   copy exact matches\n"
            "      --format gguf|npy      (default: from the output name, else gguf)\n"
            "      --dtype f32|f16|bf16   GGUF tensor type (default f32)\n"
            "      --threads N\n"
            "  -o, --output FILE          file to write (atomically)\n"
            "  -h, --help\n");
}

enum { A_ENCODER = 256, A_TEACHER, A_VOCAB, A_TENSOR, A_FORMAT, A_DTYPE, A_THREADS };

static const struct option apply_opts[] = {
    {"encoder", required_argument, 0, A_ENCODER}, {"model", required_argument, 0, 'm'},
    {"teacher", required_argument, 0, A_TEACHER}, {"teacher-vocab", required_argument, 0, A_VOCAB},
    {"tensor", required_argument, 0, A_TENSOR}, {"format", required_argument, 0, A_FORMAT},
    {"dtype", required_argument, 0, A_DTYPE}, {"threads", required_argument, 0, A_THREADS},
    {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

static int cmp_bytes(const unsigned char *a, size_t la, const unsigned char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : la < lb ? -1 : la > lb;
}

static const tkm_teacher *g_sort_teacher; /* qsort context: the CLI is single-threaded */

static int cmp_teacher_rows(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    size_t la, lb;
    const unsigned char *pa = tkm_teacher_bytes(g_sort_teacher, a, &la);
    const unsigned char *pb = tkm_teacher_bytes(g_sort_teacher, b, &lb);
    int c = cmp_bytes(pa, la, pb, lb);
    return c ? c : a < b ? -1 : a > b;
}

/* The pieces to predict (all but control, unknown and unused ones), their bytes
 * packed into bytes: bp/bl per predicted piece, pidx its id; returns how many. */
static size_t pack_pieces(const tkm_model *m, unsigned char *bytes, const unsigned char **bp, size_t *bl,
                          size_t *pidx, size_t *nspecial)
{
    size_t off = 0, npred = 0;
    const size_t n = (size_t)tkm_model_size(m);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        const char *p = tkm_model_piece(m, (int)i, &k);
        tkm_piece_type ty = tkm_model_piece_type(m, (int)i);
        if (ty == TKM_PIECE_CONTROL || ty == TKM_PIECE_UNKNOWN || ty == TKM_PIECE_UNUSED) {
            (*nspecial)++;
            continue;
        }
        size_t nb = tkm_se_sp_piece_bytes(p, k, ty == TKM_PIECE_BYTE, bytes + off);
        bp[npred] = bytes + off;
        bl[npred] = nb;
        pidx[npred++] = i;
        off += nb;
    }
    return npred;
}

/* Exact byte matches take the teacher's row (the lowest NORMAL row with those
 * bytes) in rowsv; -1 when out of memory. */
static int copy_teacher_rows(const tkm_teacher *t, const unsigned char **bp, const size_t *bl, const size_t *pidx,
                             size_t npred, size_t D, float *rowsv, size_t *ncopied)
{
    size_t tr = tkm_teacher_rows(t), nt = 0;
    uint32_t *ord = malloc((tr ? tr : 1) * sizeof(uint32_t));
    if (!ord)
        return -1;
    for (size_t r = 0; r < tr; r++)
        if (tkm_teacher_row_kind(t, r) == TKM_ROW_NORMAL)
            ord[nt++] = (uint32_t)r;
    g_sort_teacher = t;
    qsort(ord, nt, sizeof(uint32_t), cmp_teacher_rows);
    for (size_t j = 0; j < npred; j++) {
        size_t lo = 0, hi = nt; /* first row with bytes >= the piece's */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            size_t tl;
            const unsigned char *tb = tkm_teacher_bytes(t, ord[mid], &tl);
            if (cmp_bytes(tb, tl, bp[j], bl[j]) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t tl;
        if (lo < nt) {
            const unsigned char *tb = tkm_teacher_bytes(t, ord[lo], &tl);
            if (cmp_bytes(tb, tl, bp[j], bl[j]) == 0) {
                memcpy(rowsv + pidx[j] * D, tkm_teacher_matrix(t) + (size_t)ord[lo] * D, D * sizeof(float));
                (*ncopied)++;
            }
        }
    }
    free(ord);
    return 0;
}

int softemb_apply(int argc, char **argv)
{
    teacher_arg ta = {0};
    const char *enc = NULL, *model = NULL, *out = NULL, *format = NULL, *dtype = "f32";
    int threads = 0, c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:h", apply_opts, NULL)) != -1) {
        switch (c) {
        case A_ENCODER: enc = optarg; break;
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case A_TEACHER: ta.path = optarg; break;
        case A_VOCAB: ta.o.vocab = optarg; break;
        case A_TENSOR: ta.o.tensor = optarg; break;
        case A_FORMAT: format = optarg; break;
        case A_DTYPE: dtype = optarg; break;
        case A_THREADS:
            if (cli_int(optarg, 0, 1024, &v) < 0) {
                fprintf(stderr, "tokenmill softemb apply: bad --threads '%s'\n", optarg);
                return EXIT_USAGE;
            }
            threads = (int)v;
            break;
        case 'h': apply_usage(stdout); return EXIT_OK;
        default: apply_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tokenmill softemb apply: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!enc || !model || !out) {
        fprintf(stderr, "tokenmill softemb apply: %s\n",
                !enc ? "no encoder given (--encoder FILE)" : !model ? "no model given (-m FILE)" : "no output given (-o FILE)");
        return EXIT_USAGE;
    }
    if (!format) {
        size_t k = strlen(out);
        format = k > 4 && !strcmp(out + k - 4, ".npy") ? "npy" : "gguf";
    }
    if (strcmp(format, "gguf") && strcmp(format, "npy")) {
        fprintf(stderr, "tokenmill softemb apply: --format must be gguf or npy\n");
        return EXIT_USAGE;
    }
    tkm_dtype dt = !strcmp(dtype, "f32") ? TKM_DTYPE_F32 : !strcmp(dtype, "f16") ? TKM_DTYPE_F16
                 : !strcmp(dtype, "bf16") ? TKM_DTYPE_BF16 : (tkm_dtype)-1;
    if ((int)dt < 0) {
        fprintf(stderr, "tokenmill softemb apply: --dtype must be f32, f16 or bf16\n");
        return EXIT_USAGE;
    }
    int status = EXIT_FAIL, rc;
    tkm_se_encoder *e = NULL;
    tkm_model *m = NULL;
    tkm_teacher *t = NULL;
    unsigned char *bytes = NULL;
    const unsigned char **bp = NULL;
    size_t *bl = NULL, *bo = NULL;
    float *rowsv = NULL, *pred = NULL;
    if ((rc = tkm_se_load(enc, &e)) < 0 || (rc = tkm_model_load(model, &m)) < 0) {
        cli_error("softemb apply", rc);
        goto done;
    }
    cli_model_warning("softemb apply", m);
    if (ta.path && !(t = softemb_load_teacher("apply", &ta)))
        goto done;
    tkm_se_info info;
    tkm_se_get_info(e, &info);
    if (t && tkm_teacher_dim(t) != (size_t)info.out_dim) {
        fprintf(stderr, "tokenmill softemb apply: the teacher is %zu wide, the encoder predicts %d\n",
                tkm_teacher_dim(t), info.out_dim);
        goto done;
    }
    size_t n = (size_t)tkm_model_size(m), total = 0, D = (size_t)info.out_dim;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        tkm_model_piece(m, (int)i, &k);
        total += k;
    }
    bytes = malloc(total + 1);
    bp = calloc(n, sizeof(*bp));
    bl = calloc(n, sizeof(size_t));
    bo = calloc(n, sizeof(size_t));
    rowsv = calloc(n * D, sizeof(float));
    pred = malloc(n * D * sizeof(float));
    if (!bytes || !bp || !bl || !bo || !rowsv || !pred) {
        fprintf(stderr, "tokenmill softemb apply: out of memory\n");
        goto done;
    }
    /* pieces to predict, packed */
    size_t nspecial = 0, ncopied = 0;
    size_t *pidx = bo; /* positions of predicted pieces */
    size_t npred = pack_pieces(m, bytes, bp, bl, pidx, &nspecial);
    rc = tkm_se_predict(e, bp, bl, npred, threads, pred);
    if (rc < 0) {
        cli_error("softemb apply", rc);
        goto done;
    }
    for (size_t j = 0; j < npred; j++)
        memcpy(rowsv + pidx[j] * D, pred + j * D, D * sizeof(float));
    if (t && copy_teacher_rows(t, bp, bl, pidx, npred, D, rowsv, &ncopied) < 0) {
        fprintf(stderr, "tokenmill softemb apply: out of memory\n");
        goto done;
    }
    char *g = cli_guard_output(out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
    rc = !strcmp(format, "npy") ? tkm_emb_write_npy(out, n, D, rowsv) : tkm_emb_write_gguf_model(out, m, D, rowsv, dt);
    cli_unguard_output(g);
    if (rc < 0) {
        cli_error("softemb apply", rc);
        goto done;
    }
    if (!cli_quiet)
        fprintf(stderr, "tokenmill softemb apply: wrote %s: %zu rows x %zu (%zu predicted, %zu copied from the "
                        "teacher, %zu control/unknown/unused rows left at zero)\n",
                out, n, D, npred - ncopied, ncopied, nspecial);
    status = EXIT_OK;
done:
    free(bytes);
    free(bp);
    free(bl);
    free(bo);
    free(rowsv);
    free(pred);
    tkm_teacher_free(t);
    tkm_model_free(m);
    tkm_se_free(e);
    return status;
}
