/*
 * cg: conjugate-gradient iterations on a random sparse symmetric
 * positive-definite matrix, in the style of the NAS Parallel Benchmarks'
 * CG, with the matrix and vectors in a primary region or in ordinary
 * memory.
 *
 * Usage: cg [--region] [--window] [MIB [ITERATIONS [SEED]]]
 *   MIB         the table: the most rows whose matrix and vectors fit in
 *               it (default 64)
 *   ITERATIONS  CG iterations in the window (default 8)
 *   SEED        xorshift64* seed, non-zero (default 1)
 *   --region, --window  as for gups
 *
 * Each row i is paired with 8 columns j drawn at random; each pair gets a
 * value w in [-1, 0) or (0, 1], and the matrix is A = D + W, W symmetric
 * with those values off the diagonal and D the diagonal of 1 + the sum of
 * |w| over row i.  A is strictly diagonally dominant, hence positive
 * definite, and Gershgorin bounds its condition number by
 * K = max(D + rowsum) / min(D - rowsum).  As in NPB CG, the window runs
 * the inverse power method: solves of A z = x by 25 CG iterations each (the last solve
 * fewer if ITERATIONS is not a multiple of 25), each followed by the
 * explicit residual |x - A z|, zeta = 1 / (x.z) and x = z / |z|.
 *
 * After the window, every solve of k iterations is checked against what
 * the theory of CG predicts: its explicit residual is at most
 * 2 sqrt(K) ((sqrt(K) - 1) / (sqrt(K) + 1))^k |x|, and within 1e-6 |x| of
 * the residual that the iterations updated.
 *
 * Prints "CG mib M iterations N seed S table region|anon checksum 0x...
 * rows R entries E zeta Z", where the checksum mixes the bits of every
 * solve's zeta and residual; or "CG-FAIL ..." and exit status 1.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparse.h"
#include "table.h"

/* Random partners of each row. */
#define PAIRS_PER_ROW   8
/* CG iterations per solve, NPB's cgitmax. */
#define SOLVE_ITERATIONS 25
#define MIN_ROWS        16
/* How far the explicit and the updated residual may part, relative to
 * |x|: rounding makes them differ by about 1e-15. */
#define RESIDUAL_AGREEMENT 1e-6

struct problem {
    struct sparse a;
    uint64_t m;
    uint32_t (*pairs)[2];
    double *w, *diag, *x, *z, *p, *q, *r;
};

/* What one solve found. */
struct solve {
    unsigned iterations;
    double xnorm, rnorm, updated_rnorm, zeta;
};

/* The table's bytes for N rows. */
static uint64_t problem_bytes(uint64_t n)
{
    uint64_t m = PAIRS_PER_ROW * n, e = sparse_max_entries(m);

    return 2 * table_round(m * 8) + table_round((n + 1) * 8) +
           table_round(e * 4) + table_round(e * 8) +
           6 * table_round(n * 8);
}

static void problem_carve(struct problem *pb, char *t, uint64_t n)
{
    pb->a.n = n;
    pb->m = PAIRS_PER_ROW * n;
    pb->pairs = table_carve(&t, pb->m * 8);
    pb->w = table_carve(&t, pb->m * 8);
    pb->a.start = table_carve(&t, (n + 1) * 8);
    pb->a.col = table_carve(&t, sparse_max_entries(pb->m) * 4);
    pb->a.val = table_carve(&t, sparse_max_entries(pb->m) * 8);
    pb->diag = table_carve(&t, n * 8);
    pb->x = table_carve(&t, n * 8);
    pb->z = table_carve(&t, n * 8);
    pb->p = table_carve(&t, n * 8);
    pb->q = table_carve(&t, n * 8);
    pb->r = table_carve(&t, n * 8);
}

/* The matrix, and Gershgorin's bound on its condition number. */
static double make_matrix(struct problem *pb, uint64_t *seed)
{
    uint64_t n = pb->a.n;
    double lo = INFINITY, hi = 0;

    for (uint64_t k = 0; k < pb->m; k++) {
        uint64_t r;

        pb->pairs[k][0] = k / PAIRS_PER_ROW;
        pb->pairs[k][1] = xorshift64star(seed) % n;
        r = xorshift64star(seed);
        pb->w[k] = (double)((r >> 11) + 1) * 0x1p-53 * (r & 1 ? -1 : 1);
    }
    sparse_build(&pb->a, (const uint32_t (*)[2])pb->pairs, pb->w, pb->m);
    for (uint64_t i = 0; i < n; i++) {
        double rowsum = 0;

        for (uint64_t e = pb->a.start[i]; e < pb->a.start[i + 1]; e++) {
            rowsum += fabs(pb->a.val[e]);
        }
        pb->diag[i] = 1 + rowsum;
        lo = fmin(lo, pb->diag[i] - rowsum);
        hi = fmax(hi, pb->diag[i] + rowsum);
    }
    return hi / lo;
}

/* Y = A X. */
static void matvec(const struct problem *pb, const double *x, double *y)
{
    const struct sparse *a = &pb->a;

    for (uint64_t i = 0; i < a->n; i++) {
        double sum = pb->diag[i] * x[i];

        for (uint64_t e = a->start[i]; e < a->start[i + 1]; e++) {
            sum += a->val[e] * x[a->col[e]];
        }
        y[i] = sum;
    }
}

