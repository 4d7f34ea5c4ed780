/* eval_kernels.h - the tile kernels of softemb/eval.c, written once with GCC
 * vector extensions and included once per vector width: KW floats per vector,
 * KSUF a name suffix, KATTR the function attributes (target ISA). A width the
 * target lacks would be emulated element by element (25x slower), so each
 * instance is compiled for an ISA that has it and eval.c picks one at run
 * time. Not a standalone header. */

#define KCAT2(a, b) a##b
#define KCAT(a, b) KCAT2(a, b)
#define K(x) KCAT(x, KSUF)
#define KNR (2 * KW) /* rows per metrics tile: two float vectors */
#define KDW (KW / 2) /* doubles per vector */
#define KDNR KW      /* columns per double tile: two double vectors */

typedef float K(vf) __attribute__((vector_size(4 * KW)));
typedef float K(vfu) __attribute__((vector_size(4 * KW), aligned(4), may_alias));
typedef int32_t K(vi) __attribute__((vector_size(4 * KW)));
typedef double K(vd) __attribute__((vector_size(4 * KW)));
typedef double K(vdu) __attribute__((vector_size(4 * KW), aligned(8), may_alias));

/* ---- metrics ---- */

/* acc[i][h] lane j = sum_k q_i[k] * p[k][h * KW + j], k in order */
static ALWAYS_INLINE void K(tile_scores)(const float *const q[MR], const float *p, size_t dim, K(vf) acc[MR][2])
{
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = (K(vf)){ 0 };
    for (size_t k = 0; k < dim; k++) {
        const K(vf) b0 = *(const K(vfu) *)(p + k * KNR), b1 = *(const K(vfu) *)(p + k * KNR + KW);
        for (int i = 0; i < MR; i++) {
            const float a = q[i][k];
            acc[i][0] += a * b0;
            acc[i][1] += a * b1;
        }
    }
}

/* Task: the targets' own scores for query block qb (a tile of the MR
 * targets, the diagonal kept). */
KATTR static void K(target_task)(void *ctx, size_t qb, int tid)
{
    mctx *c = ctx;
    uint32_t ids[KNR];
    for (size_t j = 0; j < KNR; j++) {
        size_t qi = qb * MR + j;
        ids[j] = j < MR && qi < c->n ? c->rows[qi] : UINT32_MAX;
    }
    float *p = c->panel[tid];
    pack_tile(c, ids, 0, KNR, p);
    const float *q[MR];
    set_q(c, qb, q);
    K(vf) acc[MR][2];
    K(tile_scores)(q, p, c->dim, acc);
    for (int i = 0; i < MR; i++) {
        size_t qi = qb * MR + (size_t)i;
        if (qi >= c->n)
            break;
        float s = acc[i][i / KW][i % KW];
        c->tdot[qi] = s;
        c->tcos[qi] = s * c->invn[c->rows[qi]];
    }
}

