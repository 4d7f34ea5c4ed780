/* mpi_train.c - `tokenmill train` and `tokenmill count` across MPI
 * processes (configure --with-mpi). Started by mpirun/mpiexec, every rank
 * parses the same command line; the inputs are cut into units (whole files,
 * and byte ranges of large plain files cut at line starts), each rank counts
 * its units with the library's usual pipeline, the unique pre-tokens are
 * exchanged by hash partition (MPI_Alltoallv in rounds of bounded size, in
 * the count-file record encoding) and summed, then every rank sends its
 * partition to rank 0, which trains (or writes the count file) exactly as a
 * single process would: same counts, so the same model bytes. An error on
 * any rank is printed by rank 0 with the rank's number and every rank exits
 * non-zero; only rank 0 writes, and only at the end. Without mpirun (no
 * launcher variables) nothing here runs and tokenmill is one process. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#ifndef TKM_HAVE_MPI
int cli_mpi_start(int *argc, char ***argv) { (void)argc; (void)argv; return 0; }
int cli_mpi_active(void) { return 0; }
int cli_mpi_count(tkm_trainer *t, const char *cmd, int n, const char *const *files, const double *weights, int quiet)
{
    (void)t; (void)cmd; (void)n; (void)files; (void)weights; (void)quiet;
    return -1;
}
int cli_mpi_end(int code) { return code; }
#else
#include <mpi.h>

static int g_active, g_rank, g_size, g_entered;
static double g_t0;

static double cpu_now(void) /* this process's CPU seconds (all threads) */
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Started by a launcher? (OpenMPI, MPICH/Hydra, PMIx, Slurm's PMI) */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int cli_mpi_start(int *argc, char ***argv)
{
    if (!launched()) return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "tokenmill: MPI_Init failed\n");
        return -1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_active = 1;
    g_t0 = MPI_Wtime();
    return 1;
}

int cli_mpi_active(void) { return g_active; }

/* Waits for r by polling with 1 ms sleeps: a blocking MPI call spins a core
 * (OpenMPI busy-polls), e.g. every other rank for the whole merge loop. */
static void wait_idle(MPI_Request *r)
{
    int done = 0;
    struct timespec ms = {0, 1000000};
    for (;;) {
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (done) return;
        nanosleep(&ms, NULL);
    }
}