static double dot(const double *x, const double *y, uint64_t n)
{
    double sum = 0;

    for (uint64_t i = 0; i < n; i++) {
        sum += x[i] * y[i];
    }
    return sum;
}

/* ITERATIONS of CG on A z = x from z = 0; then x = z / |z|. */
static void solve(struct problem *pb, unsigned iterations, struct solve *s)
{
    uint64_t n = pb->a.n;
    double *x = pb->x, *z = pb->z, *p = pb->p, *q = pb->q, *r = pb->r;
    double rho, znorm, rnorm = 0;

    for (uint64_t i = 0; i < n; i++) {
        z[i] = 0;
        r[i] = p[i] = x[i];
    }
    rho = dot(r, r, n);
    for (unsigned k = 0; k < iterations && rho > 0; k++) {
        double alpha, rho0 = rho;

        matvec(pb, p, q);
        alpha = rho / dot(p, q, n);
        for (uint64_t i = 0; i < n; i++) {
            z[i] += alpha * p[i];
            r[i] -= alpha * q[i];
        }
        rho = dot(r, r, n);
        for (uint64_t i = 0; i < n; i++) {
            p[i] = r[i] + rho / rho0 * p[i];
        }
    }
    matvec(pb, z, q);
    for (uint64_t i = 0; i < n; i++) {
        rnorm += (x[i] - q[i]) * (x[i] - q[i]);
    }
    s->iterations = iterations;
    s->xnorm = sqrt(dot(x, x, n));
    s->rnorm = sqrt(rnorm);
    s->updated_rnorm = sqrt(rho);
    s->zeta = 1 / dot(x, z, n);
    znorm = sqrt(dot(z, z, n));
    for (uint64_t i = 0; i < n; i++) {
        x[i] = z[i] / znorm;
    }
}

/* NULL, or how solve S breaks CG's predictions for condition number K. */
static const char *check(const struct solve *s, double k)
{
    double rate = (sqrt(k) - 1) / (sqrt(k) + 1);
    double bound = 2 * sqrt(k) * pow(rate, s->iterations);

    if (!(s->rnorm <= bound * s->xnorm + RESIDUAL_AGREEMENT * s->xnorm)) {
        return "its residual is above CG's bound";
    }
    if (!(fabs(s->rnorm - s->updated_rnorm) <=
          RESIDUAL_AGREEMENT * s->xnorm)) {
        return "its explicit and updated residuals differ";
    }
    return NULL;
}

/* H with the bits of X mixed in. */
static uint64_t mix_double(uint64_t h, double x)
{
    uint64_t bits;

    memcpy(&bits, &x, sizeof(bits));
    return table_mix(h, bits);
}

int main(int argc, char **argv)
{
    int region = 0, window = 0;
    uint64_t args[3] = { 64, 8, 1 };
    uint64_t n = MIN_ROWS, iterations, seed, solves;
    uint64_t sum = TABLE_MIX_START;
    struct problem pb;
    struct solve *s;
    double k;
    char *t;

    table_args(argc, argv, &region, &window, args);
    iterations = args[1];
    seed = args[2];
    while (n < UINT32_MAX / 2 && problem_bytes(2 * n) <= args[0] << 20) {
        n *= 2;
    }
    while (n < UINT32_MAX && problem_bytes(n + n / 16) <= args[0] << 20) {
        n += n / 16;
    }
    if (!seed || !iterations || problem_bytes(n) > args[0] << 20) {
        printf("CG-FAIL arguments: the seed and iterations must be non-zero "
               "and the table at least %" PRIu64 " bytes\n",
               problem_bytes(MIN_ROWS));
        return 1;
    }
    solves = (iterations + SOLVE_ITERATIONS - 1) / SOLVE_ITERATIONS;
    s = calloc(solves, sizeof(*s));
    t = (char *)table_alloc(problem_bytes(n), region);
    if (!s || !t) {
        printf("CG-FAIL table: %s\n", strerror(errno));
        return 1;
    }
    problem_carve(&pb, t, n);
    k = make_matrix(&pb, &seed);
    for (uint64_t i = 0; i < n; i++) {
        pb.x[i] = 1;
    }
    if (table_window_start(window, "CG")) {
        return 1;
    }
    for (uint64_t i = 0; i < solves; i++) {
        uint64_t left = iterations - i * SOLVE_ITERATIONS;

        solve(&pb, left < SOLVE_ITERATIONS ? left : SOLVE_ITERATIONS, &s[i]);
    }
    table_window_end(window);
    for (uint64_t i = 0; i < solves; i++) {
        const char *why = check(&s[i], k);

        if (why) {
            printf("CG-FAIL solve %" PRIu64 ": %s (residual %.3e, updated "
                   "%.3e, |x| %.3e, %u iterations, K %.3f)\n", i, why,
                   s[i].rnorm, s[i].updated_rnorm, s[i].xnorm,
                   s[i].iterations, k);
            return 1;
        }
        sum = mix_double(mix_double(sum, s[i].zeta), s[i].rnorm);
    }
    printf("CG mib %" PRIu64 " iterations %" PRIu64 " seed %" PRIu64
           " table %s checksum 0x%016" PRIx64 " rows %" PRIu64 " entries %"
           PRIu64 " zeta %.15e\n", args[0], iterations, args[2],
           region ? "region" : "anon", sum, n, pb.a.start[n],
           s[solves - 1].zeta);
    return 0;
}