/* Task: count, for every query, the rows of block blk above its target. */
KATTR static void K(rank_task)(void *ctx, size_t blk, int tid)
{
    mctx *c = ctx;
    const size_t r0 = blk * c->rb, nr = c->R - r0 < c->rb ? c->R - r0 : c->rb;
    const size_t ntiles = (nr + KNR - 1) / KNR;
    float *panel = c->panel[tid];
    uint32_t *cnt = c->cnt[tid];
    for (size_t t = 0; t < ntiles; t++)
        pack_tile(c, NULL, r0 + t * KNR, KNR, panel + t * KNR * c->dim);
    K(vi) lane;
    for (int l = 0; l < KW; l++)
        lane[l] = l;
    for (size_t qb = 0; qb < c->nqb; qb++) {
        const float *q[MR];
        set_q(c, qb, q);
        K(vi) above_c[MR], above_d[MR];
        for (int i = 0; i < MR; i++)
            above_c[i] = above_d[i] = (K(vi)){ 0 };
        for (size_t t = 0; t < ntiles; t++) {
            K(vf) acc[MR][2];
            K(tile_scores)(q, panel + t * KNR * c->dim, c->dim, acc);
            const size_t rt = r0 + t * KNR;
            for (int h = 0; h < 2; h++) {
                const K(vi) idx = lane + (int32_t)(rt + KW * (size_t)h);
                const K(vi) valid = idx < (int32_t)c->R;
                const K(vf) inv = *(const K(vfu) *)(c->invn + rt + KW * (size_t)h);
                for (int i = 0; i < MR; i++) {
                    size_t qi = qb * MR + (size_t)i;
                    if (qi >= c->n)
                        break;
                    const int32_t tg = (int32_t)c->rows[qi];
                    const K(vf) s = acc[i][h], cs = s * inv;
                    const float td = c->tdot[qi], tc = c->tcos[qi];
                    /* the target itself never counts (its score is the same
                     * sum, so it would not anyway) */
                    const K(vi) ok = valid & (idx != tg), lower = idx < tg;
                    above_d[i] -= ok & ((s > td) | ((s == td) & lower));
                    above_c[i] -= ok & ((cs > tc) | ((cs == tc) & lower));
                }
            }
        }
        for (int i = 0; i < MR; i++) {
            size_t qi = qb * MR + (size_t)i;
            if (qi >= c->n)
                break;
            int32_t sc = 0, sd = 0;
            for (int l = 0; l < KW; l++) {
                sc += above_c[i][l];
                sd += above_d[i][l];
            }
            cnt[2 * qi] += (uint32_t)sc;
            cnt[2 * qi + 1] += (uint32_t)sd;
        }
    }
}

/* ---- dense linear algebra ---- */

/* t (DMR x KDNR, stride ldt) += sum_k a_i[k] * p[k][0..KDNR), k in order */
static ALWAYS_INLINE void K(dtile_acc)(const double *const a[DMR], const double *p, size_t ldp, size_t kl, double *t,
                                       size_t ldt)
{
    K(vd) acc[DMR][2];
    for (int i = 0; i < DMR; i++) {
        acc[i][0] = *(const K(vdu) *)(t + (size_t)i * ldt);
        acc[i][1] = *(const K(vdu) *)(t + (size_t)i * ldt + KDW);
    }
    for (size_t k = 0; k < kl; k++) {
        const K(vd) b0 = *(const K(vdu) *)(p + k * ldp), b1 = *(const K(vdu) *)(p + k * ldp + KDW);
        for (int i = 0; i < DMR; i++) {
            const double x = a[i][k];
            acc[i][0] += x * b0;
            acc[i][1] += x * b1;
        }
    }
    for (int i = 0; i < DMR; i++) {
        *(K(vdu) *)(t + (size_t)i * ldt) = acc[i][0];
        *(K(vdu) *)(t + (size_t)i * ldt + KDW) = acc[i][1];
    }
}

/* T (rows [r0, r1), stride ldt, zeroed by the caller) += A[r][kbeg:kend) .
 * P[kbeg:kend)[0:ncols), A row r at a + r * lda, P row k at p + k * ldp;
 * rows past `rows` read zeros. k runs in chunks of KC, each in order. */
static ALWAYS_INLINE void K(block_acc)(const double *a, size_t lda, size_t rows, const double *zero, size_t r0,
                                       size_t r1, size_t kbeg, size_t kend, const double *p, size_t ldp, size_t ncols,
                                       double *t, size_t ldt)
{
    for (size_t kc = kbeg; kc < kend; kc += KC) {
        const size_t kl = kend - kc < KC ? kend - kc : KC;
        for (size_t mb = r0; mb < r1; mb += DMR) {
            const double *ar[DMR];
            for (int i = 0; i < DMR; i++)
                ar[i] = mb + (size_t)i < rows ? a + (mb + (size_t)i) * lda + kc : zero;
            double *tm = t + (mb - r0) * ldt;
            for (size_t jt = 0; jt < ncols; jt += KDNR) {
                if (ncols - jt >= KDNR) {
                    K(dtile_acc)(ar, p + kc * ldp + jt, ldp, kl, tm + jt, ldt);
                    continue;
                }
                for (int i = 0; i < DMR; i++) /* a ragged last tile: the same sums */
                    for (size_t j = jt; j < ncols; j++) {
                        double s = tm[(size_t)i * ldt + j];
                        for (size_t k = 0; k < kl; k++)
                            s += ar[i][k] * p[(kc + k) * ldp + j];
                        tm[(size_t)i * ldt + j] = s;
                    }
            }
        }
    }
}