int cli_mpi_end(int code)
{
    if (!g_active) return code;
    if (!g_entered) {
        /* this rank stopped before the collective part (options, inputs):
         * the others may be in it; stop them all */
        if (code != EXIT_OK && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
        MPI_Finalize();
        return code;
    }
    int root = code;
    MPI_Request rq;
    MPI_Ibcast(&root, 1, MPI_INT, 0, MPI_COMM_WORLD, &rq);
    wait_idle(&rq);
    MPI_Finalize();
    return code != EXIT_OK ? code : root;
}

/* Every rank passes its status: 0 when all succeeded; otherwise rank 0
 * prints each failing rank's message and all return -1. */
static int agree(int rc, const char *cmd)
{
    int mine = rc < 0, any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!any) return 0;
    char msg[512] = "";
    if (rc < 0) snprintf(msg, sizeof msg, "%s", tkm_last_error()[0] ? tkm_last_error() : "failed");
    char *all = g_rank == 0 ? calloc((size_t)g_size, sizeof msg) : NULL;
    if (g_rank == 0 && !all) MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
    MPI_Gather(msg, sizeof msg, MPI_CHAR, all, sizeof msg, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (g_rank == 0) {
        for (int r = 0; r < g_size; r++)
            if (all[(size_t)r * sizeof msg])
                fprintf(stderr, "tokenmill %s: rank %d of %d: %s\n", cmd, r, g_size, all + (size_t)r * sizeof msg);
        free(all);
    }
    return -1;
}

/* A unit of work: lines of file starting in [start, end) (whole: 0, MAX). */
typedef struct { int file; uint64_t start, end, bytes; int rank; } unit_t;

static int is_gzip(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    unsigned char m[2] = {0, 0};
    ssize_t k = read(fd, m, 2);
    close(fd);
    return k == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

static uint64_t env_bytes(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    return *end || x == 0 ? def : (uint64_t)x;
}

static int cmp_unit(const void *a, const void *b)
{
    const unit_t *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
    return x->file != y->file ? (x->file < y->file ? -1 : 1) : (x->start < y->start ? -1 : x->start > y->start);
}

/* Units for all files, assigned to ranks (largest first to the least loaded
 * rank, ties to the lower rank: the same plan on every rank). */
static int plan(int n, const char *const *files, unit_t **out, int *n_out)
{
    uint64_t *sz = calloc((size_t)n + 1, sizeof *sz), total = 0;
    int *split = calloc((size_t)n + 1, sizeof *split);
    if (!sz || !split) { free(sz); free(split); return -1; }
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (strcmp(files[i], "-") != 0 && stat(files[i], &st) == 0 && S_ISREG(st.st_mode)) {
            sz[i] = (uint64_t)st.st_size;
            split[i] = !is_gzip(files[i]);
            if (!split[i]) sz[i] *= 4; /* gzip: about 4x the text */
        }
        total += sz[i] ? sz[i] : 1;
    }
    /* about 4 units per rank, none under 1 MB (TKM_MPI_UNIT_BYTES for tests) */
    uint64_t unit = total / ((uint64_t)g_size * 4) + 1;
    if (unit < (1u << 20)) unit = 1u << 20;
    unit = env_bytes("TKM_MPI_UNIT_BYTES", unit);
    size_t cap = 0, nu = 0;
    for (int i = 0; i < n; i++) cap += split[i] && sz[i] > unit ? (size_t)((sz[i] + unit - 1) / unit) : 1;
    unit_t *u = calloc(cap ? cap : 1, sizeof *u);
    uint64_t *load = calloc((size_t)g_size, sizeof *load);
    if (!u || !load) { free(u); free(load); free(sz); free(split); return -1; }
    for (int i = 0; i < n; i++) {
        if (split[i] && sz[i] > unit) {
            uint64_t k = (sz[i] + unit - 1) / unit;
            for (uint64_t j = 0; j < k; j++)
                u[nu++] = (unit_t){i, sz[i] / k * j, j + 1 == k ? UINT64_MAX - 1 : sz[i] / k * (j + 1), 0, 0};
            for (size_t j = nu - (size_t)k; j < nu; j++)
                u[j].bytes = (u[j].end == UINT64_MAX - 1 ? sz[i] : u[j].end) - u[j].start;
        } else {
            u[nu++] = (unit_t){i, 0, UINT64_MAX, sz[i] ? sz[i] : 1, 0};
        }
    }
    qsort(u, nu, sizeof *u, cmp_unit);
    for (size_t j = 0; j < nu; j++) {
        int best = 0;
        for (int r = 1; r < g_size && strcmp(files[u[j].file], "-") != 0; r++) /* mpirun gives stdin to rank 0 */
            if (load[r] < load[best]) best = r;
        u[j].rank = best;
        load[best] += u[j].bytes;
    }
    free(load);
    free(sz);
    free(split);
    *out = u;
    *n_out = (int)nu;
    return 0;
}

static int cmp_unit_order(const void *a, const void *b)
{
    const unit_t *x = a, *y = b;
    return x->file != y->file ? (x->file < y->file ? -1 : 1) : (x->start < y->start ? -1 : x->start > y->start);
}

int cli_mpi_count(tkm_trainer *t, const char *cmd, int n, const char *const *files, const double *weights, int quiet)
{
    g_entered = 1;
    double t_start = MPI_Wtime(), c_start = cpu_now();
    unit_t *u = NULL;
    int nu = 0, rc = 0;
    if (plan(n, files, &u, &nu) < 0) {
        rc = TKM_ENOMEM;
        fprintf(stderr, "tokenmill %s: rank %d: out of memory\n", cmd, g_rank);
    }
    /* 1. count this rank's units, in input order */
    if (u) qsort(u, (size_t)nu, sizeof *u, cmp_unit_order);
    uint64_t my_bytes = 0;
    int my_units = 0;
    for (int j = 0; rc == 0 && j < nu; j++) {
        if (u[j].rank != g_rank) continue;
        rc = tkm_trainer_add_file_range(t, files[u[j].file], u[j].start, u[j].end, weights ? weights[u[j].file] : 1.0);
        my_bytes += u[j].bytes;
        my_units++;
    }
    free(u);
    uint64_t st[6] = {0};
    if (rc == 0) rc = tkm_trainer_partition(t, g_size, st);
    double t_counted = MPI_Wtime(), c_counted = cpu_now();
    if (agree(rc, cmd) < 0) return -1;
    double t_count_max = 0, t_count = t_counted - t_start;
    MPI_Reduce(&t_count, &t_count_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);

    /* 2. exchange by partition, rounds of at most TKM_MPI_ROUND_BYTES (64 MB) sent per rank */
    size_t per = (size_t)(env_bytes("TKM_MPI_ROUND_BYTES", 64u << 20) / (uint64_t)g_size);
    if (per < 64) per = 64;
    int *sc = calloc((size_t)g_size, sizeof *sc), *sd = calloc((size_t)g_size, sizeof *sd);
    int *rcn = calloc((size_t)g_size, sizeof *rcn), *rd = calloc((size_t)g_size, sizeof *rd);
    char *sbuf = NULL, *rbuf = NULL;
    size_t scap = 0, rcap = 0;
    uint64_t sent = 0, sent_self = 0, rounds = 0;
    if (!sc || !sd || !rcn || !rd) rc = TKM_ENOMEM;
    for (;;) {
        size_t off = 0;
        int any = 0;
        for (int d = 0; rc == 0 && d < g_size; d++) {
            const void *b;
            size_t len;
            rc = tkm_trainer_part_chunk(t, d, per, &b, &len);
            if (rc < 0) break;
            if (len > (size_t)INT32_MAX - off) { rc = TKM_ERANGE; break; }
            if (off + len > scap) {
                size_t nc = (off + len) * 2;
                char *ns = realloc(sbuf, nc);
                if (!ns) { rc = TKM_ENOMEM; break; }
                sbuf = ns;
                scap = nc;
            }
            if (len) memcpy(sbuf + off, b, len);
            sc[d] = (int)len;
            sd[d] = (int)off;
            off += len;
            any |= len > 0;
            if (d == g_rank) sent_self += len;
            else sent += len;
        }
        int flag = rc < 0 ? 2 : any, all = 0;
        MPI_Allreduce(&flag, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (all != 1) break; /* 0: every part sent everywhere; 2: an error somewhere */
        rounds++;
        if (rc < 0) memset(sc, 0, (size_t)g_size * sizeof *sc); /* (not reached: rc < 0 gives flag 2) */
        MPI_Alltoall(sc, 1, MPI_INT, rcn, 1, MPI_INT, MPI_COMM_WORLD);
        size_t rtot = 0;
        for (int s = 0; s < g_size; s++) { rd[s] = (int)rtot; rtot += (size_t)rcn[s]; }
        if (rtot > rcap) {
            char *nr = realloc(rbuf, rtot);
            if (nr) { rbuf = nr; rcap = rtot; }
        }
        if (rtot > rcap) MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL); /* cannot take part in the collective */
        MPI_Alltoallv(sbuf, sc, sd, MPI_BYTE, rbuf, rcn, rd, MPI_BYTE, MPI_COMM_WORLD);
        for (int s = 0; rc == 0 && s < g_size; s++)
            if (rcn[s]) rc = tkm_trainer_add_records(t, rbuf + rd[s], (size_t)rcn[s]);
    }
    free(sbuf);
    free(rbuf);
    free(sc); free(sd); free(rcn); free(rd);
    double t_exchanged = MPI_Wtime(), c_exchanged = cpu_now();
    if (agree(rc, cmd) < 0) return -1;

    /* 3. gather the partitions to rank 0 (they are disjoint: it only inserts) */
    uint64_t gathered = 0;
    if (g_rank == 0) {
        for (int r = 1; r < g_size; r++) {
            for (;;) {
                uint64_t len;
                MPI_Recv(&len, 1, MPI_UINT64_T, r, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                if (len == 0 || len == UINT64_MAX) break; /* done, or the sender failed (it says so in agree) */
                char *b = malloc(len);
                if (!b) MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
                MPI_Recv(b, (int)len, MPI_BYTE, r, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                if (rc == 0) rc = tkm_trainer_add_records(t, b, (size_t)len);
                gathered += len;
                free(b);
            }
        }
    } else {
        uint64_t st_none[6];
        rc = tkm_trainer_partition(t, 1, st_none);
        for (;;) {
            const void *b = NULL;
            size_t len = 0;
            if (rc == 0) rc = tkm_trainer_part_chunk(t, 0, 16u << 20, &b, &len);
            uint64_t l = rc < 0 ? UINT64_MAX : (uint64_t)len;
            MPI_Request rq; /* rank 0 takes the ranks in turn: wait without spinning */
            MPI_Issend(&l, 1, MPI_UINT64_T, 0, 1, MPI_COMM_WORLD, &rq);
            wait_idle(&rq);
            if (l == 0 || l == UINT64_MAX) break;
            MPI_Isend(b, (int)len, MPI_BYTE, 0, 2, MPI_COMM_WORLD, &rq);
            wait_idle(&rq);
        }
    }
    uint64_t gst[6] = {0};
    MPI_Reduce(st, gst, 6, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    uint64_t vol[2] = {sent, sent_self}, gvol[2] = {0, 0};
    MPI_Reduce(vol, gvol, 2, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    if (g_rank == 0) {
        if (rc == 0) rc = tkm_trainer_add_input_stats(t, gst);
        for (int i = 0; rc == 0 && i < n; i++) rc = tkm_trainer_add_input_name(t, files[i]);
    }
    double t_gathered = MPI_Wtime(), c_gathered = cpu_now();
    /* CPU seconds of the phases, summed over the ranks (wall time says little
     * on a loaded or oversubscribed machine) */
    double cpu[3] = {c_counted - c_start, c_exchanged - c_counted, c_gathered - c_exchanged}, gcpu[3] = {0, 0, 0};
    MPI_Reduce(cpu, gcpu, 3, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (agree(rc, cmd) < 0) return -1;
    if (g_rank == 0 && !quiet)
        fprintf(stderr,
                "tokenmill %s: MPI %d ranks: counting %.2f s (slowest rank; CPU %.2f s, all ranks), exchange %.2f s "
                "(CPU %.2f s; %.1f MB between ranks + %.1f MB to themselves, %llu rounds), gather to rank 0 %.2f s "
                "(CPU %.2f s; %.1f MB)\n",
                cmd, g_size, t_count_max, gcpu[0], t_exchanged - t_counted, gcpu[1], gvol[0] / 1e6, gvol[1] / 1e6,
                (unsigned long long)rounds, t_gathered - t_exchanged, gcpu[2], gathered / 1e6);
    (void)my_bytes;
    (void)my_units;
    return g_rank == 0 ? 0 : 1;
}
#endif