/* Cholesky step 1 for rows [j0 + RBLK * task, ...) */
KATTR static void K(chol_update_task)(void *ctx, size_t task, int tid)
{
    chol_ctx *c = ctx;
    const size_t n = c->n, j0 = c->j0, r0 = j0 + task * RBLK, r1 = r0 + RBLK < n ? r0 + RBLK : n;
    double *t = c->t + (r0 - j0) * CB;
    const size_t r1p = r0 + (r1 - r0 + DMR - 1) / DMR * DMR;
    memset(t, 0, (r1p - r0) * CB * sizeof(double));
    K(block_acc)(c->a, n, n, c->zero, r0, r1p, 0, j0, c->panel, CB, c->jb, t, CB);
    for (size_t i = r0; i < r1; i++) {
        double *row = c->a + i * n + j0;
        const double *ti = t + (i - r0) * CB;
        for (size_t j = 0; j < c->jb; j++)
            row[j] -= ti[j];
    }
}

/* L Y = B then L^T X = Y on columns [SOLVE_COLS*task, ...): each column is an
 * independent system. Rows go in blocks of RBLK: a tile sum over the rows
 * already solved, then the block's own triangle in order. */
KATTR static void K(solve_task)(void *ctx, size_t task, int tid)
{
    solve_ctx *c = ctx;
    const size_t n = c->n, m = c->m, e0 = task * SOLVE_COLS;
    const size_t ec = m - e0 < SOLVE_COLS ? m - e0 : SOLVE_COLS;
    const double *l = c->l;
    double *y = c->b, *t = c->t[tid];
    const size_t nb = (n + RBLK - 1) / RBLK;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t bi = 0; bi < nb; bi++) {
            /* forward: blocks top down, sums over k < i0; backward: bottom up, k >= i1 */
            const size_t blk = pass == 0 ? bi : nb - 1 - bi;
            const size_t i0 = blk * RBLK, i1 = i0 + RBLK < n ? i0 + RBLK : n;
            const size_t i1p = i0 + (i1 - i0 + DMR - 1) / DMR * DMR;
            memset(t, 0, RBLK * SOLVE_COLS * sizeof(double));
            if (pass == 0)
                K(block_acc)(l, n, n, c->zero, i0, i1p, 0, i0, y + e0, m, ec, t, SOLVE_COLS);
            else
                K(block_acc)(l, n, n, c->zero, i0, i1p, i1, n, y + e0, m, ec, t, SOLVE_COLS);
            for (size_t i = i0; i < i1; i++) {
                double *yi = y + i * m + e0;
                const double *ti = t + (i - i0) * SOLVE_COLS;
                for (size_t j = 0; j < ec; j++)
                    yi[j] -= ti[j];
            }
            for (size_t s = 0; s < i1 - i0; s++) {
                const size_t i = pass == 0 ? i0 + s : i1 - 1 - s;
                double *yi = y + i * m + e0;
                const size_t kb = pass == 0 ? i0 : i + 1, ke = pass == 0 ? i : i1;
                for (size_t k = kb; k < ke; k++) {
                    const double lik = l[i * n + k], *yk = y + k * m + e0;
                    for (size_t j = 0; j < ec; j++)
                        yi[j] -= lik * yk[j];
                }
                const double d = l[i * n + i];
                for (size_t j = 0; j < ec; j++)
                    yi[j] /= d;
            }
        }
    }
}

static const se_kernels K(kernels) = { KW, K(target_task), K(rank_task), K(chol_update_task), K(solve_task) };

#undef K
#undef KNR
#undef KDW
#undef KDNR
#undef KSUF
#undef KW
#undef KATTR
